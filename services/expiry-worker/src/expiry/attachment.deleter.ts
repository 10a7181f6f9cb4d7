import { Inject, Injectable } from '@nestjs/common';
import { AttachmentReaper } from '@umbra/server';

/** Deletes the attachments of vanished messages: only those the message's sender uploaded. */
@Injectable()
export class AttachmentDeleter {
  constructor(@Inject(AttachmentReaper) private readonly reaper: AttachmentReaper) {}

  async delete(items: { id: string; owner: Uint8Array }[], now: number): Promise<number> {
    const byOwner = new Map<string, { owner: Uint8Array; ids: string[] }>();
    for (const { id, owner } of items) {
      const hex = Buffer.from(owner).toString('hex');
      let entry = byOwner.get(hex);
      if (!entry) {
        entry = { owner, ids: [] };
        byOwner.set(hex, entry);
      }
      entry.ids.push(id);
    }
    let n = 0;
    for (const { owner, ids } of byOwner.values()) n += await this.reaper.deleteAttachments(owner, ids, now);
    return n;
  }
}
