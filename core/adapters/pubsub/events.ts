// The production event bus: Pub/Sub topics and subscriptions (or the emulator at PUBSUB_EMULATOR_HOST),
// creating what does not exist yet, with redelivery on nack and a dead-letter topic per subscription.

import {
  Duration,
  type Message,
  PubSub,
  type Subscription,
  SubscriptionCloseBehaviors,
  type Topic,
} from '@google-cloud/pubsub';
import { BadInputError, ProcessingError } from '../../errors.js';
import type { EventBus, EventHandler, EventMessage, ReceivedEvent } from '../../ports/events.js';

/** gRPC status codes the client reports. */
const ALREADY_EXISTS = 6;

export interface PubSubEventBusOptions {
  /**
   * Seconds a subscriber has to ack before Pub/Sub redelivers, for subscriptions this bus creates. The client
   * extends the lease while a handler runs (up to an hour), so this bounds only how fast a crashed
   * subscriber's messages come back. @default 60
   */
  readonly ackDeadlineSeconds?: number;
  /** Pub/Sub's redelivery backoff after a nack, for subscriptions this bus creates. @default 10 */
  readonly minimumBackoffSeconds?: number;
  /** @default 600 */
  readonly maximumBackoffSeconds?: number;
  /**
   * Deliveries before a message goes to the subscription's dead-letter topic (`<subscription>-dead-letter`,
   * kept by a subscription of the same name); Pub/Sub allows 5 to 100. @default 5
   */
  readonly maxDeliveryAttempts?: number;
  /** Messages one subscription handles at once in this process. @default 1 */
  readonly maxConcurrentMessages?: number;
  /** How long stopping a subscription waits for handlers under way before it nacks them. @default 30 */
  readonly closeTimeoutSeconds?: number;
  /**
   * Where a subscription's stream errors go (the client retries transient ones itself; these are not).
   * @default a process warning on stderr
   */
  readonly onSubscriptionError?: (error: Error, subscription: string) => void;
}

