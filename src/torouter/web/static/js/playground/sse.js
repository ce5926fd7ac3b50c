// Server-sent events from a fetch() body, parsed by hand: yields { event, data } as each arrives.

export async function* readEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      let text = buffer + (done ? decoder.decode() : decoder.decode(value, { stream: true }));
      // A "\r" at the end may be the first half of "\r\n": keep it for the next chunk.
      const held = !done && text.endsWith('\r') ? '\r' : '';
      if (held) text = text.slice(0, -1);
      text = text.replace(/\r\n?/g, '\n');
      let cut;
      while ((cut = text.indexOf('\n\n')) >= 0) {
        const event = parse(text.slice(0, cut));
        text = text.slice(cut + 2);
        if (event) yield event;
      }
      buffer = text + held;
      if (done) break;
    }
    const last = parse(buffer.replace(/\r\n?/g, '\n'));
    if (last) yield last;
  } finally {
    reader.releaseLock();
  }
}

function parse(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length ? { event, data: data.join('\n') } : null;
}
