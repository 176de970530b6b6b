// Row types of every table, as Kysely sees them; one interface per table, named after it.
import type { Generated } from 'kysely';

/** Small named values that belong to the installation itself (the master key's check value, …). */
export interface MetaTable {
  name: string;
  value: string;
  updated_at: string;
}

/** Timestamps are ISO-8601 UTC strings (they sort as text, in SQLite and PostgreSQL alike). */
export interface CredentialsTable {
  name: string;
  provider: string;
  grant_type: string;
  tenant: string | null;
  client_id: string;
  client_secret: string | null;
  client_auth: string;
  email: string;
  scopes: string;
  protocols: string;
  authority: string | null;
  authorization_url: string | null;
  token_url: string | null;
  issuer: string | null;
  device_authorization_url: string | null;
  revocation_url: string | null;
  userinfo_url: string | null;
  auth_params: string;
  status: string;
  status_reason: string | null;
  status_changed_at: string;
  access_token: string | null;
  refresh_token: string | null;
  token_type: string | null;
  expires_at: string | null;
  granted_scopes: string | null;
  identity: string | null;
  last_refreshed_at: string | null;
  last_used_at: string | null;
  last_error: string | null;
  warnings: string;
  client_secret_expires_at: string | null;
  failure_count: Generated<number>;
  next_attempt_at: string | null;
  refresh_lease_owner: string | null;
  refresh_lease_until: string | null;
  created_at: string;
  updated_at: string;
}

export interface CredentialEventsTable {
  id: Generated<number>;
  credential_name: string;
  at: string;
  from_status: string | null;
  to_status: string;
  reason: string | null;
}

