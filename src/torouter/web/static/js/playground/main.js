// The Playground: chat with a key through any client protocol, see the stream arrive, what it cost,
// and what went upstream.
import { html, render, useState, useEffect, useMemo, useRef } from '../lib/html.js';
import { forgetKey, maskKey, saveKey, savedKeys, selectKey, selectedKey } from '../lib/saved-keys.js';
import { copyText } from '../lib/clipboard.js';
import { ms, num, usd } from '../lib/format.js';
import { readEvents } from './sse.js';
import { CAPTURE_HEADER, PROTOCOLS, protocolById, vendorError } from './protocols.js';
import { curlSnippet, pythonSnippet } from './snippets.js';

const PREFS = 'torouter.playground.prefs';
const loadPrefs = () => {
  try {
    return JSON.parse(localStorage.getItem(PREFS) || '{}') || {};
  } catch {
    return {};
  }
};
const sleep = (t) => new Promise((resolve) => setTimeout(resolve, t));
const parseJson = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
};

class ChatError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The turns to send again: each user message that got an answer, and that answer. */
function historyOf(messages) {
  const out = [];
  for (let i = 0; i + 1 < messages.length; i++) {
    const [q, a] = [messages[i], messages[i + 1]];
    if (q.role === 'user' && a.role === 'assistant' && a.status !== 'error' && a.content) {
      out.push({ role: 'user', content: q.content }, { role: 'assistant', content: a.content });
      i++;
    }
  }
  return out;
}

function optionalNumber(text, integer) {
  const t = String(text ?? '').trim();
  if (!t) return null;
  const n = Number(t);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) return null;
  return n;
}

/** GET /torouter/captures/{id} with the call's key; a capture may take a moment to appear or to be complete. */
async function fetchCapture(requestId, key) {
  let last = null;
  for (let attempt = 0; attempt < 10; attempt++) {
    if (attempt) await sleep(200);
    let res;
    try {
      res = await fetch(`/torouter/captures/${encodeURIComponent(requestId)}`, {
        headers: { Authorization: `Bearer ${key}` },
      });
    } catch (err) {
      last = { error: `The gateway did not answer (${err.message}).` };
      continue;
    }
    const body = parseJson(await res.text());
    if (res.ok && body) {
      last = { data: body };
      if (body.latency_ms !== null && body.latency_ms !== undefined) return last;
    } else if (res.status === 404) {
      last = last?.data ? last : { error: `HTTP 404: ${vendorError(body) || 'no capture yet'}` };
    } else {
      return { error: `HTTP ${res.status}: ${vendorError(body) || res.statusText}` };
    }
  }
  return last;
}

function KeyPicker({ keys, current, onSelect, onForget }) {
  const [paste, setPaste] = useState('');
  const use = (e) => {
    e.preventDefault();
    const key = paste.trim();
    if (!key) return;
    onSelect(key, true);
    setPaste('');
  };
  return html`<div class="field">
    <label for="key-select">API key</label>
    <div class="row" style="flex-wrap:nowrap">
      <select id="key-select" data-testid="key-select" style="flex:1;min-width:0" value=${current}
        onChange=${(e) => onSelect(e.currentTarget.value, false)}>
        ${!keys.length && html`<option value="">no saved key</option>`}
        ${keys.map((k) => html`<option value=${k.key}>${k.label === maskKey(k.key) ? k.label : `${k.label} · ${maskKey(k.key)}`}</option>`)}
      </select>
      <button type="button" class="small" data-testid="key-forget" disabled=${!current} title="Forget this key in this browser"
        onClick=${() => onForget(current)}>Forget</button>
    </div>
    <form class="row" style="flex-wrap:nowrap;margin-top:6px" onSubmit=${use} data-testid="key-paste-form">
      <input id="key-input" data-testid="key-input" type="password" autocomplete="off" placeholder="or paste a key"
        aria-label="Paste an API key" style="flex:1;min-width:0" value=${paste} onInput=${(e) => setPaste(e.currentTarget.value)} />
      <button type="submit" class="small" data-testid="key-use">Use</button>
    </form>
    <p class="hint">Keys are kept in this browser's local storage.</p>
  </div>`;
}

