declare module '@20minutes/s3rver';
declare module '@20minutes/s3rver/lib/middleware/authentication.js';
declare module '@20minutes/s3rver/lib/models/error.js';
