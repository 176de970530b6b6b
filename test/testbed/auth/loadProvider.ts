// Loads oidc-provider without its start-up banner: 9.x warns "Unsupported runtime" on Node 20, where it works in full.
import type * as OidcProviderModule from 'oidc-provider';

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
      console.warn = warn;
    }
  })();
  return loading;
}
