// Reads a secret the CLI needs (client secret, admin password) from an environment variable, a file or standard input — never from an argument, which `ps` shows to every user.
import fs from 'node:fs';
import { ErrorCode, MailgateError } from '../errors.js';

export interface SecretSources {
  /** Name of the environment variable holding the secret, and the option that named it. */
  env?: { variable: string | undefined; option: string };
  file?: { path: string | undefined; option: string };
}

/** The first source given; else standard input when it is not a terminal; else undefined. */
export async function readSecret(sources: SecretSources): Promise<string | undefined> {
  if (sources.env?.variable) {
    const value = process.env[sources.env.variable];
    if (!value) throw new MailgateError(ErrorCode.INPUT_INVALID, `${sources.env.option}: the environment variable ${sources.env.variable} is empty or unset`);
    return value.trim();
  }
  if (sources.file?.path) {
    try {
      return fs.readFileSync(sources.file.path, 'utf8').trim();
    } catch (cause) {
      throw new MailgateError(ErrorCode.INPUT_INVALID, `${sources.file.option}: cannot read ${sources.file.path}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });
    }
  }
  if (!process.stdin.isTTY) {
    let text = '';
    for await (const chunk of process.stdin) text += chunk;
    return text.trim() || undefined;
  }
  return undefined;
}
