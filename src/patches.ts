// Rules every PATCH of a named definition (server, sender, watcher) follows before it is merged over the stored one.
import { ErrorCode, MailgateError } from './errors.js';

/**
 * A name in the body must be the one in the URL: a definition is never renamed (nor another one overwritten) by a
 * PATCH. Remove it and add it under the new name instead.
 */
export function refuseRename(kind: string, name: string, patch: object): void {
  const given = (patch as { name?: unknown }).name;
  if (given !== undefined && given !== name) {
    throw new MailgateError(ErrorCode.INPUT_INVALID, `name: a ${kind}'s name cannot be changed (this is ${kind} ${JSON.stringify(name)}, the body names ${JSON.stringify(given)}): leave name out, or remove the ${kind} and add it under the new name`);
  }
}