function Message({ m }) {
  const who = m.role === 'user' ? 'You' : 'Assistant';
  return html`<div class=${`msg ${m.role}${m.status === 'streaming' ? ' streaming' : ''}`} data-testid="chat-message"
    data-role=${m.role} data-status=${m.status || 'done'}>
    <div class="who">${who}</div>
    ${(m.content || m.status !== 'error') && html`<div class="text" data-testid=${m.role === 'assistant' ? 'assistant-text' : 'user-text'}>${m.content}</div>`}
    ${m.status === 'error' && html`<div class="error" role="alert" data-testid="chat-error" data-status=${String(m.error.status)}>
      <b>${typeof m.error.status === 'number' ? `HTTP ${m.error.status}` : 'Stream error'}</b>: ${m.error.message}</div>`}
    ${m.status === 'stopped' && html`<div class="status" data-testid="chat-stopped">Stopped.</div>`}
  </div>`;
}

function Metrics({ last }) {
  if (!last) return null;
  const c = last.capture?.data;
  const usage = c?.usage || last.streamUsage || null;
  const input = usage?.input_tokens ?? usage?.prompt_tokens ?? usage?.promptTokenCount;
  const output = usage?.output_tokens ?? usage?.completion_tokens ?? usage?.candidatesTokenCount;
  const cards = [
    ['ttft', 'First token (browser)', ms(last.ttft)],
    ['ttft-gateway', 'First token (gateway)', ms(c?.ttft_ms)],
    ['total', 'Total (browser)', ms(last.total)],
    ['total-gateway', 'Total (gateway)', ms(c?.latency_ms)],
    ['tokens', 'Tokens in / out', usage ? `${num(input)} / ${num(output)}` : '–'],
    ['cost', 'Cost', c ? usd(c.cost_usd) : '–'],
  ];
  return html`<section class="panel" data-testid="answer-metrics">
    <h2>Last answer</h2>
    <div class="metrics">
      ${cards.map(([id, label, value]) => html`<div class="card">
        <div class="label">${label}</div><div class="value" data-testid=${'metric-' + id}>${value}</div>
      </div>`)}
    </div>
    <p class="hint" data-testid="answer-route">
      Request id <code data-testid="request-id">${last.requestId || '–'}</code>
      ${c && html` · ${c.surface} client → ${c.platform} platform, account <b>${c.account || 'none'}</b>, status ${c.status_code ?? '–'}`}
    </p>
    ${usage && html`<details><summary class="hint">Usage as recorded</summary><pre class="code" data-testid="capture-usage">${JSON.stringify(usage, null, 2)}</pre></details>`}
  </section>`;
}

function RequestView({ side, title }) {
  if (!side) return html`<div><h3>${title}</h3><p class="muted">Nothing was sent.</p></div>`;
  const head = `${side.method} ${side.path}\n${Object.entries(side.headers || {}).map(([k, v]) => `${k}: ${v}`).join('\n')}`;
  const body = typeof side.body === 'string' ? side.body : JSON.stringify(side.body, null, 2);
  return html`<div><h3>${title}</h3><pre>${head + '\n\n' + body}</pre></div>`;
}

function Upstream({ last }) {
  if (!last) return null;
  const c = last.capture;
  return html`<section class="panel" data-testid="capture-panel">
    <h2>What went upstream</h2>
    ${c?.error && html`<p class="notice" data-testid="capture-error">No capture: ${c.error}</p>`}
    ${!c && html`<p class="muted">Fetching the capture…</p>`}
    ${c?.data && html`<div class="side-by-side">
      <div data-testid="capture-client"><${RequestView} side=${c.data.client} title="Client → ToRouter" /></div>
      <div data-testid="capture-upstream"><${RequestView} side=${c.data.upstream}
        title=${`ToRouter → ${c.data.account || 'upstream'} (${c.data.platform})`} /></div>
    </div>
    <p class="hint">Credentials are masked. Kept by the gateway for 10 minutes.</p>`}
  </section>`;
}

