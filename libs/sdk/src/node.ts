/**
 * The Node-only part of the SDK (`@umbra/sdk/node`): attachments read from and written to files,
 * uploaded over node:http. The package's main entry stays browser-safe.
 */
export * from './files';
/** The Node file transport for the front door: Umbra.open({ ..., files: nodeFiles() }). */
export * from './umbra/node-files.transport';
