import type { ChatMessage, Conversation, DeliveryState } from './conversation.model';
import { countdown } from './vanishing.service';
import { FileBubble } from './file.view';
import type { FileService } from './files.service';

const STATE_LABEL: Record<DeliveryState, string> = { sending: 'sending…', stored: 'sent', delivered: 'delivered', read: 'read', failed: 'not sent' };
export const QUICK_REACTIONS = ['👍', '❤️', '😂', '😮'];

export interface MessageActions {
  reply: (m: ChatMessage) => void;
  react: (m: ChatMessage, emoji: string) => void;
  edit: (m: ChatMessage) => void;
  remove: (m: ChatMessage) => void;
}

/** One message: author (in groups), the quote it replies to, text, reactions, timer countdown, delivery state, actions. */
export function MessageItem({ m, conversation, now, actions, files }: { m: ChatMessage; conversation: Conversation; now: number; actions: MessageActions; files?: FileService }) {
  const name = (account: string) => conversation.names[account] ?? (account === m.from && !m.outgoing ? conversation.label : 'Unknown');
  const left = countdown(m, now);
  const pending = m.state === 'sending' || m.state === 'failed';
  return (
    <li class={m.outgoing ? 'out' : 'in'} data-testid="message" data-direction={m.outgoing ? 'out' : 'in'} data-id={m.id}>
      {conversation.kind === 'group' && !m.outgoing && (
        <span class="author" data-testid="author">
          {name(m.from)}
        </span>
      )}
      {m.reply && (
        <blockquote data-testid="quote">
          <strong>{name(m.reply.from)}</strong> {m.reply.text ?? ''}
        </blockquote>
      )}
      {m.file && files ? <FileBubble files={files} conv={m.conv} file={m.file} /> : <p data-testid="message-text">{m.text}</p>}
      {m.reactions.length > 0 && (
        <ul class="reactions" aria-label="Reactions">
          {m.reactions.map((r) => (
            <li key={r.emoji}>
              <button type="button" data-testid="reaction" aria-pressed={r.mine} aria-label={`${r.emoji} ${r.count}`} onClick={() => actions.react(m, r.emoji)}>
                {r.emoji} {r.count}
              </button>
            </li>
          ))}
        </ul>
      )}
      <small>
        <time dateTime={new Date(m.at).toISOString()}>{new Date(m.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}</time>
        {m.edited && <span data-testid="edited"> · edited</span>}
        {left && <span data-testid="countdown"> · {left}</span>}
        {m.state && <span data-testid="delivery-state"> · {STATE_LABEL[m.state]}</span>}
      </small>
      {!pending && (
        <div class="actions" role="group" aria-label="Message actions">
          <button type="button" class="link" data-testid="action-reply" onClick={() => actions.reply(m)}>
            Reply
          </button>
          {QUICK_REACTIONS.map((emoji) => (
            <button type="button" class="link" data-testid="action-react" data-emoji={emoji} aria-label={`React ${emoji}`} key={emoji} onClick={() => actions.react(m, emoji)}>
              {emoji}
            </button>
          ))}
          {m.outgoing && (
            <>
              {!m.file && (
                <button type="button" class="link" data-testid="action-edit" onClick={() => actions.edit(m)}>
                  Edit
                </button>
              )}
              <button type="button" class="link" data-testid="action-delete" onClick={() => actions.remove(m)}>
                Delete
              </button>
            </>
          )}
        </div>
      )}
    </li>
  );
}
