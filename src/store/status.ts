/** Whether a state store answers, for `/healthz` and `databridge status`. */

import { withDeadline } from '../deadline.ts';
import type { StateStore } from './types.ts';

export interface StoreStatus {
  kind: string;
  location: string;
  up: boolean;
  error: string | null;
}

/** Pings the store; no answer within two seconds is a store that is down. */
export async function storeStatus(store: StateStore): Promise<StoreStatus> {
  const base = { kind: store.kind, location: store.location };
  try {
    await withDeadline(store.ping(), 2000, 'no answer within 2 s');
    return { ...base, up: true, error: null };
  } catch (err) {
    return { ...base, up: false, error: (err as Error).message };
  }
}
