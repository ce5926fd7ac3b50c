// Overview: totals and charts over a span (GET /usage/timeseries), and tables by key, group,
// model or account (GET /usage/summary).
import { html, useState, useMemo } from '../lib/html.js';
import { api, rowsOf } from './api.js';
import { Chart } from './chart.js';
import { ErrorBox, Loading, Segmented, Table, useAsync } from './ui.js';
import { compact, ms, num, pct, usd } from '../lib/format.js';

// span: [length in seconds, bucket in seconds]
export const SPANS = {
  '1h': [3600, 60],
  '24h': [86400, 900],
  '7d': [7 * 86400, 3 * 3600],
  '30d': [30 * 86400, 12 * 3600],
};
const SPAN_OPTIONS = Object.keys(SPANS).map((s) => [s, s]);
const BY_OPTIONS = [['key', 'Key'], ['group', 'Group'], ['model', 'Model'], ['account', 'Account']];

const shortUsd = (v) => '$' + (v >= 1 || v === 0 ? compact(v) : Number(v.toPrecision(2)));
const since = (span) => Math.floor(Date.now() / 1000 - SPANS[span][0]);

function Totals({ totals }) {
  const t = totals || {};
  const tokens = (t.input_tokens || 0) + (t.output_tokens || 0);
  const errorRate = t.error_rate ?? (t.calls ? (t.errors || 0) / t.calls : 0);
  const cards = [
    ['calls', 'Calls', num(t.calls ?? 0), t.calls ?? 0],
    ['tokens', 'Tokens (in + out)', compact(tokens), tokens],
    ['cost', 'Cost', usd(t.cost_usd ?? 0), t.cost_usd ?? 0],
    ['error-rate', 'Error rate', pct(errorRate), errorRate],
    ['p50', 'Latency p50', ms(t.p50_ms), t.p50_ms ?? ''],
    ['p95', 'Latency p95', ms(t.p95_ms), t.p95_ms ?? ''],
  ];
  return html`<div class="cards" data-testid="overview-totals">
    ${cards.map(
      ([id, label, text, raw]) => html`<div class="card">
        <div class="label">${label}</div>
        <div class="value" data-testid=${'overview-total-' + id} data-value=${String(raw)}>${text}</div>
      </div>`,
    )}
  </div>`;
}

function Charts({ series }) {
  const charts = useMemo(() => {
    const x = series.map((p) => p.t);
    const col = (name) => series.map((p) => p[name] ?? null);
    return {
      x,
      calls: [{ label: 'Calls', values: col('calls') }, { label: 'Errors', values: col('errors') }],
      tokens: [{ label: 'Input', values: col('input_tokens') }, { label: 'Output', values: col('output_tokens') }],
      cost: [{ label: 'Cost', values: col('cost_usd') }],
      errors: [{ label: 'Error rate', values: series.map((p) => (p.calls ? (p.errors || 0) / p.calls : null)) }],
      latency: [{ label: 'p50', values: col('p50_ms') }, { label: 'p95', values: col('p95_ms') }],
    };
  }, [series]);
  return html`<div class="charts">
    <${Chart} title="Calls" testid="chart-calls" x=${charts.x} lines=${charts.calls} format=${compact} />
    <${Chart} title="Tokens" testid="chart-tokens" x=${charts.x} lines=${charts.tokens} format=${compact} />
    <${Chart} title="Cost (USD)" testid="chart-cost" x=${charts.x} lines=${charts.cost} format=${usd} axisFormat=${shortUsd}
      yMax=${0.0001} />
    <${Chart} title="Error rate" testid="chart-error-rate" x=${charts.x} lines=${charts.errors} format=${pct}
      axisFormat=${(v) => Math.round(v * 100) + '%'} />
    <${Chart} title="Latency" testid="chart-latency" x=${charts.x} lines=${charts.latency} format=${ms} yMax=${10} />
  </div>`;
}

function Summary({ span }) {
  const [by, setBy] = useState('key');
  const summary = useAsync(() => api('/usage/summary', { query: { by, since: since(span) } }), [by, span]);
  const rows = rowsOf(summary.data);
  const total = summary.data?.total;
  const label = (r) => (by === 'key' ? r.key ?? r.key_name ?? r.key_id : r[by]) || '(none)';
  const columns = [
    { label: BY_OPTIONS.find(([v]) => v === by)[1], render: (r) => (r === total ? 'Total' : label(r)) },
    { label: 'Calls', num: true, render: (r) => num(r.calls) },
    { label: 'Errors', num: true, render: (r) => num(r.errors) },
    { label: 'Input', num: true, render: (r) => num(r.input_tokens) },
    { label: 'Output', num: true, render: (r) => num(r.output_tokens) },
    { label: 'Cached', num: true, render: (r) => num(r.cached_tokens) },
    { label: 'Cost', num: true, render: (r) => usd(r.cost_usd) },
    { label: 'Mean latency', num: true, render: (r) => ms(r.mean_latency_ms) },
  ];
  return html`<section class="panel">
    <div class="page-head">
      <h2 style="margin:0">Usage by</h2>
      <${Segmented} label="Group usage by" options=${BY_OPTIONS} value=${by} onChange=${setBy} testidPrefix="summary-by-" />
    </div>
    <${ErrorBox} error=${summary.error} />
    <${Loading} when=${summary.loading && !summary.data} />
    ${summary.data &&
    html`<${Table} testid="summary-table" rowTestid="summary-row" columns=${columns}
      rows=${total ? [...rows, total] : rows} empty="No calls in this span."
      rowProps=${(r) => (r === total ? { class: 'total', 'data-testid': 'summary-total' } : {})} />`}
  </section>`;
}

export function Overview() {
  const [span, setSpan] = useState('24h');
  const [refresh, setRefresh] = useState(0);
  const series = useAsync(
    () => api('/usage/timeseries', { query: { since: since(span), bucket: SPANS[span][1] } }),
    [span, refresh],
  );
  return html`<div>
    <div class="page-head">
      <h1>Overview</h1>
      <${Segmented} label="Span" options=${SPAN_OPTIONS} value=${span} onChange=${setSpan} testidPrefix="span-" />
      <button type="button" data-testid="overview-refresh" onClick=${() => setRefresh((n) => n + 1)}>Refresh</button>
    </div>
    <${ErrorBox} error=${series.error} />
    <${Loading} when=${series.loading && !series.data} />
    ${series.data && html`<${Totals} totals=${series.data.totals} />`}
    ${series.data && html`<${Charts} series=${series.data.series || []} />`}
    <${Summary} key=${span + ':' + refresh} span=${span} />
  </div>`;
}
