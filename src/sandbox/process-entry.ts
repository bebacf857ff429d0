/** A child-process sandbox: decode, dispatch, reply; it ends when the host goes. */
import { type HostMessage, PROTOCOL_VERSION } from './protocol.ts';
import { createRuntime } from './runtime.ts';

const handle = createRuntime((message) => process.send!(message));
process.on('message', (message: HostMessage) => void handle(message));
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready', protocol: PROTOCOL_VERSION });
