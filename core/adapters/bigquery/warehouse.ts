// PLACEHOLDER, replaced by the BigQuery adapter (issue 7).
import { ProcessingError } from '../../errors.js';
import type { Warehouse } from '../../ports/warehouse.js';

export async function openBigQueryWarehouse(url: string): Promise<Warehouse> {
  throw new ProcessingError(`${url}: the BigQuery warehouse is not built yet`);
}
