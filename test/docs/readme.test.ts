// Keeps the README honest: every command and flag in its Commands table exists in the CLI, every key in its Configuration table is accepted by the config schema — and the reverse, so the two cannot drift apart.
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { configFileSchema } from '../../src/config/schema.js';
import { buildProgram } from '../../src/cli/program.js';
import { REPO_ROOT } from '../support/cli.js';

const README = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');

/** The rows of the first table under `## <heading>`, as arrays of cells (pipes escaped as `\|` stay inside a cell). */
function tableRows(heading: string): string[][] {
  const start = README.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README has no "## ${heading}" section`);
  const section = README.slice(start + heading.length + 5).split(/\n## /)[0]!;
  const lines = section.split('\n').filter((l) => l.startsWith('|'));
  return lines.slice(2).map((line) =>
    line
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((cell) => cell.trim().replace(/\\\|/g, '|')),
  );
}

const codeSpans = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

interface DocumentedCommand {
  /** `credential add`, `send`, … */
  command: string;
  flags: Set<string>;
}

/**
 * `mailgate server add NAME --protocol …` / `list` / `show`, `mailgate credential list|show NAME [--json]`: the first
 * span names the group; later bare spans are more subcommands of it; `a|b` names two subcommands with the same flags.
 */
function documentedCommands(): DocumentedCommand[] {
  const out: DocumentedCommand[] = [];
  for (const [first] of tableRows('Commands')) {
    let group: string | undefined;
    for (const span of codeSpans(first ?? '')) {
      const words = span.split(/\s+/);
      let subs: string[];
      let rest: string[];
      if (words[0] === 'mailgate') {
        group = words[1]!;
        const third = words[2];
        const isSub = third !== undefined && /^[a-z][a-z-]*(\|[a-z][a-z-]*)*$/.test(third);
        subs = isSub ? third.split('|') : [''];
        rest = isSub ? words.slice(3) : words.slice(2);
      } else if (group && /^[a-z][a-z-]*(\|[a-z][a-z-]*)*$/.test(words[0]!)) {
        subs = words[0]!.split('|');
        rest = words.slice(1);
      } else continue;
      const flags = new Set(rest.join(' ').match(/--[a-z][a-z0-9-]*/g) ?? []);
      for (const sub of subs) out.push({ command: sub ? `${group} ${sub}` : group!, flags });
    }
  }
  return out;
}

/** Every command of the CLI (`credential add`, `send`) with its long options, read from the program itself. */
function cliCommands(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const longs = (command: Command) => new Set(command.options.map((o) => o.long).filter((l): l is string => l !== undefined));
  for (const group of buildProgram().commands) {
    if (group.commands.length === 0) out.set(group.name(), longs(group));
    for (const sub of group.commands) out.set(`${group.name()} ${sub.name()}`, longs(sub));
  }
  return out;
}

describe('README Commands table', () => {
  const cli = cliCommands();

  it('documents only commands and flags that exist', () => {
    const problems: string[] = [];
    for (const doc of documentedCommands()) {
      const options = cli.get(doc.command);
      if (!options) {
        problems.push(`README documents \`mailgate ${doc.command}\`, which the CLI does not have`);
        continue;
      }
      for (const flag of doc.flags) if (!options.has(flag)) problems.push(`README documents \`mailgate ${doc.command} ${flag}\`, which its --help does not list`);
    }
    expect(problems).toEqual([]);
    expect(documentedCommands().length).toBeGreaterThan(30);
  });

  it('documents every command and every flag the CLI has', () => {
    const documented = new Map<string, Set<string>>();
    for (const doc of documentedCommands()) documented.set(doc.command, new Set([...(documented.get(doc.command) ?? []), ...doc.flags]));
    const problems: string[] = [];
    for (const [command, options] of cli) {
      const flags = documented.get(command);
      if (!flags) {
        problems.push(`\`mailgate ${command}\` is not in the README's Commands table`);
        continue;
      }
      // --config is the same on every command and documented once, under Configuration.
      for (const option of options) if (option !== '--config' && option !== '--version' && !flags.has(option)) problems.push(`\`mailgate ${command} ${option}\` is not in the README's Commands table`);
    }
    expect(problems).toEqual([]);
  });
});

type AnySchema = z.ZodType & { unwrap?: () => AnySchema; shape?: Record<string, AnySchema>; element?: AnySchema; def?: { type?: string; in?: AnySchema; innerType?: AnySchema } };

/** The object, array or leaf under optional/default/pipe wrappers. */
function unwrap(schema: AnySchema): AnySchema {
  let current = schema;
  for (let i = 0; i < 10; i++) {
    const type = current.def?.type;
    if ((type === 'optional' || type === 'default' || type === 'nullable') && current.unwrap) current = current.unwrap();
    else if (type === 'pipe' && current.def?.in) current = current.def.in;
    else break;
  }
  return current;
}

/** Leaf key paths of the schema: `outbox.concurrency`, `relay.listeners[].tls`; records (`servers`, `senders`) end at their own key. */
function schemaKeys(schema: AnySchema, prefix = ''): string[] {
  const inner = unwrap(schema);
  const type = inner.def?.type;
  if (type === 'object' && inner.shape) return Object.entries(inner.shape).flatMap(([key, value]) => schemaKeys(value, prefix ? `${prefix}.${key}` : key));
  if (type === 'array' && inner.element && unwrap(inner.element).def?.type === 'object') return schemaKeys(inner.element, `${prefix}[]`);
  return [prefix];
}

/** `outbox.retryBaseSeconds` / `retryMaxSeconds` → both full paths; `servers.NAME` → `servers`; each with its row's text. */
function documentedKeys(): Map<string, string> {
  const keys = new Map<string, string>();
  for (const row of tableRows('Configuration')) {
    let prefix = '';
    for (const span of codeSpans(row[0] ?? '')) {
      if (span === '—') continue;
      const key = span.replace(/\.NAME$/, '');
      if (key.includes('.')) {
        prefix = key.slice(0, key.lastIndexOf('.'));
        keys.set(key, row.join(' | '));
      } else keys.set(prefix ? `${prefix}.${key}` : key, row.join(' | '));
    }
  }
  return keys;
}

describe('README Configuration table', () => {
  it('documents only keys the config file accepts, and every key it accepts', () => {
    const accepted = new Set(schemaKeys(configFileSchema as unknown as AnySchema));
    const documented = documentedKeys();
    // Objects documented in one row with their fields inline (`alerts.webhook`: `{ url, secret }`): a field counts when that row names it.
    const wholeObjects = [...documented.keys()].filter((key) => [...accepted].some((a) => a.startsWith(`${key}.`)));
    const covered = (key: string) => documented.has(key) || wholeObjects.some((w) => key.startsWith(`${w}.`) && new RegExp(`\\b${key.slice(w.length + 1).split('.')[0]}\\b`).test(documented.get(w)!));
    expect([...documented.keys()].filter((key) => !accepted.has(key) && !wholeObjects.includes(key))).toEqual([]);
    expect([...accepted].filter((key) => !covered(key))).toEqual([]);
    expect(accepted.size).toBeGreaterThan(30);
  });
});
