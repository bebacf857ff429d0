/**
 * JSON bodies with no key twice in one object. `JSON.parse` keeps the last
 * of `{"role":"viewer","role":"admin"}`, while a proxy, a log or a WAF in
 * front may read the first: the two would act on different requests. The
 * body is otherwise parsed by Fastify's own parser (prototype poisoning
 * refused as before).
 */

import type { FastifyInstance } from 'fastify';
import { createError } from '../errors.ts';

/** Whether some object in a JSON text (already known to be valid JSON) names a key twice. */
export function hasDuplicateKey(text: string): boolean {
  // one entry per open object (its keys) or array (null); expectKey: the next string in an object is a key
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      stack.push(null);
      expectKey = false;
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectKey = false;
    } else if (c === ',') {
      expectKey = stack.at(-1) != null;
    } else if (c === '"') {
      const start = i;
      for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++;
      const keys = stack.at(-1);
      if (expectKey && keys) {
        // decoded, so "a" and "\u0061" are the same key
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        if (keys.has(key)) return true;
        keys.add(key);
        expectKey = false;
      }
    }
  }
  return false;
}

/** Replaces the JSON body parser with one that refuses a key twice in an object (400 BAD_REQUEST). */
export function installJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    parse(request, text, (err, value) => {
      if (err) return done(err, undefined);
      if (hasDuplicateKey(text))
        return done(createError('BAD_REQUEST', { reason: 'a JSON object names the same key twice' }), undefined);
      done(null, value);
    });
  });
}
