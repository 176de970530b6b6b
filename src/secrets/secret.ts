// A box for a secret value that refuses to be printed: logs, JSON and util.inspect see "[redacted]".
import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/** Wrap a secret where it enters Mailgate, so redaction does not depend on anyone remembering to. */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The plain value, for the one place that must send it (a token request, an AUTH command). */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
