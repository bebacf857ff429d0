/**
 * Wiring: a connection made from its configuration (its id, back-pressure
 * read and checked) between a relationship of one processor and another.
 */

import { createError } from '../errors.ts';
import { parseDataSize } from '../sdk/index.ts';
import { type BackPressure, Connection } from './connection.ts';
import type { ConnectionConfig } from './flow-config.ts';
import type { ProcessorNode } from './processor-node.ts';

/** Makes the connection and attaches it to both ends; the caller keeps it under its id. */
export function wire(
  config: ConnectionConfig,
  source: ProcessorNode,
  destination: ProcessorNode,
  existing: ReadonlyMap<string, Connection>,
): Connection {
  if (!source.relationships.has(config.relationship)) {
    throw createError('FLOW_UNKNOWN_RELATIONSHIP', {
      processor: source.id,
      relationship: config.relationship,
      known: [...source.relationships],
    });
  }
  const id = config.id ?? `${config.source}/${config.relationship}/${config.destination}`;
  if (existing.has(id)) throw createError('FLOW_DUPLICATE_CONNECTION', { id });
  const bp: Partial<BackPressure> = {};
  if (config.backPressure?.objects !== undefined) bp.objects = config.backPressure.objects;
  if (config.backPressure?.size !== undefined) {
    const size = config.backPressure.size;
    const bytes = typeof size === 'number' ? size : parseDataSize(size);
    if (bytes === undefined) throw createError('USAGE', { message: `back-pressure size "${size}" is not a data size` });
    bp.bytes = bytes;
  }
  const connection = new Connection({
    id,
    source: source.id,
    relationship: config.relationship,
    destination: destination.id,
    backPressure: bp,
  });
  destination.incoming.push(connection);
  const list = source.outgoing.get(config.relationship) ?? [];
  list.push(connection);
  source.outgoing.set(config.relationship, list);
  return connection;
}
