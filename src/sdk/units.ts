/**
 * Parsing of NiFi-style data sizes (`1 KB`, `10 MiB`) and durations
 * (`10 ms`, `5 sec`, `2 mins`), shared by the host and plugin authors.
 */

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  byte: 1,
  bytes: 1,
  kb: 1024,
  kib: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  nanos: 1e-6,
  us: 1e-3,
  micros: 1e-3,
  ms: 1,
  millis: 1,
  msec: 1,
  msecs: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hrs: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
};

const AMOUNT = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/;

function parseAmount(text: string, units: Record<string, number>, bare: number): number | undefined {
  const m = AMOUNT.exec(text);
  if (!m) return undefined;
  const unit = m[2]!.toLowerCase();
  if (unit === '') return Number(m[1]) * bare;
  // hasOwn, so that `constructor` or `__proto__` is not taken for a unit
  return Object.hasOwn(units, unit) ? Number(m[1]) * units[unit]! : undefined;
}

/**
 * Bytes in a data size such as `1 KB`, `10 MiB` or `512` (bytes); binary
 * multiples, as NiFi uses. `undefined` when the text is not a size.
 *
 * @example
 * parseDataSize('1 KB') // 1024
 */
export function parseDataSize(text: string): number | undefined {
  const n = parseAmount(text, SIZE_UNITS, 1);
  return n === undefined ? undefined : Math.round(n);
}

/**
 * Milliseconds in a duration such as `10 ms`, `5 sec` or `2 mins`; a bare
 * number is milliseconds. `undefined` when the text is not a duration.
 *
 * @example
 * parseDuration('1 min') // 60000
 */
export function parseDuration(text: string): number | undefined {
  return parseAmount(text, DURATION_UNITS, 1);
}
