import type { CallInfo, CallPeerConfig, CallPeerConnection, CallPeerContext, CallsFrontDoorOptions } from '@umbra/sdk';

/** What the call screen (WebCalls) does for the SDK: the call's connection, and its media keys. */
export interface CallMediaTarget {
  createPeerConnection(config: CallPeerConfig, ctx: CallPeerContext): Promise<CallPeerConnection>;
  mediaKeys(call: CallInfo, keys: { send: Uint8Array; receive: Uint8Array }): void;
}

/**
 * The page's side of the SDK's front door for calls (`calls` in Umbra.create/open/link): the connection
 * factory and the media keys go to the call screen that is showing.
 */
class WebCallMedia {
  target: CallMediaTarget | undefined;
  readonly options: CallsFrontDoorOptions = {
    createPeerConnection: (config, ctx) => {
      if (!this.target) throw new Error('no call screen in this page');
      return this.target.createPeerConnection(config, ctx);
    },
    onMediaKeys: (call, keys) => this.target?.mediaKeys(call, keys),
  };
}

export const webCallMedia = new WebCallMedia();
