/** One server-sent event, its data parsed as JSON where it is JSON. */
export interface ServerSentEvent {
  type: string;
  data: unknown;
}

/**
 * Reads a `text/event-stream` response with the built-in fetch, one event
 * at a time, until the server ends the stream or the signal aborts.
 * Only what this demo needs is read: the `event` and `data` fields, with
 * lines ended by `\n` as Nest writes them.
 */
export async function* readServerSentEvents(
  url: string,
  signal: AbortSignal,
): AsyncGenerator<ServerSentEvent> {
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream' },
    signal,
  });
  if (!response.ok || !response.body) {
    const body = await response.text();
    throw new Error(`GET ${url} answered ${response.status}: ${body}`);
  }

  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    const blocks = buffered.split('\n\n');
    buffered = blocks.pop() ?? '';

    for (const block of blocks) {
      const event = parseEventBlock(block);
      if (event) yield event;
    }
  }
}

function parseEventBlock(block: string): ServerSentEvent | undefined {
  let type = 'message';
  const dataLines: string[] = [];

  for (const line of block.split('\n')) {
    const colon = line.indexOf(':');
    if (colon === 0 || line === '') continue;

    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') type = value;
    if (field === 'data') dataLines.push(value);
  }

  if (dataLines.length === 0) return undefined;
  return { type, data: parseJson(dataLines.join('\n')) };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
