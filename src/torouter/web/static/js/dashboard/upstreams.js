// Upstream accounts: health, recent errors, a connection test, enable and disable.
import { html, useState } from '../lib/html.js';
import { api, rowsOf, seg } from './api.js';
import { Badge, Confirm, ErrorBox, Loading, Table, useAsync, useTicker } from './ui.js';
import { duration, ms, time } from '../lib/format.js';

const TONES = { healthy: 'ok', cooldown: 'warn', disabled: 'bad' };

function Health({ u }) {
  useTicker(1);
  const left = u.cooldown_until ? u.cooldown_until - Date.now() / 1000 : 0;
  const health = u.health === 'cooldown' && left <= 0 ? 'healthy' : u.health;
  return html`<div>
    <${Badge} tone=${TONES[health] || ''} testid="upstream-health">${health || 'unknown'}<//>
    ${health === 'cooldown' && html`<div class="hint" data-testid="cooldown-remaining">back in ${duration(left)}</div>`}
    ${u.status_reason && health !== 'healthy' && html`<div class="hint">${u.status_reason}</div>`}
  </div>`;
}

function TestResult({ result }) {
  if (!result) return null;
  if (result.pending) return html`<span class="muted" data-testid="test-result">Testing…</span>`;
  if (result.error && !('ok' in result)) {
    return html`<span class="badge bad" data-testid="test-result" data-ok="false">${result.error}</span>`;
  }
  return html`<div data-testid="test-result" data-ok=${String(Boolean(result.ok))}>
    <${Badge} tone=${result.ok ? 'ok' : 'bad'}>${result.ok ? 'ok' : 'failed'}<//>
    <span class="hint"> ${result.status ? `HTTP ${result.status} · ` : ''}${ms(result.latency_ms)}
    ${result.ok && Array.isArray(result.models) ? ` · ${result.models.length} models` : ''}</span>
    ${result.error && html`<div class="hint" style="color:var(--bad);white-space:normal">${result.error}</div>`}
  </div>`;
}

function RecentErrors({ name }) {
  const detail = useAsync(() => api(`/upstreams/${seg(name)}`), [name]);
  const errors = detail.data?.recent_errors || [];
  const columns = [
    { label: 'Time', render: (e) => time(e.created_at) },
    { label: 'Status', render: (e) => e.status },
    { label: 'Error', wrap: true, render: (e) => e.error },
    { label: 'Model', render: (e) => e.model },
    { label: 'Request id', render: (e) => html`<code>${e.request_id}</code>` },
  ];
  return html`<div data-testid="upstream-details">
    <h3 style="margin-top:4px">Recent errors of ${name}</h3>
    <${ErrorBox} error=${detail.error} />
    <${Loading} when=${detail.loading} />
    ${detail.data && html`<${Table} testid="upstream-errors" rowTestid="upstream-error-row" columns=${columns}
      rows=${errors} empty="No failed calls or attempts recorded." />`}
  </div>`;
}

export function Upstreams() {
  const list = useAsync(() => api('/upstreams'), []);
  const [open, setOpen] = useState(null);
  const [tests, setTests] = useState({});
  const [confirm, setConfirm] = useState(null);
  const [error, setError] = useState(null);

  async function test(name) {
    setTests((t) => ({ ...t, [name]: { pending: true } }));
    try {
      const result = await api(`/upstreams/${seg(name)}/test`, { method: 'POST' });
      setTests((t) => ({ ...t, [name]: result }));
    } catch (err) {
      setTests((t) => ({ ...t, [name]: { error: `${err.status || ''} ${err.message}`.trim() } }));
    }
  }

  async function setEnabled(name, enabled) {
    setError(null);
    await api(`/upstreams/${seg(name)}/${enabled ? 'enable' : 'disable'}`, { method: 'POST' });
    list.reload();
  }

  const columns = [
    { label: 'Account', render: (u) => html`<b>${u.name}</b><div class="hint">${u.platform}</div>` },
    { label: 'Health', render: (u) => html`<${Health} u=${u} />` },
    {
      label: 'Base URL',
      wrap: true,
      render: (u) => html`<code>${u.base_url}</code>${!u.has_api_key && html`<div><span class="badge warn">no credential</span></div>`}`,
    },
    { label: 'Priority / weight', render: (u) => `${u.priority ?? 0} / ${u.weight ?? 1}` },
    { label: 'Test', wrap: true, render: (u) => html`<${TestResult} result=${tests[u.name]} />` },
    {
      label: '',
      render: (u) => html`<div class="row actions">
        <button type="button" class="small" data-testid="test-upstream" id=${'test-upstream-' + u.name}
          disabled=${tests[u.name]?.pending} onClick=${() => test(u.name)}>Test connection</button>
        <button type="button" class="small" data-testid="upstream-details-toggle" aria-expanded=${String(open === u.name)}
          onClick=${() => setOpen(open === u.name ? null : u.name)}>${open === u.name ? 'Hide errors' : 'Recent errors'}</button>
        ${u.health === 'disabled' || u.status === 'disabled'
          ? html`<button type="button" class="small" data-testid="enable-upstream"
              onClick=${() => setEnabled(u.name, true).catch(setError)}>Enable</button>`
          : html`<button type="button" class="small danger" data-testid="disable-upstream"
              onClick=${() => setConfirm(u.name)}>Disable</button>`}
      </div>`,
    },
  ];

  return html`<div>
    <div class="page-head">
      <h1>Upstream accounts</h1>
      <button type="button" data-testid="upstreams-refresh" onClick=${list.reload}>Refresh</button>
    </div>
    <${ErrorBox} error=${list.error || error} />
    <${Loading} when=${list.loading && !list.data} />
    ${list.data && html`<${Table} testid="upstreams-table" rowTestid="upstream-row" columns=${columns}
      rows=${rowsOf(list.data)} rowKey=${(u) => u.name} rowProps=${(u) => ({ 'data-upstream': u.name })}
      after=${(u) => (open === u.name ? html`<${RecentErrors} name=${u.name} />` : null)}
      empty="No upstream accounts." />`}
    ${confirm && html`<${Confirm} title="Disable this account?" action="Disable"
      message=${`${confirm} stops taking calls until it is enabled again. Its groups fail over to their other accounts.`}
      onCancel=${() => setConfirm(null)}
      onConfirm=${async () => {
        await setEnabled(confirm, false);
        setConfirm(null);
      }} />`}
  </div>`;
}
