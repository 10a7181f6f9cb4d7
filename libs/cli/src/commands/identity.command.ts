import type { UmbraApiError } from '@umbra/sdk';
import type { Command } from '../command';
import { CliError } from '../cli-error';
import type { Session } from '../session';

/** Whether `err` is an answer from the server that `test` accepts. The SDK loads on demand (usage errors do without it). */
async function isApiError(err: unknown, test: (e: UmbraApiError) => boolean): Promise<boolean> {
  const sdk = await import('@umbra/sdk');
  return err instanceof sdk.UmbraApiError && test(err);
}

async function handleOf(text: string): Promise<string> {
  const { canonicalHandle } = await import('@umbra/crypto');
  try {
    return canonicalHandle(text.replace(/^@/, ''));
  } catch {
    throw new CliError(`not a valid handle: ${text} (3–32 letters a–z, digits or _)`);
  }
}

async function claim(s: Session, text: string): Promise<string> {
  const handle = await handleOf(text);
  if (!s.identity.aikSk) throw new CliError('only the device that created the account (it holds the account key) can set the handle');
  try {
    return await s.client.claimHandle(handle);
  } catch (err) {
    if (await isApiError(err, (e) => e.code === 'HANDLE_TAKEN')) throw new CliError(`@${handle} belongs to another account; pick another handle`);
    throw err;
  }
}

/** Whether the server knows this device: 401/404 mean it does not; anything else is an answer to report. */
async function registered(s: Session): Promise<boolean> {
  try {
    await s.client.authenticate();
    return true;
  } catch (err) {
    if (await isApiError(err, (e) => e.status === 401 || e.status === 404)) return false;
    throw err;
  }
}

export const identityCommands: Command[] = [
  {
    words: ['init'],
    args: '',
    summary: 'create a new identity (no phone number, no e-mail); prints the account id',
    async run({ session, out, globals }) {
      const s = await session();
      if (s.client.hasIdentity) throw new CliError(`${globals.home} already holds the identity ${s.client.identity.accountIdText}; use another --home for a new one`);
      const id = await s.client.createIdentity();
      out.result(id.accountIdText, { accountId: id.accountIdText, deviceId: id.device.deviceId });
    },
  },
  {
    words: ['register'],
    args: '',
    flags: { handle: { kind: 'string', value: 'NAME' } },
    summary: 'register the identity with the server (solves a proof of work); --handle also claims a handle',
    async run({ session, out, flags }) {
      const s = await session();
      const id = s.identity;
      const wanted = flags.get('handle');
      if (typeof wanted === 'string') await handleOf(wanted);
      let already = false;
      try {
        await s.client.register();
      } catch (err) {
        // Registering twice is not an error for the user: the account exists and this device is in it.
        const exists = await isApiError(err, (e) => e.code === 'ACCOUNT_EXISTS' || e.code === 'BAD_DEVICE_LIST');
        if (!exists || !(await registered(s))) throw err;
        already = true;
      }
      await s.client.refillPrekeys();
      const handle = typeof wanted === 'string' ? await claim(s, wanted) : undefined;
      out.result(
        [`${already ? 'already registered' : 'registered'}: ${id.accountIdText} (device ${id.device.deviceId})`, ...(handle ? [`handle: @${handle}`] : [])],
        { accountId: id.accountIdText, deviceId: id.device.deviceId, alreadyRegistered: already, ...(handle ? { handle } : {}) },
      );
    },
  },
  {
    words: ['whoami'],
    args: '',
    summary: 'account id, device id, handle',
    async run({ session, out }) {
      const s = await session();
      const id = s.identity;
      const isRegistered = await registered(s);
      const account = isRegistered ? await s.client.getAccount(id.accountIdText) : undefined;
      const handle = account?.handle ?? null;
      out.result(
        [`account:    ${id.accountIdText}`, `device:     ${id.device.deviceId}`, `handle:     ${handle ? `@${handle}` : '(none)'}`, `registered: ${isRegistered ? 'yes' : 'no (run umbra register)'}`],
        { accountId: id.accountIdText, deviceId: id.device.deviceId, handle, registered: isRegistered },
      );
    },
  },
  {
    words: ['handle', 'set'],
    args: '<name>',
    summary: "claim a handle (or move to another one) so others can write to @name; your old one is released",
    async run({ session, out, args }) {
      const s = await session();
      void s.identity;
      const handle = await claim(s, args[0]!);
      out.result(`handle: @${handle}`, { handle });
    },
  },
  {
    words: ['handle', 'clear'],
    args: '',
    summary: 'release your handle; you stay reachable by account id',
    async run({ session, out }) {
      const s = await session();
      void s.identity;
      try {
        await s.client.releaseHandle();
      } catch (err) {
        if (!(await isApiError(err, (e) => e.code === 'HANDLE_NOT_FOUND'))) throw err;
      }
      out.result('handle cleared', { handle: null });
    },
  },
];
