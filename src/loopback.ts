// Whether a URL's host name is this machine (plain http is accepted only there: test servers, a local proxy).

/** `localhost`, `::1` (with or without brackets) or any 127.x.y.z address. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}