function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The JSON body of a message, which the port wants as an object. */
function bodyOf(message: Message, subscription: string): Record<string, unknown> {
  const text = message.data.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BadInputError(`message ${message.id} on ${subscription} is not JSON: ${text.slice(0, 200)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new BadInputError(`message ${message.id} on ${subscription} is not a JSON object: ${text.slice(0, 200)}`);
  }
  return parsed as Record<string, unknown>;
}

export class PubSubEventBus implements EventBus {
  readonly description: string;
  private readonly client: PubSub;
  private readonly topics = new Map<string, Promise<Topic>>();
  private readonly open = new Set<() => Promise<void>>();
  private closing: Promise<void> | undefined;
  private readonly options: Required<Omit<PubSubEventBusOptions, 'onSubscriptionError'>> &
    Pick<PubSubEventBusOptions, 'onSubscriptionError'>;

  constructor(
    readonly projectId: string,
    options: PubSubEventBusOptions = {},
  ) {
    const emulator = process.env.PUBSUB_EMULATOR_HOST;
    this.description = `pubsub://${projectId}${emulator ? ` (emulator at ${emulator})` : ''}`;
    this.options = {
      ackDeadlineSeconds: options.ackDeadlineSeconds ?? 60,
      minimumBackoffSeconds: options.minimumBackoffSeconds ?? 10,
      maximumBackoffSeconds: options.maximumBackoffSeconds ?? 600,
      maxDeliveryAttempts: options.maxDeliveryAttempts ?? 5,
      maxConcurrentMessages: options.maxConcurrentMessages ?? 1,
      closeTimeoutSeconds: options.closeTimeoutSeconds ?? 30,
      onSubscriptionError: options.onSubscriptionError,
    };
    // The client reads PUBSUB_EMULATOR_HOST itself (plain-text gRPC, no credentials); otherwise it uses
    // Application Default Credentials or Workload Identity.
    this.client = new PubSub({ projectId });
  }

  /** The topic, created when it does not exist; the answer is kept, so a topic is checked once per process. */
  private topic(name: string): Promise<Topic> {
    let topic = this.topics.get(name);
    if (!topic) {
      topic = (async () => {
        const t = this.client.topic(name);
        const [exists] = await t.exists();
        if (!exists) {
          try {
            await this.client.createTopic(name);
          } catch (err) {
            // Another process created it first.
            if (grpcCode(err) !== ALREADY_EXISTS) throw err;
          }
        }
        return t;
      })();
      this.topics.set(name, topic);
      // A failed check is not kept: the next call tries again.
      topic.catch(() => this.topics.delete(name));
    }
    return topic;
  }

  async publish(topicName: string, message: EventMessage): Promise<string> {
    try {
      const topic = await this.topic(topicName);
      return await topic.publishMessage({
        data: Buffer.from(JSON.stringify(message.data)),
        attributes: { ...message.attributes },
      });
    } catch (err) {
      throw new ProcessingError(
        `publishing to ${topicName} in ${this.description} failed: ${err instanceof Error ? err.message : String(err)}`,
        { transient: true, cause: err },
      );
    }
  }

  /** The subscription, created on the topic with our ack deadline, retry and dead-letter policies if missing. */
  private async ensureSubscription(topicName: string, name: string): Promise<void> {
    const topic = await this.topic(topicName);
    const existing = this.client.subscription(name);
    const [exists] = await existing.exists();
    if (exists) {
      const [metadata] = await existing.getMetadata();
      if (metadata.topic !== topic.name) {
        throw new BadInputError(
          `subscription ${name} exists on ${metadata.topic}, not on ${topic.name}: pick another subscription name`,
          { where: name },
        );
      }
      return;
    }
    const deadLetter = await this.topic(`${name}-dead-letter`);
    // A topic without subscriptions drops its messages: this one keeps dead letters for a person to read.
    await this.createSubscription(deadLetter, `${name}-dead-letter`, {});
    await this.createSubscription(topic, name, {
      ackDeadlineSeconds: this.options.ackDeadlineSeconds,
      retryPolicy: {
        minimumBackoff: { seconds: this.options.minimumBackoffSeconds },
        maximumBackoff: { seconds: this.options.maximumBackoffSeconds },
      },
      deadLetterPolicy: { deadLetterTopic: deadLetter.name, maxDeliveryAttempts: this.options.maxDeliveryAttempts },
    });
  }

  private async createSubscription(
    topic: Topic,
    name: string,
    options: Parameters<Topic['createSubscription']>[1],
  ): Promise<void> {
    try {
      await topic.createSubscription(name, options);
    } catch (err) {
      if (grpcCode(err) !== ALREADY_EXISTS) throw err;
    }
  }

  async subscribe(topicName: string, name: string, handler: EventHandler): Promise<() => Promise<void>> {
    await this.ensureSubscription(topicName, name);
    const subscription: Subscription = this.client.subscription(name, {
      // One message at a time by default: the handlers run pipeline phases, and excess messages stay leased
      // by the client instead of being dispatched.
      flowControl: { maxMessages: this.options.maxConcurrentMessages, allowExcessMessages: false },
      closeOptions: {
        behavior: SubscriptionCloseBehaviors.WaitForProcessing,
        timeout: Duration.from({ seconds: this.options.closeTimeoutSeconds }),
      },
    });
    // Without a dead-letter policy Pub/Sub reports no delivery attempt: count the ones this process saw.
    const seen = new Map<string, number>();
    const inFlight = new Set<Promise<void>>();
    const onMessage = (message: Message) => {
      const count = (seen.get(message.id) ?? 0) + 1;
      seen.set(message.id, count);
      const work = (async () => {
        try {
          const event: ReceivedEvent = {
            id: message.id,
            topic: topicName,
            data: bodyOf(message, name),
            attributes: { ...message.attributes },
            deliveryAttempt: message.deliveryAttempt > 0 ? message.deliveryAttempt : count,
          };
          await handler(event);
          seen.delete(message.id);
          message.ack();
        } catch {
          // Redelivered after the subscription's backoff; the handler reports its own failure.
          message.nack();
        }
      })();
      inFlight.add(work);
      void work.finally(() => inFlight.delete(work));
    };
    const onError = (error: Error) => {
      if (this.options.onSubscriptionError) this.options.onSubscriptionError(error, name);
      else process.emitWarning(`Pub/Sub subscription ${name}: ${error.message}`);
    };
    subscription.on('message', onMessage);
    subscription.on('error', onError);
    let stopped: Promise<void> | undefined;
    const stop = () => {
      stopped ??= (async () => {
        this.open.delete(stop);
        // No new message reaches the handler, and those under way finish and ack. Messages the client still
        // holds (flow control keeps excess ones leased) are handed back at once for redelivery: closing waits
        // for every leased message to be processed, and would otherwise wait for them until its timeout.
        subscription.removeListener('message', onMessage);
        const handBack = (message: Message) => message.nack();
        subscription.on('message', handBack);
        await Promise.all([...inFlight]);
        await subscription.close();
        subscription.removeListener('message', handBack);
        subscription.removeListener('error', onError);
      })();
      return stopped;
    };
    this.open.add(stop);
    return stop;
  }

  /** Stops every subscription, sends what is still batched, and closes the client; a second call waits for the first. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.open].map((stop) => stop()));
      const topics = await Promise.allSettled([...this.topics.values()]);
      await Promise.all(topics.flatMap((t) => (t.status === 'fulfilled' ? [t.value.flush()] : [])));
      await this.client.close();
    })();
    return this.closing;
  }
}
