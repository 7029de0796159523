// The checkpoint at the end of a stage: committed work moves from the WAL into the warehouse file.

import { messageOf } from '../core/errors.js';
import type { Warehouse } from '../core/ports/warehouse.js';

/**
 * Checkpoints after `what`. A failed checkpoint loses nothing that was committed (it is still in the WAL),
 * so it is a warning on stderr, not a failure of the work that is done; the next checkpoint tries again.
 */
export async function checkpointAfter(warehouse: Warehouse, what: string): Promise<void> {
  try {
    await warehouse.checkpoint();
  } catch (err) {
    process.stderr.write(`warning: after ${what}: ${messageOf(err)}\n`);
  }
}
