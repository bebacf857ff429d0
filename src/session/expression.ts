/**
 * A small expression language in NiFi's style, for property values:
 * `${filename}`, `${filename:toUpper():append('.txt')}`, `${now()}`.
 * Compiled once per property value, evaluated per FlowFile. The reference
 * is docs/expression-language.md.
 */

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { createError } from '../errors.ts';

/** A value inside an expression: a string, or null for a missing attribute. */
type Value = string | null;
type Evaluator = (attributes: Readonly<Record<string, string>>) => Value;
type Fn = (subject: Value, args: Value[]) => Value;

const bool = (b: boolean): string => (b ? 'true' : 'false');
const str = (v: Value): string => v ?? '';
const num = (v: Value): number => {
  const n = Number(v);
  return Number.isFinite(n) ? n : Number.NaN;
};

/** name → [function, min args, max args, needs a subject] */
const FUNCTIONS: Record<string, [Fn, number, number, boolean]> = {
  toUpper: [(s) => (s === null ? null : s.toUpperCase()), 0, 0, true],
  toLower: [(s) => (s === null ? null : s.toLowerCase()), 0, 0, true],
  trim: [(s) => (s === null ? null : s.trim()), 0, 0, true],
  length: [(s) => String(str(s).length), 0, 0, true],
  append: [(s, [a]) => str(s) + str(a!), 1, 1, true],
  prepend: [(s, [a]) => str(a!) + str(s), 1, 1, true],
  replace: [(s, [a, b]) => (s === null ? null : s.split(str(a!)).join(str(b!))), 2, 2, true],
  replaceAll: [(s, [a, b]) => (s === null ? null : s.replace(new RegExp(str(a!), 'g'), str(b!))), 2, 2, true],
  substring: [
    (s, [a, b]) => (s === null ? null : s.substring(num(a!), b === undefined ? undefined : num(b))),
    1,
    2,
    true,
  ],
  substringBefore: [
    (s, [a]) => (s === null ? null : s.includes(str(a!)) ? s.slice(0, s.indexOf(str(a!))) : s),
    1,
    1,
    true,
  ],
  substringAfter: [
    (s, [a]) => (s === null ? null : s.includes(str(a!)) ? s.slice(s.indexOf(str(a!)) + str(a!).length) : s),
    1,
    1,
    true,
  ],
  equals: [(s, [a]) => bool(s === a), 1, 1, true],
  equalsIgnoreCase: [(s, [a]) => bool(str(s).toLowerCase() === str(a!).toLowerCase()), 1, 1, true],
  contains: [(s, [a]) => bool(str(s).includes(str(a!))), 1, 1, true],
  startsWith: [(s, [a]) => bool(str(s).startsWith(str(a!))), 1, 1, true],
  endsWith: [(s, [a]) => bool(str(s).endsWith(str(a!))), 1, 1, true],
  matches: [(s, [a]) => bool(new RegExp(`^(?:${str(a!)})$`).test(str(s))), 1, 1, true],
  isNull: [(s) => bool(s === null), 0, 0, true],
  notNull: [(s) => bool(s !== null), 0, 0, true],
  isEmpty: [(s) => bool(s === null || s.trim() === ''), 0, 0, true],
  replaceNull: [(s, [a]) => s ?? a!, 1, 1, true],
  replaceEmpty: [(s, [a]) => (s === null || s.trim() === '' ? a! : s), 1, 1, true],
  not: [(s) => bool(s !== 'true'), 0, 0, true],
  and: [(s, [a]) => bool(s === 'true' && a === 'true'), 1, 1, true],
  or: [(s, [a]) => bool(s === 'true' || a === 'true'), 1, 1, true],
  ifElse: [(s, [a, b]) => (s === 'true' ? a! : b!), 2, 2, true],
  gt: [(s, [a]) => bool(num(s) > num(a!)), 1, 1, true],
  ge: [(s, [a]) => bool(num(s) >= num(a!)), 1, 1, true],
  lt: [(s, [a]) => bool(num(s) < num(a!)), 1, 1, true],
  le: [(s, [a]) => bool(num(s) <= num(a!)), 1, 1, true],
  plus: [(s, [a]) => String(num(s) + num(a!)), 1, 1, true],
  minus: [(s, [a]) => String(num(s) - num(a!)), 1, 1, true],
  multiply: [(s, [a]) => String(num(s) * num(a!)), 1, 1, true],
  divide: [(s, [a]) => String(num(s) / num(a!)), 1, 1, true],
  now: [() => String(Date.now()), 0, 0, false],
  UUID: [() => randomUUID(), 0, 0, false],
  hostname: [() => hostname(), 0, 0, false],
  literal: [(_s, [a]) => a!, 1, 1, false],
};

/** The names of the expression functions, for the docs' test. */
export const EXPRESSION_FUNCTIONS: readonly string[] = Object.keys(FUNCTIONS);

class Parser {
  readonly #src: string;
  #at = 0;

  constructor(src: string) {
    this.#src = src;
  }

