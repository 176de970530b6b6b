// TLS trust for connections to a server with a private CA: one secure context per CA, shared by every connection that trusts it.

import tls from 'node:tls';

const contexts = new Map<string, tls.SecureContext>();

/**
 * A context trusting the system's CAs and `tlsCa`. Building one per connection parses the ~145 system roots each time:
 * about 0.8 MB and several milliseconds of CPU per connection (bench/README.md, "Inbound"; the IMAP proxy's login).
 */
export function secureContextFor(tlsCa: string): tls.SecureContext {
  let context = contexts.get(tlsCa);
  if (!context) {
    context = tls.createSecureContext({ ca: [...tls.rootCertificates, tlsCa], minVersion: 'TLSv1.2' });
    contexts.set(tlsCa, context);
  }
  return context;
}
