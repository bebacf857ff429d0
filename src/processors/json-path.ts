/**
 * A safe subset of JSONPath, compiled once: `$`, `.name`, `['name']`, `[n]`
 * (negative from the end), `[*]`, `.*`, `..name` and `..*`. No script or
 * filter expressions (the usual way JSONPath libraries come to run code).
 */

type Step =
  | { kind: 'child'; name: string }
  | { kind: 'index'; index: number }
  | { kind: 'wildcard' }
  | { kind: 'descend'; name: string | null };

export interface JsonPath {
  /** True when the path names one place (no wildcard, no descent). */
  readonly definite: boolean;
  evaluate(doc: unknown): unknown[];
}

function children(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (value !== null && typeof value === 'object') return Object.values(value);
  return [];
}

function child(value: unknown, name: string): unknown[] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.hasOwn(value, name)) {
    return [(value as Record<string, unknown>)[name]];
  }
  return [];
}

function descendants(value: unknown, out: unknown[]): void {
  out.push(value);
  for (const c of children(value)) descendants(c, out);
}

/** Compiles a path; throws an Error saying where it is wrong. */
export function compileJsonPath(path: string): JsonPath {
  const steps: Step[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`invalid JSONPath "${path}" at ${i}: ${why}`);
  };
  if (path[i] !== '$') fail('must start with $');
  i++;
  const name = () => {
    const m = /^[A-Za-z_$][\w$-]*/.exec(path.slice(i));
    if (!m) return fail('expected a name');
    i += m[0].length;
    return m[0];
  };
  while (i < path.length) {
    if (path.startsWith('..', i)) {
      i += 2;
      if (path[i] === '*') {
        i++;
        steps.push({ kind: 'descend', name: null });
      } else steps.push({ kind: 'descend', name: name() });
    } else if (path[i] === '.') {
      i++;
      if (path[i] === '*') {
        i++;
        steps.push({ kind: 'wildcard' });
      } else steps.push({ kind: 'child', name: name() });
    } else if (path[i] === '[') {
      const m = /^\[\s*(?:(\*)|(-?\d+)|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]/.exec(path.slice(i));
      if (!m) fail("expected [n], [*] or ['name']");
      i += m![0].length;
      if (m![1]) steps.push({ kind: 'wildcard' });
      else if (m![2] !== undefined) steps.push({ kind: 'index', index: Number(m![2]) });
      else steps.push({ kind: 'child', name: (m![3] ?? m![4]!).replace(/\\(.)/g, '$1') });
    } else fail('expected ".", ".." or "["');
  }
  const definite = steps.every((s) => s.kind === 'child' || s.kind === 'index');
  return {
    definite,
    evaluate(doc) {
      let current: unknown[] = [doc];
      for (const step of steps) {
        const next: unknown[] = [];
        for (const v of current) {
          switch (step.kind) {
            case 'child':
              next.push(...child(v, step.name));
              break;
            case 'index':
              if (Array.isArray(v)) {
                const k = step.index < 0 ? v.length + step.index : step.index;
                if (k >= 0 && k < v.length) next.push(v[k]);
              }
              break;
            case 'wildcard':
              next.push(...children(v));
              break;
            case 'descend': {
              const all: unknown[] = [];
              descendants(v, all);
              for (const d of all) next.push(...(step.name === null ? children(d) : child(d, step.name)));
              break;
            }
          }
        }
        current = next;
      }
      return current;
    },
  };
}
