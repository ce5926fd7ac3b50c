// Keys: list, create (the full key shown once), edit limits and budget, revoke.
import { html, useState } from '../lib/html.js';
import { api, rowsOf, seg } from './api.js';
import { Badge, Confirm, Dialog, ErrorBox, Field, Loading, Table, numberOrNull, useAsync } from './ui.js';
import { compact, time, usd } from '../lib/format.js';
import { copyText } from '../lib/clipboard.js';
import { saveKey } from '../lib/saved-keys.js';

const PERIODS = [['', 'no period (never resets)'], ['daily', 'daily'], ['weekly', 'weekly'], ['monthly', 'monthly']];

export function limitsText(k) {
  const parts = [];
  if (k.rpm) parts.push(`${compact(k.rpm)} rpm`);
  if (k.tpm) parts.push(`${compact(k.tpm)} tpm`);
  if (k.max_concurrency) parts.push(`${k.max_concurrency} in flight`);
  return parts.length ? parts.join(' · ') : 'none';
}

export function BudgetCell({ budget, period, spent }) {
  if (!budget) return html`<span>${usd(spent || 0)} spent</span><div class="hint">no budget</div>`;
  const share = Math.min(1, (spent || 0) / budget);
  return html`<span>${usd(spent || 0)} of ${usd(budget)}</span>
    <div class="hint">${period || 'total'}</div>
    <div class=${'bar' + (share >= 1 ? ' over' : '')}><span style=${`width:${(share * 100).toFixed(1)}%`}></span></div>`;
}

function statusBadge(k) {
  const expired = k.expires_at && k.expires_at * 1000 < Date.now();
  const status = k.revoked_at ? 'revoked' : expired && k.status === 'active' ? 'expired' : k.status;
  const tone = status === 'active' ? 'ok' : status === 'revoked' ? 'bad' : 'warn';
  return html`<${Badge} tone=${tone} testid="key-status">${status}<//>`;
}

