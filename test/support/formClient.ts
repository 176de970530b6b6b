// A browser-like HTTP client for the web UI's forms over node:http: keeps cookies, reads the hidden CSRF field, and can
// speak from another loopback address (127.0.0.2, …) so that tests can sign in as different clients.
import http from 'node:http';

export interface FormResponse {
  status: number;
  text: string;
  location: string | undefined;
  headers: http.IncomingHttpHeaders;
}

export class FormClient {
  readonly cookies = new Map<string, string>();

  /** `localAddress`: the client address Mailgate sees (any 127.x.y.z works on Linux's loopback). */
  constructor(
    private readonly base: string,
    private readonly localAddress = '127.0.0.1',
  ) {}

  /** `path` is sent as given (already percent-encoded), the way a browser sends what is in its address bar. */
  request(method: string, path: string, form?: Record<string, string>): Promise<FormResponse> {
    const { hostname, port } = new URL(this.base);
    const body = form ? new URLSearchParams(form).toString() : undefined;
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: hostname,
          port: Number(port),
          method,
          path,
          localAddress: this.localAddress,
          agent: false,
          headers: {
            cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
            ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            for (const c of res.headers['set-cookie'] ?? []) {
              const [pair = ''] = c.split(';');
              const eq = pair.indexOf('=');
              const value = pair.slice(eq + 1);
              if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(c)) this.cookies.delete(pair.slice(0, eq));
              else this.cookies.set(pair.slice(0, eq), value);
            }
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), location: res.headers.location, headers: res.headers });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  static csrfOf(html: string): string {
    const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
    if (!token) throw new Error('no CSRF field on the page');
    return token;
  }

  /** Fetches the sign-in form (for its CSRF token), then posts it. */
  async signIn(username: string, password: string, next = '/credentials'): Promise<FormResponse> {
    const form = await this.request('GET', '/login');
    return this.request('POST', '/login', { _csrf: FormClient.csrfOf(form.text), username, password, next });
  }
}
