// Message priorities: high goes first, then normal, then low (each by age); read from the API field or, for the relay, from the usual headers.
export const PRIORITIES = ['high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** The stored rank: claims order by it ascending. */
export function priorityRank(priority: Priority | undefined): number {
  return priority === 'high' ? 0 : priority === 'low' ? 2 : 1;
}

export function priorityOfRank(rank: number): Priority {
  return rank <= 0 ? 'high' : rank >= 2 ? 'low' : 'normal';
}

/**
 * A relayed message's priority from the headers mail programs set: `X-Priority: 1|2` (high) or `4|5` (low), as
 * Outlook and Thunderbird write it; `Importance: high|low` (RFC 2156); `Priority: urgent|non-urgent` (RFC 2156).
 * The first of those present decides; none: normal.
 */
export function priorityFromHeaders(get: (name: string) => string | undefined): Priority {
  const xPriority = get('x-priority')?.trim();
  if (xPriority) {
    const digit = /^([1-5])\b/.exec(xPriority)?.[1];
    if (digit) return digit <= '2' ? 'high' : digit >= '4' ? 'low' : 'normal';
  }
  const importance = get('importance')?.trim().toLowerCase();
  if (importance === 'high') return 'high';
  if (importance === 'low') return 'low';
  const priority = get('priority')?.trim().toLowerCase();
  if (priority === 'urgent') return 'high';
  if (priority === 'non-urgent') return 'low';
  return 'normal';
}
