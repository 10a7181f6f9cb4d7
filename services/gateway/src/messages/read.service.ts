import { Inject, Injectable } from '@nestjs/common';
import { Clock, DeviceQueueRepository, ExpiryScheduler, LOGGER, type AuthContext, type Logger } from '@umbra/server';

/** Read reports (PROTOCOL.md §8): read-mode copies still stored vanish `readTtlS` after display. */
@Injectable()
export class ReadService {
  constructor(
    @Inject(DeviceQueueRepository) private readonly envelopes: DeviceQueueRepository,
    @Inject(ExpiryScheduler) private readonly scheduler: ExpiryScheduler,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async markRead(auth: AuthContext, ids: string[]): Promise<{ lowered: number }> {
    const now = this.clock.now();
    const lowered = await this.envelopes.lowerOnRead(auth, ids, now);
    // The sweep deletes these on time even if scheduling fails; the job only makes it prompt.
    await this.scheduler
      .schedule(lowered.map((l) => ({ message: l.message, dueAt: l.deleteAt })), now)
      .catch((err: unknown) => this.logger.warn({ err: String(err) }, 'could not schedule read-mode expiry'));
    return { lowered: lowered.length };
  }
}