  fail(reason: string): never {
    throw createError('EXPRESSION_INVALID', { expression: this.#src, reason: `${reason} at position ${this.#at}` });
  }

  /** template := (text | '$${' | '${' expr '}')*; literal text stays a string, each `${…}` an evaluator */
  template(): (string | Evaluator)[] {
    const parts: (string | Evaluator)[] = [];
    let text = '';
    const src = this.#src;
    while (this.#at < src.length) {
      if (src.startsWith('$${', this.#at)) {
        text += '${';
        this.#at += 3;
      } else if (src.startsWith('${', this.#at)) {
        if (text) {
          parts.push(text);
          text = '';
        }
        this.#at += 2;
        parts.push(this.expression());
        this.expect('}');
      } else text += src[this.#at++];
    }
    if (text) parts.push(text);
    return parts;
  }

  /** expr := subject (':' call)* */
  expression(): Evaluator {
    this.skipSpace();
    let current = this.subject();
    this.skipSpace();
    while (this.peek() === ':') {
      this.#at++;
      const name = this.identifier();
      const args = this.arguments();
      current = this.bind(name, current, args, true);
      this.skipSpace();
    }
    return current;
  }

  subject(): Evaluator {
    const c = this.peek();
    if (c === "'" || c === '"') {
      const name = this.quoted();
      return (attrs) => (Object.hasOwn(attrs, name) ? attrs[name]! : null);
    }
    const name = this.identifier();
    this.skipSpace();
    if (this.peek() === '(') return this.bind(name, () => null, this.arguments(), false);
    return (attrs) => (Object.hasOwn(attrs, name) ? attrs[name]! : null);
  }

  bind(name: string, subject: Evaluator, args: Evaluator[], chained: boolean): Evaluator {
    const spec = Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name] : undefined;
    if (!spec) this.fail(`unknown function ${name}()`);
    const [fn, min, max, needsSubject] = spec;
    if (needsSubject !== chained) {
      this.fail(needsSubject ? `${name}() needs a subject, as in \${attr:${name}()}` : `${name}() takes no subject`);
    }
    if (args.length < min || args.length > max) {
      this.fail(`${name}() takes ${min === max ? min : `${min} to ${max}`} argument(s), not ${args.length}`);
    }
    return (attrs) =>
      fn(
        subject(attrs),
        args.map((a) => a(attrs)),
      );
  }

  arguments(): Evaluator[] {
    this.skipSpace();
    this.expect('(');
    const args: Evaluator[] = [];
    this.skipSpace();
    if (this.peek() === ')') {
      this.#at++;
      return args;
    }
    for (;;) {
      this.skipSpace();
      args.push(this.argument());
      this.skipSpace();
      const c = this.#src[this.#at++];
      if (c === ')') return args;
      if (c !== ',') this.fail('expected "," or ")"');
    }
  }

  argument(): Evaluator {
    const c = this.peek();
    if (c === "'" || c === '"') {
      const s = this.quoted();
      return () => s;
    }
    if (this.#src.startsWith('${', this.#at)) {
      this.#at += 2;
      const inner = this.expression();
      this.expect('}');
      return inner;
    }
    const m = /^-?\d+(\.\d+)?/.exec(this.#src.slice(this.#at));
    if (m) {
      this.#at += m[0].length;
      const n = m[0];
      return () => n;
    }
    return this.fail('expected a quoted string, a number or ${…}');
  }

  quoted(): string {
    const q = this.#src[this.#at++];
    let out = '';
    while (this.#at < this.#src.length) {
      const c = this.#src[this.#at++]!;
      if (c === '\\' && this.#at < this.#src.length) out += this.#src[this.#at++];
      else if (c === q) return out;
      else out += c;
    }
    return this.fail('unterminated string');
  }

  identifier(): string {
    const m = /^[A-Za-z_][\w.-]*/.exec(this.#src.slice(this.#at));
    if (!m) this.fail('expected a name');
    this.#at += m[0].length;
    return m[0];
  }

  expect(c: string): void {
    this.skipSpace();
    if (this.#src[this.#at] !== c) this.fail(`expected "${c}"`);
    this.#at++;
  }

  peek(): string | undefined {
    return this.#src[this.#at];
  }

  skipSpace(): void {
    while (this.#at < this.#src.length && /\s/.test(this.#src[this.#at]!)) this.#at++;
  }
}

/** A compiled property value. */
export interface CompiledExpression {
  /** True when the value holds at least one `${…}`. */
  readonly dynamic: boolean;
  /**
   * The value for these attributes. `escapeValue`, when given, is applied to
   * what each `${…}` yields and not to the literal text around it (so
   * ReplaceText can tell a `$1` the user wrote from one inside a value).
   */
  evaluate(attributes?: Readonly<Record<string, string>>, escapeValue?: (value: string) => string): string;
}

const NO_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Compiles a property value; throws EXPRESSION_INVALID with the position.
 *
 * @example
 * compileExpression("${filename:toUpper()}.bak").evaluate({ filename: 'a' }) // 'A.bak'
 */
export function compileExpression(source: string): CompiledExpression {
  if (!source.includes('${')) return { dynamic: false, evaluate: () => source };
  const parts = new Parser(source).template();
  const dynamic = parts.some((p) => typeof p !== 'string');
  return {
    dynamic,
    evaluate: (attributes = NO_ATTRIBUTES, escapeValue) => {
      let out = '';
      for (const p of parts) {
        if (typeof p === 'string') out += p;
        else out += escapeValue ? escapeValue(p(attributes) ?? '') : (p(attributes) ?? '');
      }
      return out;
    },
  };
}
