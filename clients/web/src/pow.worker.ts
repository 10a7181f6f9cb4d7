import { solvePow } from '@umbra/sdk';

export interface PowRequest {
  challenge: Uint8Array;
  accountId: Uint8Array;
  difficulty: number;
}
export type PowReply = { solution: Uint8Array } | { error: string };

// The worker's global scope (the DOM and WebWorker libs cannot both be loaded in one program).
const scope = self as unknown as { onmessage: ((e: MessageEvent<PowRequest>) => void) | null; postMessage(reply: PowReply): void };

scope.onmessage = (e) => {
  const { challenge, accountId, difficulty } = e.data;
  solvePow(challenge, accountId, difficulty).then(
    (solution) => scope.postMessage({ solution }),
    (err: unknown) => scope.postMessage({ error: err instanceof Error ? err.message : String(err) }),
  );
};
