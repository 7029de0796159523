// The events port: completion messages between phases, in process or through Pub/Sub.

/** Pub/Sub's message shape: a JSON body and string attributes. */
export interface EventMessage {
  readonly data: Readonly<Record<string, unknown>>;
  readonly attributes: Readonly<Record<string, string>>;
}

export interface ReceivedEvent extends EventMessage {
  readonly id: string;
  readonly topic: string;
  /** How many times this message has been delivered (1 the first time). */
  readonly deliveryAttempt: number;
}

/** A handler acks by resolving and nacks by throwing; a nacked message is delivered again. */
export type EventHandler = (event: ReceivedEvent) => Promise<void>;

export interface EventBus {
  readonly description: string;
  /** Publishes and returns the message id. */
  publish(topic: string, message: EventMessage): Promise<string>;
  /** Subscribes a named subscription to a topic; returns a function that stops it. */
  subscribe(topic: string, subscription: string, handler: EventHandler): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export const TOPIC_PHASE2_COMPLETE = 'nba-phase2-raw-complete';
export const TOPIC_PHASE3_COMPLETE = 'nba-phase3-analytics-complete';
export const TOPIC_PHASE4_COMPLETE = 'nba-phase4-precompute-complete';
