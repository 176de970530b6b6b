// Real SMTP clients for the relay tests: Python's smtplib (step by step, every reply kept), curl and msmtp, each run as a child process.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '../support/cli.js';

export type Reply = [code: number, text: string];

export interface SmtplibSession {
  port: number;
  security: 'starttls' | 'implicit' | 'none';
  /** PEM file the client trusts (the relay's self-signed certificate). */
  caFile?: string;
  /** Local address to connect from (127.0.0.2: another client address on this machine). */
  source?: string;
  auth?: { mechanism: 'PLAIN' | 'LOGIN'; user: string; password: string };
  /** Each message: MAIL FROM, RCPT TO…, DATA; the session stops at the first refusal. */
  messages?: { from: string; to: string[]; data: string }[];
}

/** Every reply in order: `connect`, `auth`, then per message `mail`, `rcpt…`, `data`; a refused step ends the list. */
export interface SmtplibResult {
  steps: { step: string; code: number; text: string }[];
  error?: string;
}

// smtplib's low-level calls (mail/rcpt/data, auth) keep every reply; sendmail() would hide the DATA reply's text.
const SMTPLIB = String.raw`
import json, os, smtplib, ssl, sys
spec = json.loads(os.environ['RELAY_SPEC'])
steps = []
def record(step, reply):
    code, text = reply
    steps.append({'step': step, 'code': code, 'text': text.decode() if isinstance(text, bytes) else str(text)})
    return code < 400
def finish(error=None):
    out = {'steps': steps}
    if error: out['error'] = error
    print(json.dumps(out))
    sys.exit(0)
ctx = ssl.create_default_context(cafile=spec.get('caFile')) if spec.get('caFile') else None
source = (spec['source'], 0) if spec.get('source') else None
try:
    if spec['security'] == 'implicit':
        s = smtplib.SMTP_SSL('127.0.0.1', spec['port'], context=ctx, source_address=source, timeout=30)
    else:
        s = smtplib.SMTP('127.0.0.1', spec['port'], source_address=source, timeout=30)
    record('connect', (220, 'connected'))
    s.ehlo('client.example.test')
    if spec['security'] == 'starttls':
        if not record('starttls', s.starttls(context=ctx)):
            finish()
        s.ehlo('client.example.test')
    auth = spec.get('auth')
    if auth:
        s.user, s.password = auth['user'], auth['password']
        try:
            if auth['mechanism'] == 'PLAIN':
                reply = s.auth('PLAIN', s.auth_plain)
            else:
                reply = s.auth('LOGIN', s.auth_login, initial_response_ok=False)
            record('auth', reply)
        except smtplib.SMTPResponseException as e:
            record('auth', (e.smtp_code, e.smtp_error))
            finish()
    for m in spec.get('messages', []):
        if not record('mail', s.mail(m['from'])):
            finish()
        for r in m['to']:
            if not record('rcpt', s.rcpt(r)):
                finish()
        if not record('data', s.data(m['data'].encode())):
            finish()
    s.quit()
except smtplib.SMTPServerDisconnected as e:
    finish('disconnected: ' + str(e))
except smtplib.SMTPResponseException as e:
    record('error', (e.smtp_code, e.smtp_error))
    finish()
finish()
`;

export function smtplib(spec: SmtplibSession): Promise<SmtplibResult> {
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', SMTPLIB], { env: { ...process.env, RELAY_SPEC: JSON.stringify(spec) }, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`python3 smtplib failed: ${err.message}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout) as SmtplibResult);
      } catch {
        reject(new Error(`python3 smtplib printed no result: ${stdout}\n${stderr}`));
      }
    });
  });
}

/** A complete message with CRLF line ends. */
export function message(headers: Record<string, string>, body: string): string {
  return `${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n')}\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}\r\n`;
}

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], options: { input?: string; cwd?: string } = {}): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { timeout: 60_000, cwd: options.cwd }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.end(options.input ?? '');
  });
}

/** curl's SMTP client: `smtp://` with --ssl-reqd (STARTTLS) or `smtps://` (implicit TLS); -v shows the relay's replies. */
export function curlSend(options: { url: string; caFile: string; user: string; password: string; from: string; to: string[]; data: string }): Promise<ProcessResult> {
  const dir = tempDir('mailgate-curl-');
  const file = path.join(dir, 'message.eml');
  fs.writeFileSync(file, options.data);
  const args = ['-sS', '-v', '--cacert', options.caFile, '--user', `${options.user}:${options.password}`, '--mail-from', options.from, ...options.to.flatMap((r) => ['--mail-rcpt', r]), '--upload-file', file, options.url];
  if (options.url.startsWith('smtp://')) args.unshift('--ssl-reqd');
  return run('curl', args);
}

/** msmtp (Debian's sendmail replacement), non-interactive: a config file in a temp dir, the message on stdin. */
export function msmtpSend(options: { port: number; caFile: string; user: string; password: string; from: string; to: string[]; data: string }): Promise<ProcessResult> {
  const dir = tempDir('mailgate-msmtp-');
  const config = path.join(dir, 'msmtprc');
  const passwordFile = path.join(dir, 'password');
  fs.writeFileSync(passwordFile, options.password, { mode: 0o600 });
  fs.writeFileSync(
    config,
    [
      'account relay',
      'host 127.0.0.1',
      `port ${options.port}`,
      'tls on',
      'tls_starttls on',
      `tls_trust_file ${options.caFile}`,
      'auth plain',
      `user ${options.user}`,
      // passwordeval keeps the password out of the config file and the command line, as an operator would.
      `passwordeval "cat ${passwordFile}"`,
      `from ${options.from}`,
      `logfile ${path.join(dir, 'msmtp.log')}`,
      'account default : relay',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return run('msmtp', ['-C', config, '-v', ...options.to], { input: options.data }).then((r) => ({ ...r, stderr: r.stderr + safeRead(path.join(dir, 'msmtp.log')) }));
}

function safeRead(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
