import type { IdentityChange } from '@umbra/sdk';
import { useEffect, useState } from 'preact/hooks';
import { Modal } from './modal.view';
import { QrCode } from './qr.view';
import './link-safety.css';
import { acknowledgeChange, clearVerified, compareCode, identityChanges, markVerified, safetyInfo, type SafetyInfo } from './safety.service';
import { describeError, type WebSession } from './session.service';

/** The 60-digit safety number and its QR code for one contact; mark or clear "verified". */
function SafetyDialog({ session, accountId, label, onClose, onChanged }: { session: WebSession; accountId: string; label: string; onClose: () => void; onChanged: () => void }) {
  const [info, setInfo] = useState<SafetyInfo | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [theirs, setTheirs] = useState('');
  const [compared, setCompared] = useState<boolean | undefined>();

  const load = () =>
    safetyInfo(session, accountId).then(
      (i) => setInfo(i),
      (err: unknown) => setError(describeError(err)),
    );
  useEffect(() => void load(), [session, accountId]);

  const toggle = async () => {
    if (!info) return;
    setError(undefined);
    try {
      await (info.verified ? clearVerified(session, accountId) : markVerified(session, info));
      await load();
      onChanged();
    } catch (err) {
      setError(describeError(err));
    }
  };

  const compare = async (e: Event) => {
    e.preventDefault();
    if (!info || !theirs.trim()) return;
    setError(undefined);
    try {
      const match = await compareCode(session, info, theirs);
      setCompared(match);
      if (match) {
        await load();
        onChanged();
      }
    } catch (err) {
      setError(describeError(err));
    }
  };

  return (
    <Modal labelledBy="safety-title" testId="safety-dialog" onClose={onClose}>
      <h2 id="safety-title">Safety number with {label}</h2>
      {!info && !error && <p role="status">Computing…</p>}
      {info && (
        <>
          <p class="hint">Compare these digits with {label} in person or over another channel you trust; they see the same number. If they match, nobody sits between you.</p>
          <p class="safety-number" data-testid="safety-number" data-digits={info.digits} aria-label={`Safety number ${info.groups.join(' ')}`}>
            {info.groups.map((g, i) => (
              <span key={i}>{g}</span>
            ))}
          </p>
          <QrCode text={info.qr} label="Safety number as a QR code" testId="safety-qr" />
          <p class={info.verified ? 'ok' : 'hint'} data-testid="verified-state">
            {info.verified ? `Verified on ${new Date(info.verified.at).toLocaleDateString()}.` : 'Not verified.'}
          </p>
          <form class="compare" onSubmit={compare}>
            <label for="safety-theirs">Or compare their code (scanned, or from umbra safety-number --json)</label>
            <div class="row">
              <input
                id="safety-theirs"
                data-testid="safety-compare-input"
                value={theirs}
                placeholder="umbra-sn:1:…"
                autocomplete="off"
                spellcheck={false}
                onInput={(e) => {
                  setTheirs(e.currentTarget.value);
                  setCompared(undefined);
                }}
              />
              <button type="submit" data-testid="safety-compare" disabled={!theirs.trim()}>
                Compare
              </button>
            </div>
            {compared !== undefined && (
              <p class={compared ? 'ok' : 'error'} role="status" data-testid="safety-compare-result">
                {compared ? 'The codes match: marked as verified.' : `The codes do not match: this is not the safety number ${label} sees. Do not mark them verified.`}
              </p>
            )}
          </form>
        </>
      )}
      {error && (
        <p class="error" role="alert" data-testid="error">
          {error}
        </p>
      )}
      <div class="actions">
        {info && (
          <button type="button" data-testid="mark-verified" aria-pressed={info.verified !== undefined} onClick={toggle}>
            {info.verified ? 'Clear verification' : 'Mark as verified'}
          </button>
        )}
        <button type="button" class="link" data-testid="safety-close" onClick={onClose}>
          Close
        </button>
      </div>
    </Modal>
  );
}

