// In-process events with Pub/Sub's semantics: named subscriptions, ack by returning, redelivery on nack.

import { randomUUID } from 'node:crypto';
import type { EventBus, EventHandler, EventMessage, ReceivedEvent } from '../../ports/events.js';

export interface InProcessEventBusOptions {
  /** Deliveries of one message before it is set aside as dead. @default 5 */
  readonly maxDeliveries?: number;
  /** Pause before a redelivery. @default 10 ms per attempt */
  readonly redeliveryDelayMs?: (attempt: number) => number;
}

export class InProcessEventBus implements EventBus {
  readonly description = 'inprocess';
  /** Messages whose every delivery failed, kept for inspection. */
  readonly deadLetters: ReceivedEvent[] = [];
  private readonly subscriptions = new Map<string, Map<string, EventHandler>>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly maxDeliveries: number;
  private readonly redeliveryDelayMs: (attempt: number) => number;

  constructor(options: InProcessEventBusOptions = {}) {
    this.maxDeliveries = options.maxDeliveries ?? 5;
    this.redeliveryDelayMs = options.redeliveryDelayMs ?? ((attempt) => 10 * attempt);
  }

  async publish(topic: string, message: EventMessage): Promise<string> {
    const id = randomUUID();
    // A topic without subscriptions drops its messages, as Pub/Sub does.
    for (const handler of this.subscriptions.get(topic)?.values() ?? []) {
      const delivery = this.deliver(handler, { ...message, id, topic, deliveryAttempt: 1 });
      this.inFlight.add(delivery);
      void delivery.finally(() => this.inFlight.delete(delivery));
    }
    return id;
  }

  private async deliver(handler: EventHandler, event: ReceivedEvent): Promise<void> {
    try {
      await handler(event);
    } catch {
      if (event.deliveryAttempt >= this.maxDeliveries) {
        this.deadLetters.push(event);
        return;
      }
      await new Promise((r) => setTimeout(r, this.redeliveryDelayMs(event.deliveryAttempt)));
      await this.deliver(handler, { ...event, deliveryAttempt: event.deliveryAttempt + 1 });
    }
  }

  async subscribe(topic: string, subscription: string, handler: EventHandler): Promise<() => Promise<void>> {
    let subs = this.subscriptions.get(topic);
    if (!subs) this.subscriptions.set(topic, (subs = new Map()));
    if (subs.has(subscription)) throw new Error(`subscription ${subscription} already exists on ${topic}`);
    subs.set(subscription, handler);
    return async () => {
      subs.delete(subscription);
    };
  }

  /** Resolves once every delivery under way has been acked or set aside. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  async close(): Promise<void> {
    await this.drain();
    this.subscriptions.clear();
  }
}