export interface OAuthStatesTable {
  state_hash: string;
  credential_name: string;
  code_verifier: string;
  nonce: string;
  redirect_uri: string;
  browser_binding: string | null;
  created_at: string;
  expires_at: string;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  key_hash: string;
  scopes: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface ServersTable {
  name: string;
  protocol: string;
  host: string;
  port: number;
  security: string;
  username: string | null;
  auth_type: string;
  password: string | null;
  credential: string | null;
  tls_ca: string | null;
  tls_reject_unauthorized: number;
  /** JSON sending limits as configured (migration 0017); null: the host's preset. */
  limits: string | null;
  source: string;
  created_at: string;
  updated_at: string;
}

export interface SendersTable {
  name: string;
  primary_server: string;
  backups: string;
  from_address: string;
  reply_to: string | null;
  source: string;
  created_at: string;
  updated_at: string;
}

export interface OutboxTable {
  id: string;
  sender: string;
  idempotency_key: string | null;
  message: string;
  size: number;
  status: string;
  attempts: Generated<number>;
  server_index: Generated<number>;
  server_attempts: Generated<number>;
  next_attempt_at: string;
  lease_owner: string | null;
  lease_until: string | null;
  server_used: string | null;
  message_id: string;
  last_error: string | null;
  response: string | null;
  rejected: string | null;
  history: string;
  created_at: string;
  updated_at: string;
  sent_at: string | null;
  /** Raw MIME of a relay submission (null: an API message, composed from `message`). */
  raw: Buffer | null;
  /** JSON SMTP envelope of a raw message: { from, to[] }. */
  envelope: string | null;
  /** Who submitted it: `apikey:<id>`, `cli`, `alerts`, `relay:<account>` (null before migration 0012). */
  created_by: string | null;
  /** The idempotency key as the caller gave it (`idempotency_key` holds its hash with the caller). */
  idempotency_label: string | null;
  request_hash: string | null;
  idempotency_expires_at: string | null;
  /** When the body (text, html, attachments, raw MIME) was dropped under retention.messageBodyDays. */
  body_pruned_at: string | null;
  /** 0 high, 1 normal, 2 low (migration 0017). */
  priority: Generated<number>;
}

export interface WatchersTable {
  name: string;
  server: string;
  folder: string;
  mode: string;
  poll_interval_seconds: number;
  after: string;
  webhook_url: string;
  webhook_secret: string;
  /** The secret a rotation replaced (sealed), still signing until webhook_previous_secret_expires_at. */
  webhook_previous_secret: string | null;
  webhook_previous_secret_expires_at: string | null;
  filter_from: string | null;
  filter_subject: string | null;
  enabled: number;
  source: string;
  created_at: string;
  updated_at: string;
}

export interface WatcherStateTable {
  watcher: string;
  uidvalidity: string | null;
  last_uid: number;
  state: string;
  connected_at: string | null;
  last_message_at: string | null;
  last_error: string | null;
  last_error_at: string | null;
  updated_at: string;
}

export interface InboundDeliveriesTable {
  id: string;
  watcher: string;
  mailbox_key: string;
  uid: number | null;
  status: string;
  event: string | null;
  message_id: string | null;
  subject: string | null;
  from_address: string | null;
  size: number | null;
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  delivered_at: string | null;
  /** When the upstream action (seen, move, delete) succeeded; null for a delivered message still to be acknowledged. */
  acknowledged_at: string | null;
}

export interface AlertsTable {
  id: string;
  kind: string;
  subject: string;
  status: string;
  message: string;
  link: string | null;
  raised_at: string;
  notified_count: number;
  last_notified_at: string | null;
  next_notify_at: string | null;
  resolved_at: string | null;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  details: string;
}

export interface AdminUsersTable {
  id: Generated<number>;
  username: string;
  password_hash: string;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
}

export interface AdminSessionsTable {
  id_hash: string;
  user_id: number;
  csrf_token: string;
  flash: string | null;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
}

export interface AdminSetupTokensTable {
  token_hash: string;
  created_at: string;
  expires_at: string;
}

/** A password-only program's login at the SMTP relay, bound to one sender. */
export interface RelayAccountsTable {
  name: string;
  sender: string;
  allow_from: string;
  password_hash: string;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
}

/** A password-only program's login at the IMAP/POP3 proxy, bound to one upstream server. */
export interface ProxyAccountsTable {
  name: string;
  server: string;
  password_hash: string;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
}

/** One change to a definition, for the other running instances to pick up. */
export interface ChangesTable {
  seq: Generated<number>;
  topic: string;
  name: string;
  origin: string;
  at: string;
}

/** A `serve` process on this database: its heartbeat says it is alive (status, the web UI, fair shares of watchers). */
export interface InstancesTable {
  id: string;
  hostname: string;
  pid: number;
  version: string;
  started_at: string;
  heartbeat_at: string;
  stopped_at: string | null;
}

/** A piece of work that must run in one instance at a time (a watcher, the alert loop), held until `expires_at`. */
export interface LeasesTable {
  name: string;
  owner: string;
  expires_at: string;
  acquired_at: string;
}

/** What was handed to a server with sending limits, for its sliding windows. */
export interface SendLogTable {
  id: Generated<number>;
  server: string;
  sent_at: string;
  recipients: number;
}

/** A server nothing is sent to before `until`: a provider's throttling reply, or a daily budget spent. */
export interface ServerPausesTable {
  server: string;
  until: string;
  limit_name: string;
  reason: string;
  paused_at: string;
}

export interface Database {
  meta: MetaTable;
  credentials: CredentialsTable;
  credential_events: CredentialEventsTable;
  oauth_states: OAuthStatesTable;
  api_keys: ApiKeysTable;
  servers: ServersTable;
  senders: SendersTable;
  outbox: OutboxTable;
  watchers: WatchersTable;
  watcher_state: WatcherStateTable;
  inbound_deliveries: InboundDeliveriesTable;
  alerts: AlertsTable;
  audit_log: AuditLogTable;
  admin_users: AdminUsersTable;
  admin_sessions: AdminSessionsTable;
  admin_setup_tokens: AdminSetupTokensTable;
  relay_accounts: RelayAccountsTable;
  proxy_accounts: ProxyAccountsTable;
  changes: ChangesTable;
  instances: InstancesTable;
  leases: LeasesTable;
  send_log: SendLogTable;
  server_pauses: ServerPausesTable;
}
