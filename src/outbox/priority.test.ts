// Proves how a relayed message's priority is read from the headers mail programs write.
import { describe, expect, it } from 'vitest';
import { priorityFromHeaders } from './priority.js';

const from = (headers: Record<string, string>) => priorityFromHeaders((name) => headers[name]);

describe('priority from headers', () => {
  it('reads X-Priority first, then Importance, then Priority', () => {
    expect(from({ 'x-priority': '1 (Highest)' })).toBe('high');
    expect(from({ 'x-priority': '2' })).toBe('high');
    expect(from({ 'x-priority': '3 (Normal)', importance: 'high' })).toBe('normal');
    expect(from({ 'x-priority': '5 (Lowest)' })).toBe('low');
    expect(from({ importance: 'High' })).toBe('high');
    expect(from({ importance: 'low' })).toBe('low');
    expect(from({ priority: 'urgent' })).toBe('high');
    expect(from({ priority: 'non-urgent' })).toBe('low');
    expect(from({})).toBe('normal');
    expect(from({ 'x-priority': 'soon' })).toBe('normal');
  });
});
