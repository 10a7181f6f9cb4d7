import { useEffect, useMemo, useState } from 'preact/hooks';
import { CallScreen } from './call.view';
import { WebCalls } from './calls.service';
import { ChatView } from './chat.view';
import { DeviceView, RevokedNotice } from './device.view';
import { GroupFormView } from './group-form.view';
import { OfflineNotice } from './offline.view';
import { describeError, shortId, type WebSession } from './session.service';

/** Re-renders on every change of the session's conversations, and every second for the connection state. */
function useSession(session: WebSession): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    const off = session.subscribe(() => setTick((n) => n + 1));
    const poll = setInterval(() => setTick((n) => n + 1), 1000);
    return () => {
      off();
      clearInterval(poll);
    };
  }, [session]);
}

/** The two-pane layout: conversations on the left, the open chat (or this device) on the right. */
export function MainView({ session, onWipe }: { session: WebSession; onWipe: () => void }) {
  useSession(session);
  const [selected, setSelected] = useState<string | undefined>();
  const [showDevice, setShowDevice] = useState(false);
  const [peerText, setPeerText] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [starting, setStarting] = useState(false);
  const [newGroup, setNewGroup] = useState(false);
  const open = selected ? session.conversation(selected) : undefined;
  const calls = useMemo(() => new WebCalls(session), [session]);
  useEffect(() => () => calls.close(), [calls]);

  const startChat = async (e: Event) => {
    e.preventDefault();
    if (!peerText.trim()) return;
    setError(undefined);
    setStarting(true);
    try {
      const c = await session.startChat(peerText);
      setPeerText('');
      setSelected(c.id);
      setShowDevice(false);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setStarting(false);
    }
  };

  return (
    <div class={`shell ${open || showDevice ? 'has-detail' : ''}`}>
      <aside class="sidebar" aria-label="Conversations">
        <header class="bar">
          <h1>Umbra</h1>
          <span class={`dot ${session.connected ? 'online' : 'offline'}`} data-testid="connection" role="status">
            {session.connected ? 'online' : 'connecting…'}
          </span>
          <button type="button" class="link" data-testid="this-device" aria-pressed={showDevice} onClick={() => setShowDevice(!showDevice)}>
            This device
          </button>
        </header>
        <OfflineNotice session={session} />
        <form class="new-chat" onSubmit={startChat}>
          <label for="peer">Start a chat</label>
          <div class="row">
            <input
              id="peer"
              data-testid="new-chat-input"
              value={peerText}
              onInput={(e) => setPeerText(e.currentTarget.value)}
              placeholder="@handle or account id"
              autocomplete="off"
              spellcheck={false}
            />
            <button type="submit" data-testid="new-chat" disabled={starting}>
              Chat
            </button>
          </div>
          {error && (
            <p class="error" role="alert" data-testid="error">
              {error}
            </p>
          )}
        </form>
        <div class="new-group">
          {newGroup ? (
            <GroupFormView
              session={session}
              onCancel={() => setNewGroup(false)}
              onCreated={(id) => {
                setNewGroup(false);
                setSelected(id);
                setShowDevice(false);
              }}
            />
          ) : (
            <button type="button" class="link" data-testid="new-group" onClick={() => setNewGroup(true)}>
              + New group
            </button>
          )}
        </div>
        <ul class="conversations" data-testid="conversations">
          {session.list().map((c) => (
            <li key={c.id}>
              <button
                type="button"
                data-testid="conversation"
                data-kind={c.kind}
                aria-current={c.id === selected && !showDevice ? 'true' : undefined}
                onClick={() => {
                  setSelected(c.id);
                  setShowDevice(false);
                }}
              >
                <span class="name">
                  {c.kind === 'group' && (
                    <span class="kind" aria-label="Group">
                      #{' '}
                    </span>
                  )}
                  {c.label}
                </span>
                <span class="preview">{c.typingUntil ? 'typing…' : (c.messages.at(-1)?.text ?? 'No messages yet')}</span>
                {c.unread > 0 && c.id !== selected && (
                  <span class="badge" data-testid="unread" aria-label={`${c.unread} unread`}>
                    {c.unread}
                  </span>
                )}
              </button>
            </li>
          ))}
        </ul>
      </aside>
      <section class="detail">
        {showDevice ? (
          <DeviceView session={session} onBack={() => setShowDevice(false)} onWipe={onWipe} />
        ) : open ? (
          <ChatView session={session} conversation={open} onBack={() => setSelected(undefined)} calls={calls} />
        ) : (
          <p class="empty">Start a chat by handle or account id.</p>
        )}
      </section>
      <RevokedNotice session={session} onWipe={onWipe} />
      <CallScreen calls={calls} labelOf={(peer) => session.conversation(peer)?.label ?? shortId(peer)} />
    </div>
  );
}
