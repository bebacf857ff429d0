/** Whether a state store answers, for `/healthz` and `databridge status`. */

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
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      store.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('no answer within 2 s')), 2000);
      }),
    ]);
    return { ...base, up: true, error: null };
  } catch (err) {
    return { ...base, up: false, error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}