function Code({ protocol, model, apiKey, req }) {
  const [tab, setTab] = useState('curl');
  const [reveal, setReveal] = useState(false);
  const [copied, setCopied] = useState('');
  const shown = reveal ? apiKey : maskKey(apiKey) || '$TOROUTER_KEY';
  const origin = location.origin;
  const text =
    tab === 'curl'
      ? curlSnippet({ origin, protocol, model: model || 'MODEL', key: shown, body: protocol.body({ ...req, model: model || 'MODEL' }) })
      : pythonSnippet({ origin, protocol, model: model || 'MODEL', key: shown, req });
  const copy = async () => setCopied((await copyText(text)) ? 'Copied.' : 'Copy failed.');
  return html`<section class="panel" data-testid="code-panel">
    <div class="page-head">
      <h2 style="margin:0">The same call in code</h2>
      <div class="segmented" role="group" aria-label="Language">
        <button type="button" aria-pressed=${String(tab === 'curl')} data-testid="code-tab-curl" onClick=${() => setTab('curl')}>curl</button>
        <button type="button" aria-pressed=${String(tab === 'python')} data-testid="code-tab-python" onClick=${() => setTab('python')}>Python</button>
      </div>
      <label class="inline"><input type="checkbox" data-testid="reveal-key" checked=${reveal}
        onChange=${(e) => setReveal(e.currentTarget.checked)} /> Show key</label>
      <button type="button" class="small" data-testid="copy-snippet" onClick=${copy}>Copy</button>
      ${copied && html`<span class="hint" role="status">${copied}</span>`}
    </div>
    <pre class="code" data-testid="code-snippet">${text}</pre>
  </section>`;
}

