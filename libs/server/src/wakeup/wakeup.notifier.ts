import type { DeviceAddress } from '../database/types';
import type { Metrics } from '../metrics/metrics';

/** Why a device is woken: `urgent` = a send marked urgent (a call offer) found it without a socket. */
export type WakeupReason = 'urgent';

/**
 * Wakes devices that have no socket so they connect and fetch their queue. It learns only which
 * device to wake and why, never an envelope. A push provider (APNs, FCM, UnifiedPush) implements this
 * with the device's push token and replaces the default in the relay's module.
 */
export abstract class WakeupNotifier {
  abstract wake(devices: DeviceAddress[], reason: WakeupReason): Promise<void>;
}

/** The default while no push provider exists: counts the wake-ups it would send. */
export class CountingWakeupNotifier extends WakeupNotifier {
  constructor(private readonly metrics: Metrics) {
    super();
  }

  wake(devices: DeviceAddress[], reason: WakeupReason): Promise<void> {
    if (devices.length > 0) this.metrics.wakeups.inc({ reason }, devices.length);
    return Promise.resolve();
  }
}
