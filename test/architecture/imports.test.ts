// Proves the layering docs/architecture.md describes: no import circles in src/ (type imports included), the bottom imports nothing above it, the token core knows none of its users, and only the top reaches the web UI, the CLI and the HTTP server.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cli.js';

const SRC = path.join(REPO_ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path.relative(SRC, full)] : [];
  });
}

/** Every file of src/ with the src/ files it imports or re-exports from (`import type` too). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const source = ts.createSourceFile(file, fs.readFileSync(path.join(SRC, file), 'utf8'), ts.ScriptTarget.Latest, false);
    const targets: string[] = [];
    for (const statement of source.statements) {
      const specifier = (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) && statement.moduleSpecifier && ts.isStringLiteral(statement.moduleSpecifier) ? statement.moduleSpecifier.text : undefined;
      if (!specifier?.startsWith('.')) continue;
      targets.push(path.relative(SRC, path.resolve(SRC, path.dirname(file), specifier)).replace(/\.js$/, '.ts'));
    }
    graph.set(file, targets);
  }
  return graph;
}

/** The circles of the graph (strongly connected components of more than one file, or a file importing itself). */
function circles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const lowLinks = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (file: string) => {
    indices.set(file, index);
    lowLinks.set(file, index);
    index += 1;
    stack.push(file);
    onStack.add(file);
    for (const target of graph.get(file) ?? []) {
      if (!indices.has(target)) {
        visit(target);
        lowLinks.set(file, Math.min(lowLinks.get(file)!, lowLinks.get(target)!));
      } else if (onStack.has(target)) lowLinks.set(file, Math.min(lowLinks.get(file)!, indices.get(target)!));
    }
    if (lowLinks.get(file) === indices.get(file)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== file);
      if (component.length > 1 || (graph.get(file) ?? []).includes(file)) found.push(component.sort());
    }
  };
  for (const file of graph.keys()) if (!indices.has(file)) visit(file);
  return found;
}

const graph = importGraph();
const isBottom = (f: string) => /^(config|store|secrets)\//.test(f) || ['errors.ts', 'log.ts', 'version.ts', 'wakeup.ts', 'loopback.ts'].includes(f);
/** A file that imports nothing of ours (a model's schema, an address parser): anyone may use it. */
const isLeaf = (f: string) => (graph.get(f) ?? []).length === 0;
const isTokenCore = (f: string) => /^(tokens|oauth|credentials)\//.test(f) && !f.endsWith('routes.ts');
const isTokenUser = (f: string) => /^(outbox|inbound|relay|proxy|alerts)\//.test(f);
const isTop = (f: string) => /^(web|cli|http)\//.test(f) || ['cli.ts', 'gateway.ts'].includes(f);

function violations(rule: (file: string, target: string) => boolean): string[] {
  return [...graph].flatMap(([file, targets]) => targets.filter((target) => rule(file, target)).map((target) => `${file} -> ${target}`));
}

describe('the import graph of src/', () => {
  it('reads every file and every relative import (the checks below look at something)', () => {
    expect(graph.size).toBeGreaterThan(150);
    expect(graph.get('gateway.ts')).toContain('services.ts');
    expect(graph.get('config/schema.ts')).toContain('senders/model.ts');
    for (const targets of graph.values()) for (const target of targets) expect(graph.has(target), `${target} is imported but not in src/`).toBe(true);
  });

  it('has no circles, type imports included', () => {
    expect(circles(graph)).toEqual([]);
    // and the search finds one when there is one
    expect(circles(new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['a.ts']], ['d.ts', ['a.ts']]]))).toEqual([['a.ts', 'b.ts', 'c.ts']]);
  });

  it('keeps config, store and secrets at the bottom: they import only each other and leaf modules', () => {
    expect(violations((file, target) => isBottom(file) && !isBottom(target) && !isLeaf(target))).toEqual([]);
  });

  it('keeps the token core (credentials, oauth, tokens) beneath its users: it imports none of outbox, inbound, relay, proxy, alerts, nor the top', () => {
    expect(violations((file, target) => isTokenCore(file) && (isTokenUser(target) || isTop(target)))).toEqual([]);
  });

  it('lets only the top reach the web UI, the CLI and the HTTP server (a domain folder\'s routes.ts may use the API auth)', () => {
    const allowed = (file: string, target: string) => isTop(file) || (file.endsWith('routes.ts') && target === 'http/apiAuth.ts') || (file === 'services.ts' && target === 'web/adminAccounts.ts');
    expect(violations((file, target) => isTop(target) && !allowed(file, target))).toEqual([]);
  });
});
