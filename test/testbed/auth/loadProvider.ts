// Loads oidc-provider without its start-up banner (9.x warns "Unsupported runtime" on Node 20, where it works in full)
// and without the one notice the Google layout's body handling triggers on purpose.
import type * as OidcProviderModule from 'oidc-provider';

/**
 * Printed once per process when a request body was read before oidc-provider: the Google layout does that on purpose
 * (see nameJwtBearerClient in layouts.ts) and hands the body over unchanged, so the advice does not apply.
 */
const UPSTREAM_BODY_NOTICE = 'oidc-provider WARNING: already parsed request body detected';

let loading: Promise<typeof OidcProviderModule> | undefined;

export function loadOidcProvider(): Promise<typeof OidcProviderModule> {
  loading ??= (async () => {
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime')) return;
      warn(...args);
    };
    try {
      return await import('oidc-provider');
    } finally {
      console.warn = (...args: unknown[]) => {
        if (typeof args[0] === 'string' && args[0].includes(UPSTREAM_BODY_NOTICE)) return;
        warn(...args);
      };
    }
  })();
  return loading;
}
