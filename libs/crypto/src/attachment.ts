/**
 * Attachments (PROTOCOL.md §9), split by responsibility: the format (sizes, nonces, keys, header), the
 * AES-GCM / SHA-256 providers, the hashing worker, encryption and decryption.
 */
export * from './attachment-format';
export {
  PIPELINE_MIN_BYTES,
  defaultAeadProvider,
  nobleAeadProvider,
  nodeAeadProvider,
  webCryptoAeadProvider,
  type AeadProvider,
  type AttachmentCipher,
  type IncrementalHash,
  type PipelinedHash,
} from './attachment-provider';
export * from './attachment-seal';
export * from './attachment-open';
