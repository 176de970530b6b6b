// The inbound bench's message: about 1 KB, plain text, a unique Message-ID and subject per number.
const BODY = `${'Temperature in zone 3 above threshold; sensor reading attached below. '.repeat(10).trim()}\r\n`;

export function inboundMessage(i: number, to: string): string {
  const headers = [
    'From: Monitoring <monitor@example.test>',
    `To: ${to}`,
    `Subject: inbound bench ${i}`,
    `Message-ID: <bench-${i}@example.test>`,
    `Date: ${new Date(Date.UTC(2026, 10, 23, 12, 0, 0) + i * 1000).toUTCString()}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 7bit',
  ];
  return `${headers.join('\r\n')}\r\n\r\n${BODY}`;
}
