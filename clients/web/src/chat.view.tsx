import { useEffect, useRef, useState } from 'preact/hooks';
import type { ChatMessage, Conversation } from './conversation.model';
import { CallButtons, CallEntry, withCalls } from './call.view';
import type { WebCalls } from './calls.service';
import { AttachButton, UploadList, VoiceButton, useFileDrop } from './file.view';
import { MembersView } from './members.view';
import { MessageItem, type MessageActions } from './message.view';
import { SafetyControls } from './safety.view';
import { describeError, type WebSession } from './session.service';
import { TIMER_OPTIONS, describeTimer, parseTimerValue, timerValue } from './vanishing.service';

type Draft = { kind: 'new' } | { kind: 'reply'; to: ChatMessage } | { kind: 'edit'; of: ChatMessage };

/** One conversation (1:1 or group): the timer, the members, the messages (live) and the composer. */
export function ChatView({ session, conversation, onBack, calls }: { session: WebSession; conversation: Conversation; onBack: () => void; calls?: WebCalls }) {
  const [text, setText] = useState('');
  const [draft, setDraft] = useState<Draft>({ kind: 'new' });
  const [error, setError] = useState<string | undefined>();
  const [notice, setNotice] = useState<string | undefined>();
  const [showMembers, setShowMembers] = useState(false);
  const list = useRef<HTMLOListElement>(null);
  const composer = useRef<HTMLTextAreaElement>(null);
  const count = conversation.messages.length;
  const conv = conversation.id;
  const drop = useFileDrop(session.files, conv);

  useEffect(() => {
    setNotice(undefined);
    setDraft({ kind: 'new' });
    setText('');
    setShowMembers(false);
  }, [conv]);

  useEffect(() => {
    list.current?.lastElementChild?.scrollIntoView({ block: 'end' });
  }, [conv, count]);

  useEffect(() => {
    if (conversation.unread > 0) session.messages.markRead(conv).catch((err: unknown) => setError(describeError(err)));
  }, [session, conv, conversation.unread]);

  const attempt = (p: Promise<unknown>) => p.catch((err: unknown) => setError(describeError(err)));

  const send = (e: Event) => {
    e.preventDefault();
    const body = text.trim();
    if (!body) return;
    setText('');
    setError(undefined);
    setNotice(undefined);
    const d = draft;
    setDraft({ kind: 'new' });
    if (d.kind === 'edit') void attempt(session.messages.edit(conv, d.of.id, body));
    else void attempt(session.send(conv, body, d.kind === 'reply' ? d.to.id : undefined));
  };

  const actions: MessageActions = {
    reply: (m) => {
      setDraft({ kind: 'reply', to: m });
      composer.current?.focus();
    },
    react: (m, emoji) => void attempt(session.messages.react(conv, m.id, emoji)),
    edit: (m) => {
      setDraft({ kind: 'edit', of: m });
      setText(m.text);
      composer.current?.focus();
    },
    remove: (m) =>
      void attempt(
        session.messages.deleteForEveryone(conv, m.id).then((recalled) =>
          setNotice(`Deleted for everyone${recalled > 0 ? ` (${recalled} ${recalled === 1 ? 'copy' : 'copies'} recalled before delivery)` : ''}.`),
        ),
      ),
  };

  const changeTimer = (value: string) => {
    setError(undefined);
    void attempt(session.vanishing.set(conv, parseTimerValue(value)));
  };

  const typing = conversation.typingUntil !== undefined && conversation.typingUntil > Date.now();
  const now = Date.now();
  return (
    <div class="chat" {...drop}>
      <header class="bar">
        <button type="button" class="back" onClick={onBack} aria-label="Back to conversations">
          ←
        </button>
        <h2 data-testid="chat-title">{conversation.label}</h2>
        {calls && conversation.kind === 'direct' && <CallButtons calls={calls} peer={conv} label={conversation.label} />}
        <SafetyControls session={session} conversation={conversation} />
        {conversation.kind === 'group' && (
          <button type="button" class="link" data-testid="members" aria-expanded={showMembers} onClick={() => setShowMembers(!showMembers)}>
            Members
          </button>
        )}
        <label for="timer" class="visually-hidden">
          Vanishing messages
        </label>
        <select id="timer" data-testid="timer" value={timerValue(conversation.timer)} title={describeTimer(conversation.timer)} onChange={(e) => changeTimer(e.currentTarget.value)}>
          <option value="off">Timer off</option>
          {TIMER_OPTIONS.map((o) => (
            <option key={`${o.seconds}:send`} value={`${o.seconds}:send`}>
              {o.label}
            </option>
          ))}
          {TIMER_OPTIONS.map((o) => (
            <option key={`${o.seconds}:read`} value={`${o.seconds}:read`}>
              {o.label} after read
            </option>
          ))}
        </select>
      </header>
      {conversation.timer && (
        <p class="timer-note" data-testid="timer-note">
          {describeTimer(conversation.timer)}
        </p>
      )}
      {showMembers && <MembersView session={session} conversation={conversation} />}
      <ol class="messages" ref={list} aria-live="polite" aria-label={`Messages in ${conversation.label}`}>
        {withCalls(conversation.messages, calls?.historyWith(conv) ?? []).map((m) =>
          'callId' in m ? (
            <CallEntry key={`call-${m.callId}`} entry={m} />
          ) : (
            <MessageItem key={m.id} m={m} conversation={conversation} now={now} actions={actions} files={session.files} />
          ),
        )}
      </ol>
      <UploadList files={session.files} conv={conv} />
      <p class="typing" data-testid={typing ? 'typing' : undefined} aria-live="polite">
        {typing ? `${conversation.label} is typing…` : ''}
      </p>
      {notice && (
        <p class="notice" role="status" data-testid="notice">
          {notice}
        </p>
      )}
      {error && (
        <p class="error" role="alert" data-testid="error">
          {error}
        </p>
      )}
      {draft.kind !== 'new' && (
        <p class="draft" data-testid={draft.kind === 'reply' ? 'replying' : 'editing'}>
          {draft.kind === 'reply' ? `Replying to “${draft.to.text.slice(0, 80)}”` : 'Editing your message'}
          <button
            type="button"
            class="link"
            data-testid="cancel-draft"
            onClick={() => {
              if (draft.kind === 'edit') setText('');
              setDraft({ kind: 'new' });
            }}
          >
            Cancel
          </button>
        </p>
      )}
      <form class="composer" onSubmit={send}>
        <AttachButton files={session.files} conv={conv} />
        <VoiceButton files={session.files} conv={conv} onError={setError} />
        <label for="composer" class="visually-hidden">
          Message
        </label>
        <textarea
          id="composer"
          ref={composer}
          data-testid="composer"
          rows={1}
          value={text}
          placeholder={draft.kind === 'edit' ? 'Edited message' : 'Message'}
          onInput={(e) => {
            setText(e.currentTarget.value);
            session.messages.typing(conv);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey) send(e);
            if (e.key === 'Escape' && draft.kind !== 'new') setDraft({ kind: 'new' });
          }}
        />
        <button type="submit" data-testid="send" disabled={!text.trim()}>
          {draft.kind === 'edit' ? 'Save' : 'Send'}
        </button>
      </form>
    </div>
  );
}
