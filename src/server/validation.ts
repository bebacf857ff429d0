/**
 * How the routes' schemas check requests: a JSON body means what it says
 * (no type coercion: `"maxMemoryMB": "5"` and `"displayName": null` are
 * refused, never turned into 5 and ""), while the query string and path
 * parameters, which are text by nature, are coerced (`?enabled=true`,
 * `?tag=a&tag=b`, `?limit=10`). Fastify's default compiler used one Ajv,
 * coercing, for every part of the request.
 */

import { Ajv, type Options } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';

const common: Options = {
  // a query default (force=false) is filled in; unknown fields are refused by the schemas, not stripped
  useDefaults: true,
  removeAdditional: false,
  allErrors: false,
  // the OpenAPI words in our schemas (description, example) are not Ajv keywords
  strict: false,
};

const strict = new Ajv({ ...common, coerceTypes: false });
const coercing = new Ajv({ ...common, coerceTypes: 'array' });

/** The routes' compiler: coercing for querystring, params and headers; strict for bodies. */
export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? strict : coercing).compile(schema as object);

/**
 * For a route that reads its body itself (install: a bundle's bytes or a
 * multipart upload): the body schema is there for the OpenAPI document,
 * and the route checks what arrives.
 */
export const bodyReadByRoute: FastifySchemaCompiler<unknown> = (route) =>
  route.httpPart === 'body' ? () => true : validatorCompiler(route);
