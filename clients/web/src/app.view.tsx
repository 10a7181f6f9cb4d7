import { useEffect, useState } from 'preact/hooks';
import { IdbStore } from './idb.store';
import { MainView } from './main.view';
import { DEVICE_DB, describeError, WebSession } from './session.service';
import { StateErrorView } from './state-error.view';
import { WelcomeView } from './welcome.view';

type State =
  | { kind: 'loading' }
  | { kind: 'welcome' }
  | { kind: 'ready'; session: WebSession }
  | { kind: 'unreadable'; error: unknown; wipeError?: string }
  | { kind: 'broken'; error: string };

/** The device this browser holds (resumed from IndexedDB), else the welcome page that creates one. */
export function App({ origin }: { origin: string }) {
  const [state, setState] = useState<State>({ kind: 'loading' });

  useEffect(() => {
    WebSession.resume(origin).then(
      (session) => setState(session ? { kind: 'ready', session } : { kind: 'welcome' }),
      (error: unknown) => setState({ kind: 'unreadable', error }),
    );
  }, [origin]);

  const wipe = async (session?: WebSession) => {
    try {
      if (session) await session.wipe();
      else await IdbStore.wipe(DEVICE_DB);
      setState({ kind: 'welcome' });
    } catch (err) {
      setState(state.kind === 'unreadable' ? { ...state, wipeError: describeError(err) } : { kind: 'broken', error: describeError(err) });
    }
  };

  switch (state.kind) {
    case 'loading':
      return (
        <p class="empty" role="status">
          Opening this device…
        </p>
      );
    case 'welcome':
      return <WelcomeView origin={origin} onReady={(session) => setState({ kind: 'ready', session })} />;
    case 'ready':
      return <MainView session={state.session} onWipe={() => wipe(state.session)} />;
    case 'unreadable':
      return <StateErrorView error={state.error} {...(state.wipeError ? { wipeError: state.wipeError } : {})} onWipe={() => wipe()} />;
    case 'broken':
      return (
        <main class="welcome">
          <h1>Umbra</h1>
          <p class="error" role="alert" data-testid="error">
            {state.error}
          </p>
          <button type="button" data-testid="wipe-confirm" onClick={() => wipe()}>
            Wipe this device
          </button>
        </main>
      );
  }
}