/** Blocks the page until the user acknowledged that a contact's handle now names another account (§11). */
function IdentityWarning({ change, onAcknowledge, onShowSafety }: { change: IdentityChange; onAcknowledge: () => void; onShowSafety: () => void }) {
  return (
    <Modal labelledBy="identity-title" testId="identity-warning">
      <h2 id="identity-title" class="error">
        @{change.handle} has a new identity
      </h2>
      <p>
        The handle <strong>@{change.handle}</strong> now belongs to a different account. Messages sent to @{change.handle} now go to that new key, and your safety number with
        it is different.
      </p>
      <dl class="change">
        <dt>Before</dt>
        <dd>
          <code data-testid="identity-previous">{change.previous}</code>
        </dd>
        <dt>Now</dt>
        <dd>
          <code data-testid="identity-current">{change.current}</code>
        </dd>
      </dl>
      <p class="hint">
        This happens when they reinstalled or lost their device, or when someone else took the handle. Until you have compared the new safety number with them, do not trust it.
      </p>
      <div class="actions">
        <button type="button" data-testid="identity-show-safety" onClick={onShowSafety}>
          Compare the new safety number
        </button>
        <button type="button" class="link" data-testid="identity-ack" onClick={onAcknowledge}>
          I understand
        </button>
      </div>
    </Modal>
  );
}

/**
 * The chat header's safety controls for a 1:1 conversation: the "safety number" button (with the
 * verified mark) and, when the contact's identity changed, a blocking warning.
 */
export function SafetyControls({ session, conversation }: { session: WebSession; conversation: { id: string; label: string } }) {
  const direct = conversation.id.startsWith('um1');
  const [changes, setChanges] = useState<IdentityChange[]>([]);
  const [verified, setVerified] = useState(false);
  const [open, setOpen] = useState<{ accountId: string; label: string } | undefined>();
  const [revision, setRevision] = useState(0);

  useEffect(() => {
    if (!direct) return;
    let live = true;
    identityChanges(session, conversation.id).then(
      (c) => live && setChanges(c),
      () => undefined,
    );
    session.umbra.contacts.verification(conversation.id).then(
      (v) => live && setVerified(v !== undefined),
      () => undefined,
    );
    const off = session.umbra.on('identity-change', () => setRevision((n) => n + 1));
    return () => {
      live = false;
      off();
    };
  }, [session, conversation.id, direct, revision]);

  if (!direct) return null;
  const change = changes[0];
  const acknowledge = async (c: IdentityChange) => {
    await acknowledgeChange(session, c).catch(() => undefined);
    setRevision((n) => n + 1);
  };
  return (
    <>
      <button
        type="button"
        class="link safety"
        data-testid="safety-button"
        aria-label={`Safety number with ${conversation.label}${verified ? ' (verified)' : ''}`}
        onClick={() => setOpen({ accountId: conversation.id, label: conversation.label })}
      >
        {verified ? (
          <span aria-hidden="true">✓</span>
        ) : (
          <svg class="icon" viewBox="0 0 16 16" aria-hidden="true">
            <path d="M8 1 2.5 3v4.2c0 3.4 2.3 6.4 5.5 7.8 3.2-1.4 5.5-4.4 5.5-7.8V3L8 1Zm0 1.6 4 1.5v3.1c0 2.6-1.6 5-4 6.2-2.4-1.2-4-3.6-4-6.2V4.1l4-1.5Z" fill="currentColor" />
          </svg>
        )}
        <span class="wide-only">{verified ? ' Verified' : ' Safety number'}</span>
      </button>
      {open && <SafetyDialog session={session} accountId={open.accountId} label={open.label} onClose={() => setOpen(undefined)} onChanged={() => setRevision((n) => n + 1)} />}
      {change && !open && (
        <IdentityWarning
          change={change}
          onAcknowledge={() => void acknowledge(change)}
          onShowSafety={() => {
            void acknowledge(change);
            setOpen({ accountId: change.current, label: `@${change.handle}` });
          }}
        />
      )}
    </>
  );
}
