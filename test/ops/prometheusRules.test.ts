// Proves contrib/prometheus/mailgate-rules.yml: promtool accepts it and its unit tests pass, every metric it reads is one Mailgate exports, and a real scrape of a credential in trouble fires the right alerts.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir } from '../support/cli.js';
import { parsePrometheus } from '../support/prometheus.js';
import { openTestServices, type TestServices } from '../support/services.js';

const run = promisify(execFile);
const RULES_DIR = path.join(REPO_ROOT, 'contrib/prometheus');
const RULES = path.join(RULES_DIR, 'mailgate-rules.yml');

/** Prometheus's humanizeDuration for whole seconds of a day or more: "4d 23h 59m 58s". */
function humanizeDuration(seconds: number): string {
  const [d, h, m, s] = [Math.floor(seconds / 86_400), Math.floor(seconds / 3600) % 24, Math.floor(seconds / 60) % 60, seconds % 60];
  return `${d}d ${h}h ${m}m ${s}s`;
}

let services: TestServices;
let exposition: string;

beforeAll(async () => {
  services = await openTestServices();
  const credential = (name: string, expiresInDays: number) => ({
    name,
    provider: 'generic',
    authorizationUrl: 'https://login.example.test/authorize',
    tokenUrl: 'https://login.example.test/token',
    clientId: 'app',
    clientSecret: 'not-a-real-secret',
    clientSecretExpiresAt: new Date(Date.now() + expiresInDays * 86_400_000).toISOString(),
    email: `${name}@example.test`,
  });
  await services.credentials.add(credential('alarms', 5));
  await services.credentials.add(credential('scanner', 300));
  await services.credentialRepo.setStatus('alarms', { status: 'needs_reauthorization', reason: 'test: the provider refused the refresh token' });
  exposition = await services.metrics.registry.metrics();
});
afterAll(async () => {
  await services?.close();
});

describe('contrib/prometheus/mailgate-rules.yml', () => {
  it('is valid for promtool and passes its own unit tests (each alert fires on trouble and stays quiet when healthy)', async () => {
    const checked = await run('promtool', ['check', 'rules', RULES]);
    expect(checked.stdout).toMatch(/SUCCESS: 11 rules found/);
    const tested = await run('promtool', ['test', 'rules', 'mailgate-rules.test.yml'], { cwd: RULES_DIR });
    expect(tested.stdout).toMatch(/SUCCESS/);
  });

  it('reads only metrics that Mailgate exports', () => {
    const expressions = fs.readFileSync(RULES, 'utf8').split('\n').filter((line) => line.trim().startsWith('expr:'));
    const used = new Set(expressions.flatMap((line) => line.match(/mailgate_[a-z_]+/g) ?? []));
    expect(used.size).toBeGreaterThanOrEqual(7);
    const exported = new Set([...exposition.matchAll(/^# TYPE (mailgate_[a-z_]+) /gm)].map((m) => m[1]!));
    for (const name of used) expect(exported, `${name} is in the rules but not in /metrics`).toContain(name);
  });

  it('fires MailgateCredentialNeedsSignIn and MailgateClientSecretExpiring on a real scrape, naming the credential, and nothing for the healthy one', async () => {
    const wanted = ['mailgate_credential_problem', 'mailgate_client_secret_expiry_seconds'];
    const lines = exposition.split('\n').filter((line) => wanted.some((name) => line.startsWith(`${name}{`)));
    const samples = parsePrometheus(lines.join('\n'));
    expect(samples.map((s) => `${s.name}{${s.labels.credential}}`).sort()).toEqual(['mailgate_client_secret_expiry_seconds{alarms}', 'mailgate_client_secret_expiry_seconds{scanner}', 'mailgate_credential_problem{alarms}']);
    // The scrape as promtool input: each sample held for 10 minutes, with the labels Prometheus adds.
    const series = samples.map((s) => {
      const labels = Object.entries({ ...s.labels, job: 'mailgate', instance: 'gw1:8025' }).map(([k, v]) => `${k}="${v}"`).join(', ');
      return `      - series: '${s.name}{${labels}}'\n        values: '${s.value}x10'`;
    });
    const expiry = samples.find((s) => s.name === 'mailgate_client_secret_expiry_seconds' && s.labels.credential === 'alarms')!.value;
    const dir = tempDir();
    fs.copyFileSync(RULES, path.join(dir, 'mailgate-rules.yml'));
    fs.writeFileSync(
      path.join(dir, 'scrape.test.yml'),
      [
        'rule_files: [mailgate-rules.yml]',
        'evaluation_interval: 1m',
        'tests:',
        '  - interval: 1m',
        '    input_series:',
        ...series,
        '    alert_rule_test:',
        '      - eval_time: 2m',
        '        alertname: MailgateCredentialNeedsSignIn',
        '        exp_alerts:',
        '          - exp_labels: { severity: critical, job: mailgate, instance: "gw1:8025", credential: alarms, status: needs_reauthorization }',
        '            exp_annotations:',
        '              summary: "Credential alarms needs a new sign-in"',
        '              description: "The provider refused the refresh token of alarms (revoked, password changed, expired): mail through it stops. Reconnect it in the web UI (Credentials) or with `mailgate credential authorize alarms`."',
        '      - eval_time: 2m',
        '        alertname: MailgateClientSecretExpiring',
        '        exp_alerts:',
        '          - exp_labels: { severity: warning, job: mailgate, instance: "gw1:8025", credential: alarms }',
        '            exp_annotations:',
        `              summary: "The client secret of alarms expires in ${humanizeDuration(expiry)}"`,
        '              description: "Create a new client secret in the provider\'s portal and give it to Mailgate before the old one expires: `mailgate credential update alarms --client-secret-stdin --client-secret-expires-at DATE`."',
        '',
      ].join('\n'),
    );
    const { stdout } = await run('promtool', ['test', 'rules', 'scrape.test.yml'], { cwd: dir });
    expect(stdout).toMatch(/SUCCESS/);
  });
});
