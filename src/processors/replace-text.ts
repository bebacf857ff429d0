/** ReplaceText: regex or literal replacement, prepend, append or replace, on the whole text or line by line. */

import { type Processor, type ProcessorInfo, Relationships } from '../sdk/index.ts';
import { VERSION } from '../version.ts';
import type { BuiltInProcessor } from './builtin.ts';

const STRATEGIES = ['Regex Replace', 'Literal Replace', 'Prepend', 'Append', 'Always Replace'] as const;

const info: ProcessorInfo = {
  name: 'ReplaceText',
  description:
    'Replaces text in the content: by regular expression ($1 refers to groups), literally, or by prepending, appending or replacing everything. The replacement may hold ${attribute} expressions.',
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
    { name: 'Replacement Value', description: 'The replacement', defaultValue: '$1', expressionLanguage: true },
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

function createReplaceText(): Processor {
  return {
    getInfo: () => info,
    validate(properties) {
      if (properties['Replacement Strategy'] !== 'Regex Replace') return [];
      const search = properties['Search Value'] ?? '';
      if (search.includes('${')) return [];
      try {
        toRegExp(search, true);
        return [];
      } catch (err) {
        return [{ property: 'Search Value', message: `is not a valid regular expression: ${(err as Error).message}` }];
      }
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
        const replacement = ctx.getProperty('Replacement Value').evaluate(ff).asString();
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
              return text.replace(regex!, replacement);
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
