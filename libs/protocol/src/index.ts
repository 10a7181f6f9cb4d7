export * from './limits';
export * from './errors';
export * from './schemas';
export * from './attachments';
export * from './events';
export * from './routes';
export * from './pow';
export * from './docs';
