/** One figure of a benchmark run, as bench/results.json holds it. */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  detail: string;
}

export type BenchGroup = () => Promise<BenchResult[]>;

/** The median of some numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
