// Talking to the server: the bearer token (kept in session storage), JSON
// requests with the server's error shape, and the event stream read with
// fetch (an EventSource cannot send the Authorization header).

const KEY = 'databridge.token';

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? 'HTTP';
    this.details = body?.error?.details ?? null;
  }
}

/** A JSON request to /api; throws ApiError with the server's code and message. */
export async function api(path, { method = 'GET', body, headers = {}, tokenOverride } = {}) {
  const t = tokenOverride ?? token.get();
  const init = { method, headers: { ...headers, authorization: `Bearer ${t ?? ''}` } };
  if (body instanceof FormData || body instanceof Blob) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['content-type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(`/api${path}`, init);
  } catch {
    throw new ApiError(0, { error: { code: 'NETWORK', message: 'The server cannot be reached' } });
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

/**
 * Follows /api/events: calls onEvent({type, data, seq}) for each event and
 * onState('live' | 'offline') as the connection comes and goes; reconnects
 * with backoff. Returns a function that stops it.
 */
export function followEvents(onEvent, onState) {
  let stopped = false;
  let controller = null;
  let delay = 500;
  const run = async () => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const res = await fetch('/api/events', {
          headers: { authorization: `Bearer ${token.get() ?? ''}`, accept: 'text/event-stream' },
          signal: controller.signal,
        });
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        onState('live');
        delay = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut = buffer.indexOf('\n\n');
          while (cut >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const event = parseBlock(block);
            if (event) onEvent(event);
            cut = buffer.indexOf('\n\n');
          }
        }
      } catch {
        // reconnects below
      }
      if (stopped) return;
      onState('offline');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  };
  void run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}

function parseBlock(block) {
  let type = 'message';
  let id = null;
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) type = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
    else if (line.startsWith('id:')) id = line.slice(3).trim();
  }
  if (data.length === 0) return null;
  try {
    return { type, seq: id === null ? null : Number(id), data: JSON.parse(data.join('\n')) };
  } catch {
    return null;
  }
}