/** The form of a key's settings; `initial` is the Key when editing. Answers the body to send. */
function KeyForm({ groups, initial, submitLabel, onSubmit, onCancel }) {
  const editing = Boolean(initial);
  const [f, setF] = useState({
    group: initial?.group ?? groups[0]?.name ?? '',
    name: initial?.name ?? '',
    budget: initial?.budget_usd ?? '',
    period: initial?.budget_period ?? '',
    rpm: initial?.rpm || '',
    tpm: initial?.tpm || '',
    conc: initial?.max_concurrency || '',
    expires: '',
    clearExpiry: false,
    models: (initial?.models || []).join(', '),
  });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (name) => (e) => setF({ ...f, [name]: e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value });

  function body() {
    const out = {};
    const problems = [];
    const number = (text, label, integer) => {
      const v = numberOrNull(text);
      if (Number.isNaN(v) || (v !== null && (v < 0 || (integer && !Number.isInteger(v))))) {
        problems.push(`${label} must be a ${integer ? 'whole ' : ''}number ≥ 0.`);
      }
      return v;
    };
    const budget = number(f.budget, 'Budget', false);
    const limits = { rpm: number(f.rpm, 'RPM', true), tpm: number(f.tpm, 'TPM', true), max_concurrency: number(f.conc, 'Max concurrency', true) };
    if (problems.length) throw new Error(problems.join('\n'));
    const models = f.models.split(/[\s,]+/).filter(Boolean);
    if (!editing) {
      out.group = f.group;
      if (f.name.trim()) out.name = f.name.trim();
      if (budget !== null) out.budget_usd = budget;
      if (budget !== null && f.period) out.budget_period = f.period;
      for (const [k, v] of Object.entries(limits)) if (v) out[k] = v;
      if (f.expires.trim()) out.expires_in = /^\d+$/.test(f.expires.trim()) ? Number(f.expires.trim()) : f.expires.trim();
      if (models.length) out.models = models;
      return out;
    }
    // PATCH: only what changed. null clears the budget and expiry, 0 a limit, [] the models.
    if (f.group !== initial.group) out.group = f.group;
    if (f.name.trim() !== (initial.name || '')) out.name = f.name.trim();
    if (budget !== (initial.budget_usd ?? null)) out.budget_usd = budget;
    const period = budget === null ? null : f.period || null;
    if (period !== (initial.budget_period ?? null)) out.budget_period = period;
    for (const [k, v] of Object.entries(limits)) if ((v || 0) !== (initial[k] || 0)) out[k] = v || 0;
    if (f.clearExpiry) out.expires_at = null;
    else if (f.expires.trim()) out.expires_in = /^\d+$/.test(f.expires.trim()) ? Number(f.expires.trim()) : f.expires.trim();
    if (models.join(',') !== (initial.models || []).join(',')) out.models = models;
    return out;
  }

  async function submit(e) {
    e.preventDefault();
    setError(null);
    let payload;
    try {
      payload = body();
    } catch (err) {
      setError(err);
      return;
    }
    setBusy(true);
    try {
      await onSubmit(payload);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  return html`<form onSubmit=${submit} data-testid=${editing ? 'edit-key-form' : 'create-key-form'}>
    <div class="grid-2">
      <${Field} label="Group" id="key-form-group">
        <select id="key-form-group" data-testid="key-form-group" value=${f.group} onChange=${set('group')} required>
          ${groups.map((g) => html`<option value=${g.name}>${g.name} (${g.platform})</option>`)}
        </select>
      <//>
      <${Field} label="Name" id="key-form-name">
        <input id="key-form-name" data-testid="key-form-name" value=${f.name} onInput=${set('name')} placeholder="alice" />
      <//>
      <${Field} label="Budget (USD)" id="key-form-budget" hint="Blank: no budget.">
        <input id="key-form-budget" data-testid="key-form-budget" inputmode="decimal" value=${f.budget} onInput=${set('budget')} />
      <//>
      <${Field} label="Budget period" id="key-form-budget-period" hint="UTC: from midnight, Monday or the 1st.">
        <select id="key-form-budget-period" data-testid="key-form-budget-period" value=${f.period} onChange=${set('period')}>
          ${PERIODS.map(([v, t]) => html`<option value=${v}>${t}</option>`)}
        </select>
      <//>
      <${Field} label="Requests per minute" id="key-form-rpm" hint="Blank or 0: no limit.">
        <input id="key-form-rpm" data-testid="key-form-rpm" inputmode="numeric" value=${f.rpm} onInput=${set('rpm')} />
      <//>
      <${Field} label="Tokens per minute" id="key-form-tpm" hint="Blank or 0: no limit.">
        <input id="key-form-tpm" data-testid="key-form-tpm" inputmode="numeric" value=${f.tpm} onInput=${set('tpm')} />
      <//>
      <${Field} label="Max concurrency" id="key-form-max-concurrency" hint="Calls in flight. Blank or 0: no limit.">
        <input id="key-form-max-concurrency" data-testid="key-form-max-concurrency" inputmode="numeric" value=${f.conc} onInput=${set('conc')} />
      <//>
      <${Field} label=${editing ? 'New expiry' : 'Expires in'} id="key-form-expires-in"
        hint=${editing ? `Now: ${initial.expires_at ? time(initial.expires_at) : 'never'}. 30d, 12h or seconds from now; blank keeps it.` : '30d, 12h or seconds. Blank: never.'}>
        <input id="key-form-expires-in" data-testid="key-form-expires-in" value=${f.expires} onInput=${set('expires')}
          placeholder="30d" disabled=${f.clearExpiry} />
        ${editing && html`<label class="inline"><input type="checkbox" data-testid="key-form-clear-expiry"
          checked=${f.clearExpiry} onChange=${set('clearExpiry')} /> Never expires</label>`}
      <//>
    </div>
    <${Field} label="Models" id="key-form-models" hint="Comma-separated ids the key may use (wildcards allowed). Blank: every model of the group.">
      <input id="key-form-models" data-testid="key-form-models" value=${f.models} onInput=${set('models')} placeholder="gpt-4o-mini, claude-*" />
    <//>
    <${ErrorBox} error=${error} testid="form-error" />
    <div class="actions">
      <button type="button" data-testid="key-form-cancel" onClick=${onCancel}>Cancel</button>
      <button type="submit" class="primary" data-testid="key-form-submit" disabled=${busy || !f.group}>
        ${busy ? 'Saving…' : submitLabel}
      </button>
    </div>
  </form>`;
}

function NewKeyDialog({ created, onClose }) {
  const [copied, setCopied] = useState('');
  const [saved, setSaved] = useState(false);
  const copy = async () => setCopied((await copyText(created.key)) ? 'Copied.' : 'Copy failed: select the key and copy it by hand.');
  const useInPlayground = () => {
    saveKey(created.key, `${created.name || created.prefix} (${created.group})`);
    setSaved(true);
  };
  return html`<${Dialog} title="New key" onClose=${onClose} testid="new-key-dialog">
    <p class="notice">This is the only time the full key is shown. Copy it now: ToRouter keeps only its hash.</p>
    <code class="secret" id="new-key-value" data-testid="new-key-value">${created.key}</code>
    <p class="hint">Name <b>${created.name || '(none)'}</b>, group <b>${created.group}</b>, prefix <code>${created.prefix}</code>.</p>
    ${copied && html`<p class="hint" role="status" data-testid="copy-status">${copied}</p>`}
    ${saved && html`<p class="success" data-testid="saved-for-playground">Saved in this browser for the Playground.${' '}
      <a href="/playground" target="_blank" rel="noopener" data-testid="open-playground">Open the Playground</a></p>`}
    <div class="actions">
      <button type="button" data-testid="use-in-playground" onClick=${useInPlayground} disabled=${saved}>Use in Playground</button>
      <button type="button" id="copy-key" data-testid="copy-key" onClick=${copy}>Copy</button>
      <button type="button" class="primary" data-testid="new-key-close" onClick=${onClose}>Done</button>
    </div>
  <//>`;
}

export function Keys() {
  const keys = useAsync(() => api('/keys'), []);
  const groups = useAsync(() => api('/groups'), []);
  const [filter, setFilter] = useState('');
  const [hideRevoked, setHideRevoked] = useState(false);
  const [dialog, setDialog] = useState(null); // {kind: 'create'|'edit'|'revoke'|'created', key?}

  const groupList = rowsOf(groups.data);
  const needle = filter.trim().toLowerCase();
  const rows = rowsOf(keys.data).filter(
    (k) =>
      (!hideRevoked || !k.revoked_at) &&
      (!needle || [k.name, k.prefix, k.group].some((v) => String(v || '').toLowerCase().includes(needle))),
  );
  const close = () => setDialog(null);

  const columns = [
    { label: 'Key', render: (k) => html`<b>${k.name || '(no name)'}</b><div><code class="muted">${k.prefix}…</code></div>` },
    { label: 'Group', render: (k) => k.group },
    { label: 'Status', render: statusBadge },
    { label: 'Budget and spend', render: (k) => html`<${BudgetCell} budget=${k.budget_usd} period=${k.budget_period} spent=${k.spent_usd} />` },
    { label: 'Limits', render: limitsText },
    { label: 'Models', wrap: true, render: (k) => (k.models?.length ? k.models.join(', ') : html`<span class="muted">all of the group's</span>`) },
    {
      label: 'Expires',
      render: (k) => (k.expires_at ? html`<span title=${time(k.expires_at)}>${time(k.expires_at).slice(0, 10)}</span>` : html`<span class="muted">never</span>`),
    },
    {
      label: '',
      render: (k) => html`<div class="row actions">
        <button type="button" class="small" data-testid="edit-key" id=${'edit-key-' + k.id}
          disabled=${Boolean(k.revoked_at)} onClick=${() => setDialog({ kind: 'edit', key: k })}>Edit</button>
        <button type="button" class="small danger" data-testid="revoke-key" id=${'revoke-key-' + k.id}
          disabled=${Boolean(k.revoked_at)} onClick=${() => setDialog({ kind: 'revoke', key: k })}>Revoke</button>
      </div>`,
    },
  ];

  return html`<div>
    <div class="page-head">
      <h1>Keys</h1>
      <span class="spacer"></span>
      <button type="button" class="primary" id="create-key" data-testid="create-key-button"
        disabled=${!groupList.length} onClick=${() => setDialog({ kind: 'create' })}>Create key</button>
    </div>
    <div class="row" style="margin-bottom:10px">
      <input type="search" placeholder="Filter by name, prefix or group" aria-label="Filter keys"
        data-testid="keys-filter" value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)} />
      <label class="inline"><input type="checkbox" data-testid="keys-hide-revoked" checked=${hideRevoked}
        onChange=${(e) => setHideRevoked(e.currentTarget.checked)} /> Hide revoked</label>
    </div>
    <${ErrorBox} error=${keys.error || groups.error} />
    <${Loading} when=${keys.loading && !keys.data} />
    ${keys.data && html`<${Table} testid="keys-table" rowTestid="key-row" columns=${columns} rows=${rows}
      rowKey=${(k) => k.id} rowProps=${(k) => ({ 'data-key-id': k.id, 'data-key-name': k.name || '' })}
      empty="No keys. Create one for each person or app." />`}

    ${dialog?.kind === 'create' && html`<${Dialog} title="Create a key" onClose=${close} testid="create-key-dialog">
      <${KeyForm} groups=${groupList} submitLabel="Create key" onCancel=${close}
        onSubmit=${async (body) => {
          const created = await api('/keys', { method: 'POST', body });
          setDialog({ kind: 'created', created });
          keys.reload();
        }} />
    <//>`}
    ${dialog?.kind === 'created' && html`<${NewKeyDialog} created=${dialog.created} onClose=${close} />`}
    ${dialog?.kind === 'edit' && html`<${Dialog} title=${`Edit key ${dialog.key.name || dialog.key.prefix}`} onClose=${close} testid="edit-key-dialog">
      <${KeyForm} groups=${groupList} initial=${dialog.key} submitLabel="Save" onCancel=${close}
        onSubmit=${async (body) => {
          if (Object.keys(body).length) await api(`/keys/${seg(dialog.key.id)}`, { method: 'PATCH', body });
          close();
          keys.reload();
        }} />
    <//>`}
    ${dialog?.kind === 'revoke' && html`<${Confirm} title="Revoke this key?" action="Revoke"
      message=${`Key ${dialog.key.name || '(no name)'} (${dialog.key.prefix}) stops working within 2 seconds. This cannot be undone.`}
      onCancel=${close}
      onConfirm=${async () => {
        await api(`/keys/${seg(dialog.key.id)}/revoke`, { method: 'POST' });
        close();
        keys.reload();
      }} />`}
  </div>`;
}
