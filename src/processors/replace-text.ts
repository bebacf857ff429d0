/** ReplaceText: regex or literal replacement, prepend, append or replace, on the whole text or line by line. */

import { type Processor, type ProcessorInfo, Relationships } from '../sdk/index.ts';
import { VERSION } from '../version.ts';
import type { BuiltInProcessor } from './builtin.ts';

const STRATEGIES = ['Regex Replace', 'Literal Replace', 'Prepend', 'Append', 'Always Replace'] as const;

const info: ProcessorInfo = {
  name: 'ReplaceText',
  description:
    "Replaces text in the content: by regular expression ($1 refers to groups), literally, or by prepending, appending or replacing everything. The replacement may hold ${attribute} expressions; with Regex Replace, ${'$1'} is the first group, as in NiFi.",
  version: VERSION,
  author: 'DataBridge',
  tags: ['text', 'regex', 'replace', 'update', 'modify'],
  inputRequirement: 'required',
  properties: [
    {
      name: 'Search Value',
      description:
        'Regular expression (Regex Replace) or text (Literal Replace). Java-style leading flags such as (?s) are understood',
      defaultValue: '(?s)(^.*$)',
      expressionLanguage: true,
    },
    {
      name: 'Replacement Value',
      description:
        "The replacement. With Regex Replace, $1 (or $0 for the whole match, $$ for a dollar) refers to a capture group, and an expression reads a group as ${'$1'}, as in ${'$1':toUpper()}; it is evaluated for each match",
      defaultValue: '$1',
      expressionLanguage: true,
    },
    { name: 'Replacement Strategy', description: 'How', allowedValues: STRATEGIES, defaultValue: 'Regex Replace' },
    {
      name: 'Evaluation Mode',
      description: 'On the whole text, or on each line',
      allowedValues: ['Entire text', 'Line-by-Line'],
      defaultValue: 'Entire text',
    },
    {
      name: 'Maximum Buffer Size',
      description: 'FlowFiles larger than this go to failure',
      type: 'dataSize',
      defaultValue: '1 MB',
    },
  ],
  relationships: [Relationships.SUCCESS, Relationships.FAILURE],
};

/** Java's leading inline flags (`(?s)`, `(?im)`) become JavaScript flags. */
export function toRegExp(source: string, global: boolean): RegExp {
  let flags = global ? 'g' : '';
  const m = /^\(\?([a-z]+)\)/.exec(source);
  let body = source;
  if (m) {
    for (const f of m[1]!) if ('ims'.includes(f) && !flags.includes(f)) flags += f;
    body = source.slice(m[0].length);
  }
  return new RegExp(body, flags);
}

/** How many capture groups a regular expression has. */
function groupCount(regex: RegExp): number {
  return new RegExp(`${regex.source}|`, regex.flags.replace('g', '')).exec('')!.length - 1;
}

