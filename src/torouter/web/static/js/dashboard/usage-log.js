// Usage log: one row per call, newest first, with filters and paging (GET /usage).
import { html, useState } from '../lib/html.js';
import { api, rowsOf } from './api.js';
import { Badge, ErrorBox, Field, Loading, Table, useAsync } from './ui.js';
import { ms, num, time, usd } from '../lib/format.js';

const PAGE = 50;
const SPANS = [['1h', 3600], ['24h', 86400], ['7d', 7 * 86400], ['30d', 30 * 86400], ['all', 0]];
const EMPTY = { key: '', group: '', model: '', account: '', status: '', span: '24h' };

function query(filters, offset) {
  const seconds = SPANS.find(([s]) => s === filters.span)?.[1];
  return {
    key: filters.key.trim(),
    group: filters.group.trim(),
    model: filters.model.trim(),
    account: filters.account.trim(),
    status: filters.status.trim(),
    since: seconds ? Math.floor(Date.now() / 1000 - seconds) : undefined,
    limit: PAGE,
    offset,
  };
}

function StatusBadge({ code }) {
  const tone = code < 400 ? 'ok' : code === 429 || code === 499 ? 'warn' : 'bad';
  return html`<${Badge} tone=${tone}>${code}<//>`;
}

export function UsageLog() {
  const [draft, setDraft] = useState(EMPTY);
  const [filters, setFilters] = useState(EMPTY);
  const [offset, setOffset] = useState(0);
  const [open, setOpen] = useState(null);
  const log = useAsync(() => api('/usage', { query: query(filters, offset) }), [filters, offset]);
  const rows = rowsOf(log.data);
  const total = log.data?.total ?? rows.length;
  const set = (name) => (e) => setDraft({ ...draft, [name]: e.currentTarget.value });
  const apply = (e) => {
    e.preventDefault();
    setOffset(0);
    setFilters({ ...draft });
  };

  const columns = [
    { label: 'Time', render: (r) => time(r.created_at) },
    { label: 'Status', render: (r) => html`<${StatusBadge} code=${r.status_code} />` },
    { label: 'Key', render: (r) => r.key_name || (r.key_id ?? '') },
    { label: 'Group', render: (r) => r.group_name },
    { label: 'Model', render: (r) => html`${r.model}${r.upstream_model && r.upstream_model !== r.model ? html`<div class="hint">→ ${r.upstream_model}</div>` : ''}` },
    { label: 'Account', render: (r) => r.account_name || html`<span class="muted">none</span>` },
    { label: 'Surface', render: (r) => html`${r.surface}<div class="hint">${r.endpoint}${r.stream ? ' · stream' : ''}</div>` },
    { label: 'Input', num: true, render: (r) => num(r.input_tokens) },
    { label: 'Output', num: true, render: (r) => num(r.output_tokens) },
    { label: 'Cost', num: true, render: (r) => html`${usd(r.cost_usd)}${r.estimated ? html`<div class="hint">estimated</div>` : ''}` },
    { label: 'Latency', num: true, render: (r) => ms(r.latency_ms) },
    { label: 'TTFT', num: true, render: (r) => (r.ttft_ms ? ms(r.ttft_ms) : '–') },
    { label: 'Error', render: (r) => r.error || '' },
  ];
  const rowId = (r) => r.request_id || r.id;

  return html`<div>
    <div class="page-head"><h1>Usage log</h1></div>
    <form class="panel filters" data-testid="usage-filters" onSubmit=${apply}>
      ${['key', 'group', 'model', 'account'].map(
        (name) => html`<${Field} label=${name[0].toUpperCase() + name.slice(1)} id=${'usage-filter-' + name}>
          <input id=${'usage-filter-' + name} data-testid=${'usage-filter-' + name} value=${draft[name]}
            onInput=${set(name)} placeholder=${name === 'key' ? 'id or name' : ''} />
        <//>`,
      )}
      <${Field} label="Status" id="usage-filter-status">
        <input id="usage-filter-status" data-testid="usage-filter-status" list="usage-statuses" value=${draft.status}
          onInput=${set('status')} placeholder="200, 429 or error" />
        <datalist id="usage-statuses">
          ${['error', '200', '400', '401', '403', '404', '429', '499', '500', '502', '503'].map((s) => html`<option value=${s} />`)}
        </datalist>
      <//>
      <${Field} label="Span" id="usage-filter-span">
        <select id="usage-filter-span" data-testid="usage-filter-span" value=${draft.span} onChange=${set('span')}>
          ${SPANS.map(([s]) => html`<option value=${s}>${s === 'all' ? 'all time' : 'last ' + s}</option>`)}
        </select>
      <//>
      <div class="row">
        <button type="submit" class="primary" data-testid="usage-apply">Apply</button>
        <button type="button" data-testid="usage-reset" onClick=${() => { setDraft(EMPTY); setFilters(EMPTY); setOffset(0); }}>Reset</button>
      </div>
    </form>
    <${ErrorBox} error=${log.error} />
    <${Loading} when=${log.loading && !log.data} />
    ${log.data && html`<${Table} testid="usage-table" rowTestid="usage-row" columns=${columns} rows=${rows}
      rowKey=${rowId} empty="No calls match."
      rowProps=${(r) => ({ class: 'clickable', 'data-request-id': r.request_id, onClick: () => setOpen(open === rowId(r) ? null : rowId(r)) })}
      after=${(r) => (open === rowId(r) ? html`<pre data-testid="usage-record">${JSON.stringify(r, null, 2)}</pre>` : null)} />`}
    ${log.data && html`<div class="pager" data-testid="usage-pager">
      <button type="button" data-testid="usage-prev" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>← Newer</button>
      <span data-testid="usage-range">${total ? `${offset + 1}–${offset + rows.length} of ${num(total)}` : '0 calls'}</span>
      <button type="button" data-testid="usage-next" disabled=${offset + rows.length >= total} onClick=${() => setOffset(offset + PAGE)}>Older →</button>
    </div>`}
  </div>`;
}
