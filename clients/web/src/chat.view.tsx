import { useEffect, useRef, useState } from 'preact/hooks';
import { describeError, type Conversation, type DeliveryState, type WebSession } from './session.service';

const STATE_LABEL: Record<DeliveryState, string> = { sending: 'sending…', stored: 'sent', failed: 'not sent' };

/** One conversation: the messages (live) and the composer. */
export function ChatView({ session, conversation, onBack }: { session: WebSession; conversation: Conversation; onBack: () => void }) {
  const [text, setText] = useState('');
  const [error, setError] = useState<string | undefined>();
  const list = useRef<HTMLOListElement>(null);
  const count = conversation.messages.length;

  useEffect(() => {
    session.markRead(conversation.id);
    list.current?.lastElementChild?.scrollIntoView({ block: 'end' });
  }, [session, conversation.id, count]);

  const send = (e: Event) => {
    e.preventDefault();
    const body = text.trim();
    if (!body) return;
    setText('');
    setError(undefined);
    session.send(conversation.id, body).catch((err: unknown) => setError(describeError(err)));
  };

  return (
    <div class="chat">
      <header class="bar">
        <button type="button" class="back" onClick={onBack} aria-label="Back to conversations">
          ←
        </button>
        <h2 data-testid="chat-title">{conversation.label}</h2>
      </header>
      <ol class="messages" ref={list} aria-live="polite" aria-label={`Messages with ${conversation.label}`}>
        {conversation.messages.map((m) => (
          <li key={m.id} class={m.outgoing ? 'out' : 'in'} data-testid="message" data-direction={m.outgoing ? 'out' : 'in'}>
            <p>{m.text}</p>
            <small>
              <time dateTime={new Date(m.at).toISOString()}>{new Date(m.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}</time>
              {m.state && <span data-testid="delivery-state"> · {STATE_LABEL[m.state]}</span>}
            </small>
          </li>
        ))}
      </ol>
      {error && (
        <p class="error" role="alert" data-testid="error">
          {error}
        </p>
      )}
      <form class="composer" onSubmit={send}>
        <label for="composer" class="visually-hidden">
          Message
        </label>
        <textarea
          id="composer"
          data-testid="composer"
          rows={1}
          value={text}
          placeholder="Message"
          onInput={(e) => setText(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey) send(e);
          }}
        />
        <button type="submit" data-testid="send" disabled={!text.trim()}>
          Send
        </button>
      </form>
    </div>
  );
}
