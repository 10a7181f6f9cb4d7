export * from './call-signal';
export * from './call.machine';
export * from './call-log';
export * from './peer-connection';
export * from './calls.service';
