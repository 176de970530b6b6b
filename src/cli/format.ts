// Small output helpers shared by CLI commands: aligned tables and repeatable options.

export type Print = (line: string) => void;

export const printLine: Print = (line) => process.stdout.write(`${line}\n`);

/** Aligned columns; the first row is the header. */
export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}

/** For options that may be repeated or comma-separated: `--scope a --scope b,c`. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

/** For repeatable options kept whole: `--auth-param prompt=consent --auth-param domain_hint=x`. */
export function collectWhole(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export const CONFIG_OPTION_HELP = 'configuration file (default: $MAILGATE_CONFIG, else ./mailgate.yaml if present)';
