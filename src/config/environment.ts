// The only module that reads process.env: it picks Mailgate's variables out once, at start.

/** Mailgate's environment variables (DESIGN.md "Environment"), as given; validation happens in config/load.ts. */
export interface MailgateEnvironment {
  MAILGATE_CONFIG?: string;
  MAILGATE_DATA_DIR?: string;
  MAILGATE_DATABASE_URL?: string;
  MAILGATE_MASTER_KEY?: string;
  MAILGATE_PUBLIC_URL?: string;
  MAILGATE_LISTEN?: string;
  MAILGATE_LOG_LEVEL?: string;
  /** `text` or `json` (default: text when standard output is a terminal). */
  MAILGATE_LOG_FORMAT?: string;
  /** The first admin's password (user "admin"), used only while no admin account exists. */
  MAILGATE_ADMIN_PASSWORD?: string;
}

const NAMES = [
  'MAILGATE_CONFIG',
  'MAILGATE_DATA_DIR',
  'MAILGATE_DATABASE_URL',
  'MAILGATE_MASTER_KEY',
  'MAILGATE_PUBLIC_URL',
  'MAILGATE_LISTEN',
  'MAILGATE_LOG_LEVEL',
  'MAILGATE_LOG_FORMAT',
  'MAILGATE_ADMIN_PASSWORD',
] as const satisfies readonly (keyof MailgateEnvironment)[];

/** Reads Mailgate's variables from `source` (default: the process environment); empty values count as unset. */
export function readEnvironment(source: NodeJS.ProcessEnv = process.env): MailgateEnvironment {
  const env: MailgateEnvironment = {};
  for (const name of NAMES) {
    const value = source[name];
    if (value !== undefined && value !== '') env[name] = value;
  }
  return env;
}
