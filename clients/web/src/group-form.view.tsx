import { useState } from 'preact/hooks';
import { describeError, type WebSession } from './session.service';

/** Creates a group: a name and its first members by @handle or account id. */
export function GroupFormView({ session, onCreated, onCancel }: { session: WebSession; onCreated: (id: string) => void; onCancel: () => void }) {
  const [name, setName] = useState('');
  const [members, setMembers] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();

  const create = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const c = await session.groups.create(name, members);
      onCreated(c.id);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="group-form" onSubmit={create} aria-label="New group">
      <label for="group-name">Group name</label>
      <input id="group-name" data-testid="group-name" value={name} maxLength={100} autocomplete="off" onInput={(e) => setName(e.currentTarget.value)} />
      <label for="group-members">Members</label>
      <textarea
        id="group-members"
        data-testid="group-members"
        rows={2}
        value={members}
        placeholder="@handles or account ids, separated by commas"
        spellcheck={false}
        onInput={(e) => setMembers(e.currentTarget.value)}
      />
      <div class="row">
        <button type="submit" data-testid="create-group" disabled={busy}>
          {busy ? 'Creating…' : 'Create group'}
        </button>
        <button type="button" class="link" onClick={onCancel}>
          Cancel
        </button>
      </div>
      {error && (
        <p class="error" role="alert" data-testid="error">
          {error}
        </p>
      )}
    </form>
  );
}
