import type { PowSolver } from '@umbra/sdk';
import type { PowReply, PowRequest } from './pow.worker';

/** Registration's proof of work in a Web Worker, so the page stays responsive while it runs. */
export const solvePowInWorker: PowSolver = (challenge, accountId, difficulty) =>
  new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./pow.worker.ts', import.meta.url), { type: 'module', name: 'proof-of-work' });
    worker.onmessage = (e: MessageEvent<PowReply>) => {
      worker.terminate();
      if ('solution' in e.data) resolve(e.data.solution);
      else reject(new Error(`proof of work failed: ${e.data.error}`));
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(new Error(`proof of work failed: ${e.message}`));
    };
    worker.postMessage({ challenge, accountId, difficulty } satisfies PowRequest);
  });
