/**
 * Property values: defaults, typed access, expressions, and the validation
 * of a processor's configuration against its PropertySpecs.
 */

import type {
  EvaluateOptions,
  FlowFile,
  Logger,
  ProcessContext,
  PropertySpec,
  PropertyValue,
  ValidationFinding,
} from '../sdk/index.ts';
import { parseDataSize, parseDuration } from '../sdk/index.ts';
import { type CompiledExpression, compileExpression } from './expression.ts';

function bad(name: string, value: string | undefined, what: string): never {
  throw new Error(`property "${name}" is ${value === undefined ? 'not set' : `"${value}"`}, not ${what}`);
}

/** @internal */
export class StandardPropertyValue implements PropertyValue {
  readonly value: string | undefined;
  readonly #name: string;
  readonly #expression: CompiledExpression | undefined;

  constructor(name: string, value: string | undefined, expression?: CompiledExpression) {
    this.#name = name;
    this.value = value;
    this.#expression = expression;
  }

  isSet(): boolean {
    return this.value !== undefined && this.value !== '';
  }

  asString(): string {
    return this.value ?? '';
  }

  asInteger(): number {
    if (this.value === undefined || !/^\s*-?\d+\s*$/.test(this.value)) bad(this.#name, this.value, 'an integer');
    return Number(this.value);
  }

  asNumber(): number {
    const n = Number(this.value);
    if (this.value === undefined || this.value.trim() === '' || !Number.isFinite(n)) {
      bad(this.#name, this.value, 'a number');
    }
    return n;
  }

  asBoolean(): boolean {
    const v = this.value?.trim().toLowerCase();
    if (v !== 'true' && v !== 'false') bad(this.#name, this.value, 'true or false');
    return v === 'true';
  }

  asDataSize(): number {
    const n = this.value === undefined ? undefined : parseDataSize(this.value);
    if (n === undefined) bad(this.#name, this.value, 'a data size such as "10 KB"');
    return n;
  }

  asDuration(): number {
    const n = this.value === undefined ? undefined : parseDuration(this.value);
    if (n === undefined) bad(this.#name, this.value, 'a duration such as "5 sec"');
    return n;
  }

  evaluate(flowFile?: FlowFile, options: EvaluateOptions = {}): PropertyValue {
    if (!this.#expression?.dynamic) return this;
    // NiFi's fileSize reads like an attribute; a real attribute of that name wins, and a variable over both
    const attributes =
      flowFile || options.variables
        ? {
            ...(flowFile ? { fileSize: String(flowFile.size), ...flowFile.attributes } : {}),
            ...options.variables,
          }
        : undefined;
    return new StandardPropertyValue(this.#name, this.#expression.evaluate(attributes, options.escape));
  }
}

/** The configured properties with the specs' defaults filled in. */
export function withDefaults(
  specs: readonly PropertySpec[],
  configured: Readonly<Record<string, string>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const spec of specs) if (spec.defaultValue !== undefined) out[spec.name] = spec.defaultValue;
  for (const [k, v] of Object.entries(configured)) out[k] = v;
  return out;
}

const TYPE_CHECKS: Record<string, [(v: string) => boolean, string]> = {
  integer: [(v) => /^\s*-?\d+\s*$/.test(v), 'an integer'],
  number: [(v) => v.trim() !== '' && Number.isFinite(Number(v)), 'a number'],
  boolean: [(v) => /^\s*(true|false)\s*$/i.test(v), 'true or false'],
  dataSize: [(v) => parseDataSize(v) !== undefined, 'a data size such as "10 KB"'],
  duration: [(v) => parseDuration(v) !== undefined, 'a duration such as "5 sec"'],
  regex: [
    (v) => {
      try {
        new RegExp(v);
        return true;
      } catch {
        return false;
      }
    },
    'a valid regular expression',
  ],
};

/**
 * Checks properties (defaults applied) against the specs; returns every
 * finding. Values holding `${…}` where expressions are allowed are checked
 * for syntax only: their type is known per FlowFile.
 */
export function validateProperties(
  specs: readonly PropertySpec[],
  properties: Readonly<Record<string, string>>,
  options: { dynamicProperties?: boolean } = {},
): ValidationFinding[] {
  const findings: ValidationFinding[] = [];
  const known = new Map(specs.map((s) => [s.name, s]));
  for (const [name, value] of Object.entries(properties)) {
    if (typeof value !== 'string') {
      findings.push({ property: name, message: `must be a string, not ${typeof value}` });
      continue;
    }
    if (known.has(name)) continue;
    if (!options.dynamicProperties) {
      findings.push({ property: name, message: `is not a property of this processor` });
      continue;
    }
    try {
      compileExpression(value);
    } catch (err) {
      findings.push({ property: name, message: (err as Error).message });
    }
  }
  for (const spec of specs) {
    const value = properties[spec.name];
    if (value === undefined || value === '') {
      if (spec.required) findings.push({ property: spec.name, message: 'is required' });
      continue;
    }
    if (typeof value !== 'string') continue;
    if (spec.expressionLanguage && value.includes('${')) {
      try {
        const compiled = compileExpression(value);
        if (compiled.dynamic) continue;
      } catch (err) {
        findings.push({ property: spec.name, message: (err as Error).message });
        continue;
      }
    }
    if (spec.allowedValues && !spec.allowedValues.includes(value)) {
      findings.push({ property: spec.name, message: `must be one of ${spec.allowedValues.join(', ')}` });
    }
    if (spec.pattern && !new RegExp(`^(?:${spec.pattern})$`).test(value)) {
      findings.push({ property: spec.name, message: `must match ${spec.pattern}` });
    }
    const check = spec.type ? TYPE_CHECKS[spec.type] : undefined;
    if (check && !check[0](value)) findings.push({ property: spec.name, message: `must be ${check[1]}` });
  }
  return findings;
}

/** @internal */
export class StandardProcessContext implements ProcessContext {
  readonly processorId: string;
  readonly logger: Logger;
  readonly #properties: Readonly<Record<string, string>>;
  readonly #values = new Map<string, PropertyValue>();
  readonly #services: (id: string) => unknown;
  #yielded = false;

  constructor(init: {
    processorId: string;
    logger: Logger;
    specs: readonly PropertySpec[];
    properties: Readonly<Record<string, string>>;
    dynamicProperties?: boolean;
    services?: (id: string) => unknown;
  }) {
    this.processorId = init.processorId;
    this.logger = init.logger;
    this.#properties = Object.freeze(withDefaults(init.specs, init.properties));
    this.#services =
      init.services ??
      ((id) => {
        throw new Error(`no controller service "${id}" in this flow`);
      });
    const specs = new Map(init.specs.map((s) => [s.name, s]));
    for (const [name, value] of Object.entries(this.#properties)) {
      const spec = specs.get(name);
      const expressions = spec ? spec.expressionLanguage : init.dynamicProperties;
      this.#values.set(
        name,
        new StandardPropertyValue(name, value, expressions ? compileExpression(value) : undefined),
      );
    }
  }

  getProperty(name: string): PropertyValue {
    return this.#values.get(name) ?? new StandardPropertyValue(name, undefined);
  }

  getProperties(): Readonly<Record<string, string>> {
    return this.#properties;
  }

  getControllerService<T = unknown>(id: string): T {
    return this.#services(id) as T;
  }

  yield(): void {
    this.#yielded = true;
  }

  /** Whether `yield()` was called since the last time this was asked. @internal */
  takeYield(): boolean {
    const y = this.#yielded;
    this.#yielded = false;
    return y;
  }
}
