// Proves the sending-limit presets by host (Microsoft 365, Google Workspace, personal Gmail) and how configured values override or switch them off.
import { describe, expect, it } from 'vitest';
import { effectiveLimits, parseLimitPairs, presetLimits } from './limits.js';
import { limitsInputSchema } from './model.js';

describe('sending limit presets', () => {
  it('knows Microsoft 365 and Google by the host, personal Gmail by the username', () => {
    expect(presetLimits('smtp.office365.com', 'alerts@contoso.com')).toMatchObject({ name: 'microsoft-365', limits: { messagesPerMinute: 30, recipientsPerDay: 10_000, connections: 3 } });
    expect(presetLimits('SMTP-mail.Outlook.com', undefined)?.name).toBe('microsoft-365');
    expect(presetLimits('smtp.gmail.com', 'alarms@example.com')).toMatchObject({ name: 'google-workspace', limits: { messagesPerDay: 2_000, recipientsPerDay: 10_000 } });
    expect(presetLimits('smtp.gmail.com', 'someone@gmail.com')).toMatchObject({ name: 'gmail', limits: { messagesPerDay: 500, recipientsPerDay: 500 } });
    expect(presetLimits('mail.example.com', 'a@example.com')).toBeUndefined();
    expect(presetLimits('office365.com.attacker.example', undefined)).toBeUndefined();
  });

  it('lets a configured value override a preset, and null switch it off', () => {
    const preset = presetLimits('smtp.office365.com', undefined);
    expect(effectiveLimits({ messagesPerMinute: 10, connections: null }, preset)).toEqual({ messagesPerMinute: 10, recipientsPerDay: 10_000 });
    expect(effectiveLimits(undefined, undefined)).toEqual({});
  });

  it('reads KEY=VALUE pairs, "none" as off, and refuses what is not a positive whole number or a known limit', () => {
    expect(limitsInputSchema.parse(parseLimitPairs(['messagesPerMinute=20', 'recipientsPerDay=none']))).toEqual({ messagesPerMinute: 20, recipientsPerDay: null });
    expect(limitsInputSchema.safeParse({ messagesPerMinute: 0 }).success).toBe(false);
    expect(limitsInputSchema.safeParse({ messagesPerMinute: 2.5 }).success).toBe(false);
    expect(limitsInputSchema.safeParse(parseLimitPairs(['perHour=5'])).success).toBe(false);
  });
});