function Playground() {
  const prefs = useMemo(loadPrefs, []);
  const [keys, setKeys] = useState(savedKeys());
  const [apiKey, setApiKey] = useState(selectedKey());
  const [protocolId, setProtocolId] = useState(prefs.protocol || PROTOCOLS[0].id);
  const [models, setModels] = useState({ list: [], error: null, loading: false });
  const [listed, setListed] = useState(prefs.model || '');
  const [customModel, setCustomModel] = useState(prefs.customModel || '');
  const [system, setSystem] = useState(prefs.system || '');
  const [temperature, setTemperature] = useState(prefs.temperature ?? '');
  const [maxTokens, setMaxTokens] = useState(prefs.maxTokens ?? '');
  const [messages, setMessages] = useState([]);
  const [draft, setDraft] = useState('');
  const [busy, setBusy] = useState(false);
  const [last, setLast] = useState(null);
  const [modelsTick, setModelsTick] = useState(0);
  const abort = useRef(null);
  const log = useRef(null);
  const protocol = protocolById(protocolId);
  const model = customModel.trim() || listed;

  useEffect(() => {
    localStorage.setItem(
      PREFS,
      JSON.stringify({ protocol: protocolId, model: listed, customModel, system, temperature, maxTokens }),
    );
  }, [protocolId, listed, customModel, system, temperature, maxTokens]);

  useEffect(() => {
    // The dashboard's "Use in Playground", in another tab, lands here at once.
    const onStorage = () => {
      setKeys(savedKeys());
      setApiKey((k) => (savedKeys().some((s) => s.key === k) ? k : selectedKey()));
    };
    window.addEventListener('storage', onStorage);
    return () => window.removeEventListener('storage', onStorage);
  }, []);

  useEffect(() => {
    if (!apiKey) {
      setModels({ list: [], error: null, loading: false });
      return;
    }
    let live = true;
    setModels((m) => ({ ...m, loading: true, error: null }));
    fetch('/v1/models', { headers: { Authorization: `Bearer ${apiKey}` } })
      .then(async (res) => {
        const body = parseJson(await res.text());
        if (!res.ok) throw new ChatError(res.status, vendorError(body) || res.statusText);
        return (body?.data || []).map((m) => m.id).filter(Boolean);
      })
      .then(
        (list) => {
          if (!live) return;
          setModels({ list, error: null, loading: false });
          setListed((current) => (list.includes(current) ? current : list[0] || ''));
        },
        (err) => live && setModels({ list: [], error: err, loading: false }),
      );
    return () => {
      live = false;
    };
  }, [apiKey, modelsTick]);

  useEffect(() => {
    if (log.current) log.current.scrollTop = log.current.scrollHeight;
  }, [messages]);

  const chooseKey = (key, remember) => {
    if (remember) saveKey(key);
    else selectKey(key);
    setKeys(savedKeys());
    setApiKey(key);
  };
  const forget = (key) => {
    forgetKey(key);
    setKeys(savedKeys());
    setApiKey(selectedKey());
  };

  const settings = {
    model,
    system: system.trim(),
    temperature: optionalNumber(temperature, false),
    maxTokens: optionalNumber(maxTokens, true),
  };
  const nextRequest = { ...settings, history: [...historyOf(messages), { role: 'user', content: draft.trim() || 'Hello' }] };

  const updateLast = (change) =>
    setMessages((ms) => {
      const copy = ms.slice();
      copy[copy.length - 1] = change(copy[copy.length - 1]);
      return copy;
    });

  async function send(event) {
    event?.preventDefault();
    const text = draft.trim();
    if (!text || !apiKey || !model || busy) return;
    const req = { ...settings, history: [...historyOf(messages), { role: 'user', content: text }] };
    const controller = new AbortController();
    abort.current = controller;
    setBusy(true);
    setDraft('');
    setMessages((ms) => [...ms, { role: 'user', content: text }, { role: 'assistant', content: '', status: 'streaming' }]);
    setLast(null);
    const key = apiKey;
    const started = performance.now();
    let ttft = null;
    let requestId = '';
    let streamUsage = null;
    let failure = null;
    try {
      const res = await fetch(protocol.path(model), {
        method: 'POST',
        headers: { ...protocol.headers(key), 'content-type': 'application/json', [CAPTURE_HEADER]: '1' },
        body: JSON.stringify(protocol.body(req)),
        signal: controller.signal,
      });
      requestId = res.headers.get(protocol.idHeader) || '';
      if (!res.ok || !res.body) {
        const raw = await res.text();
        throw new ChatError(res.status, vendorError(parseJson(raw) ?? raw) || res.statusText || 'no body');
      }
      for await (const ev of readEvents(res.body)) {
        const out = protocol.read(ev);
        if (out.usage) streamUsage = { ...(streamUsage || {}), ...out.usage };
        if (out.error) throw new ChatError('stream', out.error);
        if (out.text) {
          if (ttft === null) ttft = performance.now() - started;
          const piece = out.text;
          updateLast((m) => ({ ...m, content: m.content + piece }));
        }
      }
      updateLast((m) => ({ ...m, status: 'done' }));
    } catch (err) {
      if (err.name === 'AbortError') {
        updateLast((m) => ({ ...m, status: 'stopped' }));
      } else {
        failure = err instanceof ChatError ? err : new ChatError('stream', err.message);
        updateLast((m) => ({ ...m, status: 'error', error: { status: failure.status, message: failure.message } }));
      }
    } finally {
      abort.current = null;
      setBusy(false);
    }
    const total = performance.now() - started;
    const base = { requestId, ttft, total, streamUsage, capture: null };
    setLast(base);
    if (!requestId || failure?.status === 401) {
      setLast({ ...base, capture: { error: requestId ? 'the key was refused, so nothing was captured.' : 'the answer carried no request id.' } });
      return;
    }
    setLast({ ...base, capture: await fetchCapture(requestId, key) });
  }

  return html`<div class="pg">
    <header>
      <h1>ToRouter Playground</h1>
      <span class="spacer"></span>
      <a href="/dashboard" data-testid="nav-dashboard">Dashboard</a>
    </header>
    <aside class="panel" data-testid="settings">
      <${KeyPicker} keys=${keys} current=${apiKey} onSelect=${chooseKey} onForget=${forget} />
      <div class="field">
        <label for="protocol-select">Client protocol</label>
        <select id="protocol-select" data-testid="protocol-select" value=${protocolId}
          onChange=${(e) => setProtocolId(e.currentTarget.value)}>
          ${PROTOCOLS.map((p) => html`<option value=${p.id}>${p.label}</option>`)}
        </select>
        <p class="hint"><code>${protocol.path(model || '{model}')}</code></p>
      </div>
      <div class="field">
        <label for="model-select">Model</label>
        <div class="row" style="flex-wrap:nowrap">
          <select id="model-select" data-testid="model-select" style="flex:1;min-width:0" value=${listed}
            disabled=${!models.list.length} onChange=${(e) => setListed(e.currentTarget.value)}>
            ${!models.list.length && html`<option value="">${models.loading ? 'loading…' : 'no model'}</option>`}
            ${models.list.map((id) => html`<option value=${id}>${id}</option>`)}
          </select>
          <button type="button" class="small" data-testid="model-refresh" title="Reload the key's models"
            onClick=${() => setModelsTick((t) => t + 1)}>↻</button>
        </div>
        <input id="model-custom" data-testid="model-custom" aria-label="Another model id" style="width:100%;margin-top:6px"
          placeholder="or type a model id" value=${customModel} onInput=${(e) => setCustomModel(e.currentTarget.value)} />
        ${!models.list.length && !models.error && !models.loading && apiKey &&
        html`<p class="hint" data-testid="models-empty">This key's models are not listed (its group takes any id): type one.</p>`}
        ${models.error && html`<p class="error" role="alert" data-testid="models-error">
          ${typeof models.error.status === 'number' ? `HTTP ${models.error.status}: ` : ''}${models.error.message}</p>`}
      </div>
      <div class="field">
        <label for="system-prompt">System prompt</label>
        <textarea id="system-prompt" data-testid="system-prompt" rows="4" value=${system}
          onInput=${(e) => setSystem(e.currentTarget.value)} placeholder="You are a helpful assistant."></textarea>
      </div>
      <div class="grid-2">
        <div class="field">
          <label for="temperature">Temperature</label>
          <input id="temperature" data-testid="temperature" type="number" min="0" max="2" step="0.1" placeholder="default"
            value=${temperature} onInput=${(e) => setTemperature(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="max-tokens">Max tokens</label>
          <input id="max-tokens" data-testid="max-tokens" type="number" min="1" step="1"
            placeholder=${protocol.defaultMaxTokens ? String(protocol.defaultMaxTokens) : 'default'}
            value=${maxTokens} onInput=${(e) => setMaxTokens(e.currentTarget.value)} />
        </div>
      </div>
    </aside>
    <div style="min-width:0">
      <section class="panel">
        <div class="page-head">
          <h2 style="margin:0">Chat</h2>
          <span class="spacer"></span>
          <button type="button" class="small" data-testid="new-chat" disabled=${busy || !messages.length}
            onClick=${() => { setMessages([]); setLast(null); }}>New conversation</button>
        </div>
        <div class="chat-log" ref=${log} data-testid="chat-log" aria-live="polite">
          ${!messages.length && html`<p class="muted">Pick a key and a model, then say something.</p>`}
          ${messages.map((m, i) => html`<${Message} key=${i} m=${m} />`)}
        </div>
        <form class="composer" onSubmit=${send} data-testid="chat-form">
          <textarea id="chat-input" data-testid="chat-input" rows="3" placeholder="Message (Enter sends, Shift+Enter for a new line)"
            value=${draft} onInput=${(e) => setDraft(e.currentTarget.value)}
            onKeyDown=${(e) => { if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) send(e); }}></textarea>
          ${busy
            ? html`<button type="button" class="danger" data-testid="stop-button" onClick=${() => abort.current?.abort()}>Stop</button>`
            : html`<button type="submit" class="primary" data-testid="send-button" disabled=${!draft.trim() || !apiKey || !model}>Send</button>`}
        </form>
      </section>
      <${Metrics} last=${last} />
      <${Upstream} last=${last} />
      <${Code} protocol=${protocol} model=${model} apiKey=${apiKey} req=${nextRequest} />
    </div>
  </div>`;
}

render(html`<${Playground} />`, document.getElementById('app'));
