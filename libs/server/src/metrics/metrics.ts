import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One Prometheus registry per process (tests run several apps in one process, each with its own).
 * Metric names are defined here so docs/operations.md lists them all.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  readonly authFailures: Counter<'reason'>;
  readonly rateLimited: Counter<'bucket'>;
  readonly connectedDevices: Gauge;
  readonly messagesAccepted: Counter;
  readonly messagesStored: Counter;
  readonly messagesDelivered: Counter<'path'>;
  readonly messagesAcked: Counter;
  readonly deliveryLatency: Histogram;
  readonly storedLatency: Histogram;
  readonly jobFailures: Counter<'queue'>;
  readonly jobsProcessed: Counter<'queue'>;
  readonly queueDepth: Gauge<'queue' | 'state'>;
  readonly jobWait: Histogram<'queue'>;
  readonly jobDuration: Histogram<'queue'>;
  readonly sweptRows: Counter<'table'>;
  readonly registrations: Counter;
  readonly attachmentUploads: Counter<'event'>;
  readonly attachmentBytesUploaded: Counter;
  readonly messagesExpired: Counter<'path'>;
  readonly expiryLag: Histogram;
  readonly expiryReceipts: Counter;
  readonly expiryKeysDestroyed: Counter;

  constructor(service: string, defaults: boolean) {
    this.registry.setDefaultLabels({ service });
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'umbra_' });
    const r = [this.registry];
    this.httpRequests = new Counter({ name: 'umbra_http_requests_total', help: 'HTTP requests', labelNames: ['method', 'route', 'status'], registers: r });
    this.httpDuration = new Histogram({ name: 'umbra_http_request_duration_seconds', help: 'HTTP request duration', labelNames: ['method', 'route'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: r });
    this.authFailures = new Counter({ name: 'umbra_auth_failures_total', help: 'Rejected authentications by reason (error code)', labelNames: ['reason'], registers: r });
    this.rateLimited = new Counter({ name: 'umbra_rate_limited_total', help: 'Requests refused by a rate limit', labelNames: ['bucket'], registers: r });
    this.connectedDevices = new Gauge({ name: 'umbra_connected_devices', help: 'Devices with an open socket on this gateway', registers: r });
    this.messagesAccepted = new Counter({ name: 'umbra_messages_accepted_total', help: 'Sends accepted by the gateway and queued for the relay', registers: r });
    this.messagesStored = new Counter({ name: 'umbra_envelopes_stored_total', help: 'Envelopes stored by the relay', registers: r });
    this.messagesDelivered = new Counter({ name: 'umbra_envelopes_delivered_total', help: 'Envelopes pushed to sockets (live or drain)', labelNames: ['path'], registers: r });
    this.messagesAcked = new Counter({ name: 'umbra_envelopes_acked_total', help: 'Envelopes deleted after an ack', registers: r });
    this.deliveryLatency = new Histogram({ name: 'umbra_delivery_latency_seconds', help: 'Server timestamp to live push on the recipient gateway', buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1], registers: r });
    this.storedLatency = new Histogram({ name: 'umbra_send_stored_latency_seconds', help: 'Gateway: send received to "stored" answered', buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5], registers: r });
    this.jobFailures = new Counter({ name: 'umbra_job_failures_total', help: 'Failed BullMQ job attempts', labelNames: ['queue'], registers: r });
    this.jobsProcessed = new Counter({ name: 'umbra_jobs_processed_total', help: 'Completed BullMQ jobs', labelNames: ['queue'], registers: r });
    this.queueDepth = new Gauge({ name: 'umbra_queue_jobs', help: 'BullMQ jobs per queue and state (sampled)', labelNames: ['queue', 'state'], registers: r });
    this.jobWait = new Histogram({ name: 'umbra_job_wait_seconds', help: 'Time a BullMQ job waited in its queue before a worker took it', labelNames: ['queue'], buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5], registers: r });
    this.jobDuration = new Histogram({ name: 'umbra_job_duration_seconds', help: 'Time a worker spent on a BullMQ job', labelNames: ['queue'], buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5], registers: r });
    this.sweptRows = new Counter({ name: 'umbra_swept_rows_total', help: 'Rows deleted by the retention/expiry sweep', labelNames: ['table'], registers: r });
    this.registrations = new Counter({ name: 'umbra_registrations_total', help: 'Accounts registered', registers: r });
    this.attachmentUploads = new Counter({ name: 'umbra_attachment_uploads_total', help: 'Attachment uploads by event: started, completed, aborted (by the uploader), rejected (size mismatch), abandoned (timed out), expired', labelNames: ['event'], registers: r });
    this.attachmentBytesUploaded = new Counter({ name: 'umbra_attachment_bytes_uploaded_total', help: 'Encrypted attachment bytes in completed uploads', registers: r });
    this.messagesExpired = new Counter({ name: 'umbra_envelopes_expired_total', help: 'Stored envelopes deleted because their message vanished, by path (job or sweep)', labelNames: ['path'], registers: r });
    this.expiryLag = new Histogram({ name: 'umbra_expiry_lag_seconds', help: 'Due time of a vanishing message to the deletion of its copies', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 60, 300], registers: r });
    this.expiryReceipts = new Counter({ name: 'umbra_expiry_receipts_total', help: 'Expiry receipts: messages that vanished before any device of a recipient account received them', registers: r });
    this.expiryKeysDestroyed = new Counter({ name: 'umbra_expiry_keys_destroyed_total', help: 'Crypto-shredding window keys destroyed', registers: r });
  }
}
