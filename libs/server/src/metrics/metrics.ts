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
  readonly pubsubResubscribes: Counter;
  readonly messagesStored: Counter;
  readonly messagesDelivered: Counter<'path'>;
  readonly messagesAcked: Counter;
  readonly deliveryLatency: Histogram;
  readonly storedLatency: Histogram;
  readonly jobFailures: Counter<'queue'>;
  readonly invalidJobItems: Counter<'queue'>;
  readonly sendsQueueFull: Counter;
  readonly wakeups: Counter<'reason'>;
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
  readonly clockOffset: Gauge;
  readonly expiryReceipts: Counter;
  readonly expiryKeysDestroyed: Counter;
  readonly witnessAddSth: Counter<'outcome'>;
  readonly witnessForks: Counter;
  readonly ktTreeSize: Gauge;
  readonly ktSthAge: Gauge;
  readonly ktPending: Gauge;
  readonly ktInclusionLatency: Histogram;
  readonly ktWitnessFailures: Counter<'witness' | 'reason'>;

  constructor(service: string, defaults: boolean) {
    this.registry.setDefaultLabels({ service });
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'umbra_' });
    const r = [this.registry];
    this.httpRequests = new Counter({ name: 'umbra_http_requests_total', help: 'HTTP requests', labelNames: ['method', 'route', 'status'], registers: r });
    this.httpDuration = new Histogram({ name: 'umbra_http_request_duration_seconds', help: 'HTTP request duration', labelNames: ['method', 'route'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: r });
    this.authFailures = new Counter({ name: 'umbra_auth_failures_total', help: 'Rejected authentications by reason (error code)', labelNames: ['reason'], registers: r });
    this.rateLimited = new Counter({ name: 'umbra_rate_limited_total', help: 'Requests refused by a rate limit', labelNames: ['bucket'], registers: r });
    this.connectedDevices = new Gauge({ name: 'umbra_connected_devices', help: 'Devices with an open socket on this gateway', registers: r });
    this.pubsubResubscribes = new Counter({ name: 'umbra_pubsub_resubscribes_total', help: 'Times the pub/sub audit found a subscription missing in Redis and subscribed again', registers: r });
    this.messagesAccepted = new Counter({ name: 'umbra_messages_accepted_total', help: 'Sends accepted by the gateway and queued for the relay', registers: r });
    this.messagesStored = new Counter({ name: 'umbra_envelopes_stored_total', help: 'Envelopes stored by the relay', registers: r });
    this.messagesDelivered = new Counter({ name: 'umbra_envelopes_delivered_total', help: 'Envelopes pushed to sockets (live or drain)', labelNames: ['path'], registers: r });
    this.messagesAcked = new Counter({ name: 'umbra_envelopes_acked_total', help: 'Envelopes deleted after an ack', registers: r });
    this.deliveryLatency = new Histogram({ name: 'umbra_delivery_latency_seconds', help: 'Server timestamp to live push on the recipient gateway', buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1], registers: r });
    this.storedLatency = new Histogram({ name: 'umbra_send_stored_latency_seconds', help: 'Gateway: send received to "stored" answered', buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5], registers: r });
    this.jobFailures = new Counter({ name: 'umbra_job_failures_total', help: 'Failed BullMQ job attempts', labelNames: ['queue'], registers: r });
    this.invalidJobItems = new Counter({ name: 'umbra_invalid_job_items_total', help: 'Items of BullMQ jobs dropped as invalid (the rest of the job still runs)', labelNames: ['queue'], registers: r });
    this.sendsQueueFull = new Counter({ name: 'umbra_sends_queue_full_total', help: 'Sends refused with QUEUE_FULL because a recipient device queue was at its cap', registers: r });
    this.wakeups = new Counter({ name: 'umbra_wakeups_total', help: 'Relay: devices without a socket woken through the WakeupNotifier, by reason (urgent: a send marked urgent, such as a call offer)', labelNames: ['reason'], registers: r });
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
    this.clockOffset = new Gauge({ name: 'umbra_clock_offset_seconds', help: "How far this process's wall clock is behind the database's (negative: ahead); deletions use the database's time", registers: r });
    this.expiryReceipts = new Counter({ name: 'umbra_expiry_receipts_total', help: 'Expiry receipts: messages that vanished before any device of a recipient account received them', registers: r });
    this.expiryKeysDestroyed = new Counter({ name: 'umbra_expiry_keys_destroyed_total', help: 'Crypto-shredding window keys destroyed', registers: r });
    this.witnessAddSth = new Counter({ name: 'umbra_witness_add_sth_total', help: 'Witness: tree heads pushed to it, by outcome (cosigned, first (trust on first use), old_size_mismatch, fork, bad_proof, refused)', labelNames: ['outcome'], registers: r });
    this.witnessForks = new Counter({ name: 'umbra_witness_forks_total', help: 'Witness: log forks detected (a signed tree head conflicting with one it cosigned); the log is then refused until an operator clears it', registers: r });
    this.ktTreeSize = new Gauge({ name: 'umbra_kt_tree_size', help: 'Key transparency: leaves in the log (as this key-directory last saw it)', registers: r });
    this.ktSthAge = new Gauge({ name: 'umbra_kt_sth_age_seconds', help: 'Key transparency: age of the newest STH served (with the witness quorum); clients refuse STHs older than 24 h', registers: r });
    this.ktPending = new Gauge({ name: 'umbra_kt_pending_statements', help: 'Key transparency: accepted device lists and handle claims not yet in the log', registers: r });
    this.ktInclusionLatency = new Histogram({ name: 'umbra_kt_inclusion_latency_seconds', help: 'Key transparency: statement accepted to leaf appended under a signed tree head (must stay below the MMD)', buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600], registers: r });
    this.ktWitnessFailures = new Counter({ name: 'umbra_kt_witness_failures_total', help: 'Key transparency: failed pushes of a tree head to a witness, by witness id prefix and reason (unreachable, http_<status>, fork_reported, bad_cosignature)', labelNames: ['witness', 'reason'], registers: r });
  }
}
