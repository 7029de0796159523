// PLACEHOLDER, replaced by the Pub/Sub adapter (issue 7).
import { ProcessingError } from '../../errors.js';
import type { EventBus } from '../../ports/events.js';

export const PubSubEventBus = {
  fromUrl(url: string): EventBus {
    throw new ProcessingError(`${url}: the Pub/Sub event bus is not built yet`);
  },
};
