// Reading urlencoded form bodies: one text value, a list of checked boxes, and the problems of a refused input as a per-field map.
import { isMailgateError } from '../errors.js';
import { problemsByField } from './components.js';

export type FormBody = Record<string, string | string[] | undefined>;

export function formText(body: unknown, key: string): string {
  const value = (body as FormBody | undefined)?.[key];
  if (Array.isArray(value)) return value[0] ?? '';
  return typeof value === 'string' ? value : '';
}

export function formList(body: unknown, key: string): string[] {
  const value = (body as FormBody | undefined)?.[key];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((v) => v !== '');
}

/** An INPUT_INVALID error as a per-field map for the form; any other error is rethrown. */
export function formProblems(err: unknown): Map<string, string> {
  if (isMailgateError(err) && err.code === 'INPUT_INVALID') {
    const problems = Array.isArray(err.details.problems) ? (err.details.problems as string[]) : err.message.split('; ');
    return problemsByField(problems);
  }
  throw err;
}