/** The capture groups an expression in the replacement reads (`${'$1'}`, `${"$2":toUpper()}`). */
function groupsRead(replacement: string): number[] {
  return [...replacement.matchAll(/\$\{\s*(['"])\$(\d+)\1/g)].map((m) => Number(m[2]));
}

/**
 * A match's replacement: `$$`, `$&`, `$0`-`$99` and `$<name>` read as
 * JavaScript reads them (and `$0` as the whole match, as Java does); a
 * reference to a group the expression lacks stays as it is written.
 */
function expandReferences(
  template: string,
  match: string,
  groups: readonly (string | undefined)[],
  named: Readonly<Record<string, string | undefined>> | undefined,
): string {
  return template.replace(/\$(\$|&|<([^>]*)>|(\d{1,2}))/g, (whole, what: string, name?: string, digits?: string) => {
    if (what === '$') return '$';
    if (what === '&') return match;
    if (name !== undefined) return named && Object.hasOwn(named, name) ? (named[name] ?? '') : whole;
    const group = (n: number) => (n === 0 ? match : (groups[n - 1] ?? ''));
    const two = Number(digits);
    if (digits!.length === 2 && two >= 1 && two <= groups.length) return group(two);
    const one = Number(digits![0]);
    return one <= groups.length ? group(one) + digits!.slice(1) : whole;
  });
}

/** What an expression yields is text, never a group reference: its `$` are doubled before expandReferences() reads them. */
const escapeReferences = (value: string): string => value.replaceAll('$', () => '$$');

function createReplaceText(): Processor {
  return {
    getInfo: () => info,
    validate(properties) {
      const reads = groupsRead(properties['Replacement Value'] ?? '');
      if (properties['Replacement Strategy'] !== 'Regex Replace') {
        return reads.length
          ? [
              {
                property: 'Replacement Value',
                message: `reads the capture group $${reads[0]}, which only the Regex Replace strategy has`,
              },
            ]
          : [];
      }
      const search = properties['Search Value'] ?? '';
      if (search.includes('${')) return [];
      let regex: RegExp;
      try {
        regex = toRegExp(search, true);
      } catch (err) {
        return [{ property: 'Search Value', message: `is not a valid regular expression: ${(err as Error).message}` }];
      }
      const count = groupCount(regex);
      const missing = reads.filter((n) => n > count);
      return missing.length
        ? [
            {
              property: 'Replacement Value',
              message: `reads the capture group $${missing[0]}, but the Search Value has ${count === 0 ? 'no group' : count === 1 ? 'one group' : `${count} groups`}`,
            },
          ]
        : [];
    },
    async onTrigger(ctx, session) {
      const strategy = ctx.getProperty('Replacement Strategy').asString();
      const lineByLine = ctx.getProperty('Evaluation Mode').asString() === 'Line-by-Line';
      const max = ctx.getProperty('Maximum Buffer Size').asDataSize();
      for (let ff = session.get(); ff; ff = session.get()) {
        if (ff.size > max) {
          session.transfer(session.putAttribute(ff, 'replace.error', `larger than ${max} bytes`), 'failure');
          continue;
        }
        const search = ctx.getProperty('Search Value').evaluate(ff).asString();
        const replacementValue = ctx.getProperty('Replacement Value');
        // Regex Replace evaluates it per match, with that match's groups
        const replacement = strategy === 'Regex Replace' ? '' : replacementValue.evaluate(ff).asString();
        let regex: RegExp | undefined;
        try {
          if (strategy === 'Regex Replace') regex = toRegExp(search, true);
        } catch (err) {
          session.transfer(session.putAttribute(ff, 'replace.error', (err as Error).message), 'failure');
          continue;
        }
        const apply = (text: string): string => {
          switch (strategy) {
            case 'Regex Replace':
              return text.replace(regex!, (match: string, ...rest: unknown[]) => {
                // rest: the groups, the offset, the whole text, and the named groups when there are any
                const named =
                  typeof rest.at(-1) === 'object' ? (rest.pop() as Record<string, string | undefined>) : undefined;
                const groups = rest.slice(0, -2) as (string | undefined)[];
                const variables: Record<string, string> = { $0: match };
                groups.forEach((g, i) => {
                  variables[`$${i + 1}`] = g ?? '';
                });
                const template = replacementValue.evaluate(ff, { variables, escape: escapeReferences }).asString();
                return expandReferences(template, match, groups, named);
              });
            case 'Literal Replace':
              return search === '' ? text : text.split(search).join(replacement);
            case 'Prepend':
              return replacement + text;
            case 'Append':
              return text + replacement;
            default:
              return replacement;
          }
        };
        const text = new TextDecoder().decode(await session.read(ff));
        // line by line keeps each line's own ending
        const result = lineByLine
          ? text.replace(/[^\n]*(\n|$)/g, (line, nl: string) =>
              line === '' ? '' : apply(line.slice(0, line.length - nl.length)) + nl,
            )
          : apply(text);
        session.transfer(session.write(ff, result), 'success');
      }
      session.commit();
    },
  };
}

export const replaceText: BuiltInProcessor = { type: 'ReplaceText', info, factory: createReplaceText };
