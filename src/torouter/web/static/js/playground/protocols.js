// The four client protocols the Playground speaks: how to build the call, and how to read its stream.
//
// Each protocol has the same parts:
//   path(model)      the URL path of a streaming call
//   headers(key)     the auth and version headers
//   body(req)        the JSON body for req = { model, system, history, temperature, maxTokens }
//   idHeader         the response header that carries the request id
//   read(event)      one parsed SSE event -> { text?, usage?, error?, done? }

export const CAPTURE_HEADER = 'x-torouter-capture';

const withOptional = (body, pairs) => {
  for (const [k, v] of pairs) if (v !== null && v !== undefined && v !== '') body[k] = v;
  return body;
};

const json = (data) => {
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
};

/** The vendor's message from an error body of any of the three shapes (Gemini's may be a list). */
export function vendorError(body) {
  const obj = Array.isArray(body) ? body[0] : body;
  if (!obj || typeof obj !== 'object') return typeof body === 'string' ? body : '';
  const err = obj.error ?? obj.response?.error ?? obj;
  if (typeof err === 'string') return err;
  const message = err.message ?? obj.message ?? obj.detail;
  const kind = err.type ?? err.status ?? err.code;
  return [message, kind && typeof kind === 'string' && !String(message).includes(kind) ? `(${kind})` : '']
    .filter(Boolean)
    .join(' ');
}

const openaiChat = {
  id: 'openai-chat',
  label: 'OpenAI Chat Completions',
  path: () => '/v1/chat/completions',
  headers: (key) => ({ Authorization: `Bearer ${key}` }),
  idHeader: 'x-request-id',
  body: ({ model, system, history, temperature, maxTokens }) =>
    withOptional(
      {
        model,
        messages: [...(system ? [{ role: 'system', content: system }] : []), ...history],
        stream: true,
        stream_options: { include_usage: true },
      },
      [['temperature', temperature], ['max_completion_tokens', maxTokens]],
    ),
  read({ data }) {
    if (data === '[DONE]') return { done: true };
    const chunk = json(data);
    if (!chunk) return {};
    if (chunk.error) return { error: vendorError(chunk) };
    return { text: chunk.choices?.[0]?.delta?.content || '', usage: chunk.usage || undefined };
  },
};

const openaiResponses = {
  id: 'openai-responses',
  label: 'OpenAI Responses',
  path: () => '/v1/responses',
  headers: (key) => ({ Authorization: `Bearer ${key}` }),
  idHeader: 'x-request-id',
  body: ({ model, system, history, temperature, maxTokens }) =>
    withOptional({ model, input: history.map((m) => ({ role: m.role, content: m.content })), stream: true }, [
      ['instructions', system],
      ['temperature', temperature],
      ['max_output_tokens', maxTokens],
    ]),
  read({ event, data }) {
    const ev = json(data);
    if (!ev) return {};
    const type = ev.type || event;
    if (type === 'response.output_text.delta') return { text: ev.delta || '' };
    if (type === 'response.completed' || type === 'response.incomplete') return { usage: ev.response?.usage, done: true };
    if (type === 'response.failed') return { error: vendorError(ev.response?.error ? ev.response : ev) };
    if (type === 'error') return { error: vendorError(ev.error ? ev : { error: { message: ev.message, code: ev.code } }) };
    return {};
  },
};

const anthropic = {
  id: 'anthropic',
  label: 'Anthropic Messages',
  path: () => '/v1/messages',
  headers: (key) => ({ 'x-api-key': key, 'anthropic-version': '2023-06-01' }),
  idHeader: 'request-id',
  defaultMaxTokens: 1024, // required by the Messages API
  body: ({ model, system, history, temperature, maxTokens }) =>
    withOptional({ model, max_tokens: maxTokens ?? 1024, messages: history, stream: true }, [
      ['system', system],
      ['temperature', temperature],
    ]),
  read({ event, data }) {
    const ev = json(data);
    if (!ev) return {};
    const type = ev.type || event;
    if (type === 'content_block_delta' && ev.delta?.type === 'text_delta') return { text: ev.delta.text || '' };
    if (type === 'message_start') return { usage: ev.message?.usage };
    if (type === 'message_delta') return { usage: ev.usage };
    if (type === 'message_stop') return { done: true };
    if (type === 'error') return { error: vendorError(ev) };
    return {};
  },
};

const gemini = {
  id: 'gemini',
  label: 'Gemini',
  path: (model) => `/v1beta/models/${String(model).replace(/^models\//, '')}:streamGenerateContent?alt=sse`,
  headers: (key) => ({ 'x-goog-api-key': key }),
  idHeader: 'x-request-id',
  body: ({ system, history, temperature, maxTokens }) => {
    const body = {
      contents: history.map((m) => ({ role: m.role === 'assistant' ? 'model' : 'user', parts: [{ text: m.content }] })),
    };
    if (system) body.systemInstruction = { parts: [{ text: system }] };
    const config = withOptional({}, [['temperature', temperature], ['maxOutputTokens', maxTokens]]);
    if (Object.keys(config).length) body.generationConfig = config;
    return body;
  },
  read({ data }) {
    const chunk = json(data);
    if (!chunk) return {};
    if (chunk.error) return { error: vendorError(chunk) };
    const parts = chunk.candidates?.[0]?.content?.parts || [];
    const text = parts.filter((p) => !p.thought).map((p) => p.text || '').join('');
    return { text, usage: chunk.usageMetadata || undefined };
  },
};

export const PROTOCOLS = [openaiChat, openaiResponses, anthropic, gemini];
export const protocolById = (id) => PROTOCOLS.find((p) => p.id === id) || openaiChat;
