// PLACEHOLDER, replaced by the GCS adapter (issue 7).
import { ProcessingError } from '../../errors.js';
import type { ObjectStore } from '../../ports/objectStore.js';

export const GcsObjectStore = {
  fromUrl(url: string): ObjectStore {
    throw new ProcessingError(`${url}: the GCS object store is not built yet`);
  },
};
