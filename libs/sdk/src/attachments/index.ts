export * from './attachment-pointer';
export * from './attachment-upload';
export * from './attachment-download';
