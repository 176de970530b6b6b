// A database URL as it may be shown: without its password (kept apart from postgres.ts so that showing one does not load pg).

/** The URL with any password replaced by `***`: the only form of it that reaches a message or a log. */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    for (const key of [...parsed.searchParams.keys()]) if (/pass/i.test(key)) parsed.searchParams.set(key, '***');
    return parsed.toString();
  } catch {
    // Not parseable: cut everything between "://" and the last "@" (user:password) rather than risk echoing it.
    return url.replace(/^([a-z]+:\/\/)[^/]*@/i, '$1***@');
  }
}
