// Reads a received webhook's x-mailgate-signature apart: which secret made each of its v1 values, in order.
import { verifyWebhookSignature } from '../../src/inbound/webhook.js';
import type { ReceivedWebhook } from './webhookReceiver.js';

/**
 * For each `v1=` of the request's signature, in the order sent, the one of `secrets` it verifies under on its own
 * (checked against the raw body and the header's own `t`), or '?' when none does.
 */
export function signersOf(request: ReceivedWebhook, secrets: readonly string[]): string[] {
  const header = request.headers['x-mailgate-signature'];
  if (typeof header !== 'string') return [];
  const parts = header.split(',');
  const t = parts.find((p) => p.startsWith('t='));
  if (!t) return [];
  const now = Number(t.slice(2));
  return parts.filter((p) => p.startsWith('v1=')).map((v1) => secrets.find((secret) => verifyWebhookSignature(secret, request.raw, `${t},${v1}`, { now }).ok) ?? '?');
}
