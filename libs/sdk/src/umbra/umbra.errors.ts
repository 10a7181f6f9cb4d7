/** Why a front-door call was refused on this device, before anything reached the server. */
export type UmbraErrorCode =
  /** Umbra.open found no registered identity in the store (use Umbra.create or Umbra.link). */
  | 'NO_IDENTITY'
  /** Umbra.create or Umbra.link was given a store that already holds an identity (use Umbra.open). */
  | 'IDENTITY_EXISTS'
  /** Only a device holding the account key (the one that created the account) may do this. */
  | 'NOT_ACCOUNT_KEY_HOLDER'
  /** No group with this id on this device. */
  | 'UNKNOWN_GROUP'
  /** Only the group's admin (its creator) changes its members. */
  | 'NOT_GROUP_ADMIN'
  /** No message with this id in this conversation on this device (vanished, deleted, or never here). */
  | 'UNKNOWN_MESSAGE'
  /** Only your own messages can be edited or deleted for everyone. */
  | 'NOT_YOUR_MESSAGE'
  /** The device to remove is not in the account's device list, or is this device. */
  | 'UNKNOWN_DEVICE'
  /** files.send/download without a file transport (pass `files: nodeFiles()` from @umbra/sdk/node, or a browser one). */
  | 'NO_FILE_TRANSPORT'
  /** The message is not an attachment, or its pointer is malformed. */
  | 'NOT_A_FILE'
  /** The argument is not what the call takes (an empty text, a bad emoji…). */
  | 'INVALID_ARGUMENT'
  /** calls.start/answer/decline/hangup on an instance opened without the `calls` option (no peer connections). */
  | 'NO_CALL_MEDIA'
  /** The Umbra instance was closed or wiped. */
  | 'CLOSED';

/**
 * A local refusal by the front door (`code` says which). Server and network failures are
 * UmbraApiError; a key-transparency failure is KtVerificationError; bad ciphertext is CryptoError.
 */
export class UmbraError extends Error {
  constructor(
    readonly code: UmbraErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'UmbraError';
  }
}
