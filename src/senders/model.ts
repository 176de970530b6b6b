// What a sender (outbound route) is: its input schema, shared by the API, the CLI and the config file, and its view.
import { z } from 'zod';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export const senderInputSchema = z.strictObject({
  name: z.string().regex(NAME, { error: 'expected 1-100 letters, digits, ".", "_" or "-" starting with a letter or digit' }),
  primary: z.string().min(1, { error: 'expected the name of an SMTP server' }),
  backups: z.array(z.string()).optional(),
  from: z.string({ error: 'expected an address such as "Alarms <alarms@example.com>"' }),
  replyTo: z.string().optional(),
});
export type SenderInput = z.infer<typeof senderInputSchema>;

export interface SenderView {
  name: string;
  primary: string;
  backups: string[];
  from: string;
  replyTo: string | undefined;
  source: 'config' | 'api';
  createdAt: string;
  updatedAt: string;
}
