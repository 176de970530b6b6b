// The URL a process on this machine uses to reach the gateway's own HTTP listener (a wildcard address is reached on loopback).

/** `http://host:port<pathname>` for `listen`; 0.0.0.0 becomes 127.0.0.1 and :: becomes ::1. */
export function localGatewayUrl(listen: { host: string; port: number }, pathname: string): string {
  const host = listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}${pathname}`;
}
