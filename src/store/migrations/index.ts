// The numbered schema migrations, in order; each is written once and never edited after it ships.
import type { Migration } from 'kysely';
import { migration0001Meta } from './0001_meta.js';
import { migration0002Credentials } from './0002_credentials.js';
import { migration0003Outbound } from './0003_outbound.js';
import { migration0004ClientAuth } from './0004_client_auth.js';
import { migration0005Inbound } from './0005_inbound.js';
import { migration0006Alerts } from './0006_alerts.js';
import { migration0007Audit } from './0007_audit.js';
import { migration0008Admin } from './0008_admin.js';
import { migration0009Accounts } from './0009_accounts.js';
import { migration0010OutboxRaw } from './0010_outbox_raw.js';
import { migration0011Changes } from './0011_changes.js';
import { migration0012OutboxCallers } from './0012_outbox_callers.js';
import { migration0013Retention } from './0013_retention.js';
import { migration0014InboundAcks } from './0014_inbound_acks.js';
import { migration0015WebhookSecretRotation } from './0015_webhook_secret_rotation.js';
import { migration0016Instances } from './0016_instances.js';
import { migration0017SendingLimits } from './0017_sending_limits.js';
import { migration0018OutboxClaimOrder } from './0018_outbox_claim_order.js';

/** Names sort in the order they run; Kysely records each in `kysely_migration`. */
export const migrations: Readonly<Record<string, Migration>> = {
  '0001_meta': migration0001Meta,
  '0002_credentials': migration0002Credentials,
  '0003_outbound': migration0003Outbound,
  '0004_client_auth': migration0004ClientAuth,
  '0005_inbound': migration0005Inbound,
  '0006_alerts': migration0006Alerts,
  '0007_audit': migration0007Audit,
  '0008_admin': migration0008Admin,
  '0009_accounts': migration0009Accounts,
  '0010_outbox_raw': migration0010OutboxRaw,
  '0011_changes': migration0011Changes,
  '0012_outbox_callers': migration0012OutboxCallers,
  '0013_retention': migration0013Retention,
  '0014_inbound_acks': migration0014InboundAcks,
  '0015_webhook_secret_rotation': migration0015WebhookSecretRotation,
  '0016_instances': migration0016Instances,
  '0017_sending_limits': migration0017SendingLimits,
  '0018_outbox_claim_order': migration0018OutboxClaimOrder,
};
