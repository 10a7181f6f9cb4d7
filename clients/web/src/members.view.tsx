import { useEffect, useState } from 'preact/hooks';
import type { Conversation } from './conversation.model';
import type { Member } from './groups.service';
import { describeError, type WebSession } from './session.service';

/** A group's members; its admin adds (by @handle or account id) and removes them. */
export function MembersView({ session, conversation }: { session: WebSession; conversation: Conversation }) {
  const [members, setMembers] = useState<Member[]>([]);
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const isAdmin = conversation.group?.admin === session.accountId;

  useEffect(() => {
    let live = true;
    session.groups.members(conversation).then((m) => live && setMembers(m), () => undefined);
    return () => {
      live = false;
    };
  }, [session, conversation]);

  const run = async (action: () => Promise<void>) => {
    setError(undefined);
    setBusy(true);
    try {
      await action();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  const add = (e: Event) => {
    e.preventDefault();
    if (!text.trim()) return;
    void run(async () => {
      await session.groups.add(conversation.id, text);
      setText('');
    });
  };

  return (
    <section class="members" aria-label="Members">
      <h3>{members.length} members</h3>
      <ul data-testid="member-list">
        {members.map((m) => (
          <li key={m.id} data-testid="member">
            <span title={m.id}>{m.label}</span>
            {m.admin && <span class="tag">admin</span>}
            {isAdmin && !m.me && (
              <button type="button" class="link" data-testid="remove-member" aria-label={`Remove ${m.label}`} disabled={busy} onClick={() => void run(() => session.groups.remove(conversation.id, m.id))}>
                Remove
              </button>
            )}
          </li>
        ))}
      </ul>
      {isAdmin ? (
        <form class="row" onSubmit={add}>
          <label for="add-member" class="visually-hidden">
            Add a member
          </label>
          <input id="add-member" data-testid="add-member-input" value={text} placeholder="@handle or account id" autocomplete="off" spellcheck={false} onInput={(e) => setText(e.currentTarget.value)} />
          <button type="submit" data-testid="add-member" disabled={busy || !text.trim()}>
            Add
          </button>
        </form>
      ) : (
        <p class="hint">Only the group's admin changes its members.</p>
      )}
      {error && (
        <p class="error" role="alert" data-testid="error">
          {error}
        </p>
      )}
    </section>
  );
}
