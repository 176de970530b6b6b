// Accepting a message into the outbox: validation, the sender's existence, the From address, idempotency — shared by the API and `mailgate send`.
import { ErrorCode, MailgateError } from '../errors.js';
import type { SenderService } from '../senders/service.js';
import { parseAddress } from './addresses.js';
import { parseMessageInput } from './message.js';
import type { OutboxRepository, OutboxView } from './repository.js';

export class OutboxService {
  constructor(
    private readonly outbox: OutboxRepository,
    private readonly senders: SenderService,
    private readonly maxMessageBytes: number,
    /** Called after a message is stored, so a worker in this process starts at once. */
    private readonly onAccepted: () => void = () => undefined,
  ) {}

  /** Stores the message durably before answering; `created: false` when the idempotency key was seen before. */
  async accept(raw: unknown): Promise<{ view: OutboxView; created: boolean }> {
    const { message, idempotencyKey, size } = parseMessageInput(raw, this.maxMessageBytes);
    const sender = await this.senders.find(message.sender);
    if (!sender) throw new MailgateError(ErrorCode.INPUT_INVALID, `sender: no sender named ${JSON.stringify(message.sender)} (list them with GET /api/v1/senders)`);
    const senderFrom = parseAddress(sender.from);
    const fromAddress = message.from?.address ?? (senderFrom.ok ? senderFrom.address : 'mailgate.invalid');
    const { row, created } = await this.outbox.enqueue(message, fromAddress, size, idempotencyKey);
    if (created) this.onAccepted();
    return { view: this.outbox.toView(row), created };
  }

  async show(id: string): Promise<OutboxView> {
    return this.outbox.toView(await this.outbox.get(id));
  }

  async recent(limit: number): Promise<OutboxView[]> {
    return (await this.outbox.recent(limit)).map((row) => this.outbox.toView(row));
  }
}
