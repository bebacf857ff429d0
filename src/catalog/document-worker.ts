/** A worker thread reading one large registry answer (documents.ts): parses it, posts back only the parts used. */

import { parentPort, workerData } from 'node:worker_threads';
import { type DocumentRequest, readParsed } from './documents.ts';

const { request, bytes } = workerData as { request: DocumentRequest; bytes: Uint8Array };
parentPort!.postMessage(
  readParsed(request, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')),
);
