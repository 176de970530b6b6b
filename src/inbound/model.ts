// Watchers as Mailgate keeps them: the input an admin gives, and the view with the watcher's live state (never the webhook secret).
import { z } from 'zod';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export const watcherInputSchema = z.strictObject({
  name: z.string().regex(NAME, { error: 'expected 1-100 letters, digits, ".", "_" or "-" starting with a letter or digit' }),
  server: z.string().min(1, { error: 'expected the name of an imap or pop3 server' }),
  folder: z.string().min(1).max(500).optional(),
  mode: z.enum(['idle', 'poll'], { error: 'expected idle (with a polling fallback) or poll' }).optional(),
  pollIntervalSeconds: z.number({ error: 'expected seconds, 5-86400' }).int().min(5, { error: 'expected seconds, 5-86400' }).max(86400, { error: 'expected seconds, 5-86400' }).optional(),
  after: z
    .string()
    .regex(/^(seen|delete|move:.+)$/, { error: 'expected seen, delete or move:<folder>' })
    .optional(),
  webhook: z.strictObject({
    url: z.string({ error: 'expected the URL that receives each message' }),
    secret: z.string().min(16, { error: 'expected a signing secret of at least 16 characters (e.g. `openssl rand -hex 32`)' }),
  }),
  filter: z
    .strictObject({
      from: z.string().max(500).optional(),
      subject: z.string().max(500).optional(),
    })
    .optional(),
  enabled: z.boolean().optional(),
});
export type WatcherInput = z.infer<typeof watcherInputSchema>;

export interface WatcherSettings {
  name: string;
  server: string;
  folder: string;
  mode: 'idle' | 'poll';
  pollIntervalSeconds: number;
  after: string;
  webhookUrl: string;
  filterFrom: string | undefined;
  filterSubject: string | undefined;
  enabled: boolean;
}

export type WatcherRunState = 'stopped' | 'connecting' | 'connected' | 'idle' | 'polling' | 'backoff' | 'error';

export interface WatcherView extends WatcherSettings {
  source: 'config' | 'api';
  status: {
    state: WatcherRunState;
    connectedAt: string | null;
    lastMessageAt: string | null;
    lastError: string | null;
    lastErrorAt: string | null;
    uidValidity: string | null;
    lastUid: number;
    delivered: number;
    pending: number;
    parked: number;
  };
  /** While a webhook secret is being rotated: until when the secret it replaced also signs (ISO 8601); else null. */
  previousSecretExpiresAt: string | null;
  createdAt: string;
  updatedAt: string;
}
