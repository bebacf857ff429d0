/** A worker sandbox: decode, dispatch, reply. */
import { parentPort } from 'node:worker_threads';
import { type HostMessage, PROTOCOL_VERSION } from './protocol.ts';
import { createRuntime } from './runtime.ts';

const port = parentPort!;
const handle = createRuntime((message, transfer) => port.postMessage(message, transfer ?? []));
port.on('message', (message: HostMessage) => void handle(message));
port.postMessage({ type: 'ready', protocol: PROTOCOL_VERSION });
