// Proves that providers' throttling replies are recognised by their codes (and nothing else is), so the message waits instead of failing.
import { describe, expect, it } from 'vitest';
import { classifySendError, throttlingLimit } from './smtpErrors.js';

const reply = (code: number, text: string, nodemailerCode = 'EMESSAGE') => Object.assign(new Error(`Message failed: ${code} ${text}`), { code: nodemailerCode, responseCode: code, response: `${code} ${text}` });

describe('throttling replies', () => {
  it.each([
    [432, '4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded', 'connections'],
    [554, '5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message', 'messagesPerMinute'],
    [550, "5.1.90 Your message can't be sent because you've reached your daily limit for message recipients", 'recipientsPerDay'],
    [421, '4.7.0 Try again later, closing connection. (EHLO) d2-20020a05', 'messagesPerMinute'],
    [454, '4.7.0 Too many login attempts, please try again later.', 'messagesPerMinute'],
    [550, '5.4.5 Daily user sending limit exceeded. For more information on Gmail sending limits go to https://support.google.com/a/answer/166852', 'messagesPerDay'],
  ])('%i %s → waits for %s', (code, text, limit) => {
    expect(throttlingLimit(code, `${code} ${text}`)).toBe(limit);
    expect(classifySendError(reply(code, text))).toMatchObject({ kind: 'throttled', limit, responseCode: code });
  });

  it.each([
    [550, '5.1.1 User unknown'],
    [554, '5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException'],
    [421, '4.4.2 Connection dropped due to timeout'],
    [451, '4.3.0 Mail server temporarily rejected message'],
    [454, '4.7.0 Cannot authenticate due to temporary system problem'],
  ])('%i %s is not throttling', (code, text) => {
    expect(throttlingLimit(code, `${code} ${text}`)).toBeUndefined();
    expect(classifySendError(reply(code, text)).kind).not.toBe('throttled');
  });
});
