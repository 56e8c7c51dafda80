// The event hub: fan-out of BBS events to stream subscribers, as the BBS's events/hub.go does.
// Each subscriber has a bounded buffer (1,024 events by default, MAX_PENDING_SUBSCRIBER_EVENTS in
// the BBS). The buffer holds the events its stream has not yet handed to the socket; a consumer
// too slow to keep it from filling is cut off (the BBS's ErrSlowConsumer) rather than letting
// memory grow. There is no replay: a subscriber sees only what is emitted after it subscribed.
import type { Logger } from '../../../lib/log.js';

export const DEFAULT_SUBSCRIBER_BUFFER_SIZE = 1024;

/** The SSE event names of the BBS (models/events.go). */
export type EventName =
  | 'desired_lrp_created'
  | 'desired_lrp_changed'
  | 'desired_lrp_removed'
  | 'actual_lrp_instance_created'
  | 'actual_lrp_instance_changed'
  | 'actual_lrp_instance_removed'
  | 'actual_lrp_crashed'
  | 'task_created'
  | 'task_changed'
  | 'task_removed';

export interface HubEvent {
  readonly name: EventName;
  /** Base64 of the event's protobuf bytes, computed once and shared by every subscriber. */
  readonly data: string;
  /**
   * The cell an instance event concerns ('' for an instance no cell holds). Undefined for events
   * that are not about one instance (desired LRP events), which every subscriber receives.
   */
  readonly cellId?: string;
}

export type SubscriptionEndReason = 'unsubscribed' | 'slow-consumer' | 'hub-closed';

export interface SubscriptionListener {
  /** Events arrived in a queue that was empty. */
  onEvents(): void;
  /** The subscription ended; queued events are dropped. */
  onEnd(reason: SubscriptionEndReason): void;
}

export interface EventSubscription {
  /** '' receives every event; otherwise instance events of other cells are filtered out. */
  readonly cellId: string;
  readonly bufferSize: number;
  readonly pending: number;
  readonly ended: boolean;
  /** Removes and returns up to max queued events, oldest first. */
  take(max: number): HubEvent[];
  listen(listener: SubscriptionListener): void;
  /** Ends the subscription (the stream closed). */
  close(): void;
}

export interface SubscribeOptions {
  cellId?: string;
  bufferSize?: number;
}

export interface EventHub {
  subscribe(options?: SubscribeOptions): EventSubscription;
  emit(name: EventName, payload: Uint8Array, cellId?: string): void;
  readonly subscriberCount: number;
  /** Ends every subscription; later subscriptions start ended. */
  close(): void;
}

export interface EventHubOptions {
  /** Names the hub in log lines ('lrp-instances', 'tasks'). */
  name: string;
  logger: Logger;
  bufferSize?: number;
}

export function createEventHub(options: EventHubOptions): EventHub {
  const logger = options.logger.child({ hub: options.name });
  const defaultBufferSize = options.bufferSize ?? DEFAULT_SUBSCRIBER_BUFFER_SIZE;
  const subscribers = new Set<Subscriber>();
  let closed = false;

  class Subscriber implements EventSubscription {
    private queue: HubEvent[] = [];
    private listener: SubscriptionListener | undefined;
    endReason: SubscriptionEndReason | undefined;

    constructor(
      readonly cellId: string,
      readonly bufferSize: number,
    ) {}

    get pending() {
      return this.queue.length;
    }

    get ended() {
      return this.endReason !== undefined;
    }

    take(max: number): HubEvent[] {
      return this.queue.length <= max ? this.queue.splice(0) : this.queue.splice(0, max);
    }

    listen(listener: SubscriptionListener) {
      this.listener = listener;
      if (this.endReason !== undefined) listener.onEnd(this.endReason);
      else if (this.queue.length > 0) listener.onEvents();
    }

    offer(event: HubEvent) {
      if (this.cellId !== '' && event.cellId !== undefined && event.cellId !== this.cellId) return;
      if (this.queue.length >= this.bufferSize) {
        logger.error({ cell_id: this.cellId, buffer_size: this.bufferSize }, 'event-subscriber-too-slow');
        this.end('slow-consumer');
        return;
      }
      this.queue.push(event);
      if (this.queue.length === 1) this.listener?.onEvents();
    }

    end(reason: SubscriptionEndReason) {
      if (this.endReason !== undefined) return;
      this.endReason = reason;
      this.queue = [];
      subscribers.delete(this);
      this.listener?.onEnd(reason);
    }

    close() {
      this.end('unsubscribed');
    }
  }

  return {
    subscribe(subscribeOptions = {}) {
      const subscriber = new Subscriber(subscribeOptions.cellId ?? '', subscribeOptions.bufferSize ?? defaultBufferSize);
      if (closed) subscriber.end('hub-closed');
      else subscribers.add(subscriber);
      return subscriber;
    },
    emit(name, payload, cellId) {
      if (closed || subscribers.size === 0) return;
      const event: HubEvent = { name, data: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64'), cellId };
      // A copy, because a slow subscriber leaves the set while we walk it.
      for (const subscriber of [...subscribers]) subscriber.offer(event);
    },
    get subscriberCount() {
      return subscribers.size;
    },
    close() {
      if (closed) return;
      closed = true;
      for (const subscriber of [...subscribers]) subscriber.end('hub-closed');
    },
  };
}
