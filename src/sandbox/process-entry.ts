/** A child-process sandbox: decode, dispatch, reply (framing and lanes in channel.ts); it ends when the host goes. */
import { childChannel } from './channel.ts';
import { PROTOCOL_VERSION } from './protocol.ts';
import { createRuntime } from './runtime.ts';

const send = childChannel((message) => void handle(message));
const handle = createRuntime(send);
send({ type: 'ready', protocol: PROTOCOL_VERSION });
