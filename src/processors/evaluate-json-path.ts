/** EvaluateJsonPath: evaluates JSONPath expressions (dynamic properties) against JSON content. */

import { type Processor, type ProcessorInfo, Relationships, type ValidationFinding } from '../sdk/index.ts';
import { VERSION } from '../version.ts';
import type { BuiltInProcessor } from './builtin.ts';
import { compileJsonPath, type JsonPath } from './json-path.ts';

const DESTINATION = 'Destination';
const RETURN_TYPE = 'Return Type';
const NOT_FOUND = 'Path Not Found Behavior';
const NULL_VALUE = 'Null Value Representation';
const STATIC = new Set([DESTINATION, RETURN_TYPE, NOT_FOUND, NULL_VALUE]);

const info: ProcessorInfo = {
  name: 'EvaluateJsonPath',
  description:
    'Each dynamic property is a JSONPath ($.a.b, $.items[0], $..id). Results go to attributes named by the properties, or replace the content (one property only).',
  version: VERSION,
  author: 'DataBridge',
  tags: ['json', 'jsonpath', 'evaluate', 'attributes', 'extract'],
  inputRequirement: 'required',
  dynamicProperties: true,
  properties: [
    {
      name: DESTINATION,
      description: 'Where results go',
      allowedValues: ['flowfile-attribute', 'flowfile-content'],
      defaultValue: 'flowfile-attribute',
    },
    {
      name: RETURN_TYPE,
      description: 'scalar refuses objects and arrays; json writes JSON; auto-detect picks',
      allowedValues: ['auto-detect', 'json', 'scalar'],
      defaultValue: 'auto-detect',
    },
    {
      name: NOT_FOUND,
      description: 'When a path finds nothing (attribute destination): set an empty value, warn too, or skip',
      allowedValues: ['ignore', 'warn', 'skip'],
      defaultValue: 'ignore',
    },
    {
      name: NULL_VALUE,
      description: 'How a JSON null is written',
      allowedValues: ['empty string', "the string 'null'"],
      defaultValue: 'empty string',
    },
  ],
  relationships: [
    { name: 'matched', description: 'Every path evaluated' },
    { name: 'unmatched', description: 'Content destination: the path found nothing' },
    Relationships.FAILURE,
  ],
};

function createEvaluateJsonPath(): Processor {
  return {
    getInfo: () => info,
    validate(properties) {
      const findings: ValidationFinding[] = [];
      const paths = Object.keys(properties).filter((k) => !STATIC.has(k));
      if (paths.length === 0) findings.push({ message: 'add at least one dynamic property: a name and its JSONPath' });
      if (properties[DESTINATION] === 'flowfile-content' && paths.length > 1) {
        findings.push({ message: 'the flowfile-content destination takes exactly one JSONPath' });
      }
      for (const name of paths) {
        try {
          compileJsonPath(properties[name]!);
        } catch (err) {
          findings.push({ property: name, message: (err as Error).message });
        }
      }
      return findings;
    },
    async onTrigger(ctx, session) {
      const toContent = ctx.getProperty(DESTINATION).asString() === 'flowfile-content';
      const returnType = ctx.getProperty(RETURN_TYPE).asString();
      const notFound = ctx.getProperty(NOT_FOUND).asString();
      const nullText = ctx.getProperty(NULL_VALUE).asString() === 'empty string' ? '' : 'null';
      const paths: [string, JsonPath][] = Object.entries(ctx.getProperties())
        .filter(([k]) => !STATIC.has(k))
        .map(([k, v]) => [k, compileJsonPath(v)]);
      const render = (found: unknown[], path: JsonPath): string | Error => {
        const value = path.definite ? found[0] : found;
        if (value === null) return nullText;
        const structured = typeof value === 'object';
        if (structured && returnType === 'scalar') return new Error('the result is not a scalar');
        return structured || returnType === 'json' ? JSON.stringify(value) : String(value);
      };
      for (let ff = session.get(); ff; ff = session.get()) {
        let doc: unknown;
        try {
          doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await session.read(ff)));
        } catch (err) {
          session.transfer(
            session.putAttribute(ff, 'jsonpath.error', `not JSON: ${(err as Error).message}`),
            'failure',
          );
          continue;
        }
        let failed: string | undefined;
        let unmatched = false;
        const updates: Record<string, string> = {};
        for (const [name, path] of paths) {
          const found = path.evaluate(doc);
          if (found.length === 0) {
            unmatched = true;
            if (notFound === 'warn') ctx.logger.warn('JSONPath found nothing', { property: name, flowFile: ff.id });
            if (notFound !== 'skip' && !toContent) updates[name] = '';
            continue;
          }
          const rendered = render(found, path);
          if (rendered instanceof Error) {
            failed = `${name}: ${rendered.message}`;
            break;
          }
          updates[name] = rendered;
        }
        if (failed) session.transfer(session.putAttribute(ff, 'jsonpath.error', failed), 'failure');
        else if (toContent) {
          const [name] = paths[0]!;
          if (unmatched) session.transfer(ff, 'unmatched');
          else session.transfer(session.write(ff, updates[name]!), 'matched');
        } else session.transfer(session.putAllAttributes(ff, updates), 'matched');
      }
      session.commit();
    },
  };
}

export const evaluateJsonPath: BuiltInProcessor = { type: 'EvaluateJsonPath', info, factory: createEvaluateJsonPath };
