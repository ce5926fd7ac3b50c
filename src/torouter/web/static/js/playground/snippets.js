// The current request as a curl command and as a Python SDK call (openai, anthropic, google-genai).

const shellQuote = (text) => `'${String(text).replace(/'/g, `'\\''`)}'`;

function pyScalar(value) {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  return typeof value === 'number' ? String(value) : JSON.stringify(String(value));
}

function pyFlat(value) {
  if (Array.isArray(value)) return `[${value.map(pyFlat).join(', ')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${pyFlat(v)}`).join(', ')}}`;
  }
  return pyScalar(value);
}

/** A JSON value as a Python literal: on one line when it fits, else indented like the JSON. */
export function pyLiteral(value, indent = 0) {
  const flat = pyFlat(value);
  if (flat.length + indent <= 80 || value === null || typeof value !== 'object') return flat;
  const pad = ' '.repeat(indent);
  const inner = ' '.repeat(indent + 4);
  if (Array.isArray(value)) {
    return `[\n${value.map((v) => inner + pyLiteral(v, indent + 4)).join(',\n')},\n${pad}]`;
  }
  const entries = Object.entries(value);
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${pyLiteral(v, indent + 4)}`).join(',\n')},\n${pad}}`;
}

export function curlSnippet({ origin, protocol, model, key, body }) {
  const headers = Object.entries(protocol.headers(key)).map(([k, v]) => `  -H ${shellQuote(`${k}: ${v}`)} \\`);
  return [
    `curl -N ${shellQuote(origin + protocol.path(model))} \\`,
    ...headers,
    `  -H 'content-type: application/json' \\`,
    `  -d ${shellQuote(JSON.stringify(body, null, 2))}`,
  ].join('\n');
}

const args = (pairs, indent) =>
  pairs
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${' '.repeat(indent)}${k}=${pyLiteral(v, indent)},`)
    .join('\n');

export function pythonSnippet({ origin, protocol, model, key, req }) {
  const { system, history, temperature, maxTokens } = req;
  const keyLit = JSON.stringify(key);
  if (protocol.id === 'openai-chat') {
    const messages = [...(system ? [{ role: 'system', content: system }] : []), ...history];
    return `from openai import OpenAI

client = OpenAI(base_url=${JSON.stringify(origin + '/v1')}, api_key=${keyLit})
stream = client.chat.completions.create(
${args([['model', model], ['messages', messages], ['temperature', temperature], ['max_completion_tokens', maxTokens], ['stream', true]], 4)}
)
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="", flush=True)
print()`;
  }
  if (protocol.id === 'openai-responses') {
    return `from openai import OpenAI

client = OpenAI(base_url=${JSON.stringify(origin + '/v1')}, api_key=${keyLit})
stream = client.responses.create(
${args([['model', model], ['instructions', system], ['input', history], ['temperature', temperature], ['max_output_tokens', maxTokens], ['stream', true]], 4)}
)
for event in stream:
    if event.type == "response.output_text.delta":
        print(event.delta, end="", flush=True)
print()`;
  }
  if (protocol.id === 'anthropic') {
    // Recent anthropic SDKs take no temperature argument: it goes in the body as is.
    return `import anthropic

client = anthropic.Anthropic(base_url=${JSON.stringify(origin)}, api_key=${keyLit})
with client.messages.stream(
${args([['model', model], ['max_tokens', maxTokens ?? 1024], ['system', system], ['messages', history], ['extra_body', temperature === null || temperature === undefined ? null : { temperature }]], 4)}
) as stream:
    for text in stream.text_stream:
        print(text, end="", flush=True)
print()`;
  }
  const contents = history.map((m) => ({ role: m.role === 'assistant' ? 'model' : 'user', parts: [{ text: m.content }] }));
  const config = args([['system_instruction', system], ['temperature', temperature], ['max_output_tokens', maxTokens]], 8);
  return `from google import genai
from google.genai import types

client = genai.Client(api_key=${keyLit}, http_options=types.HttpOptions(base_url=${JSON.stringify(origin)}))
for chunk in client.models.generate_content_stream(
    model=${JSON.stringify(String(model).replace(/^models\//, ''))},
    contents=${pyLiteral(contents, 4)},${config ? `\n    config=types.GenerateContentConfig(\n${config}\n    ),` : ''}
):
    print(chunk.text or "", end="", flush=True)
print()`;
}
