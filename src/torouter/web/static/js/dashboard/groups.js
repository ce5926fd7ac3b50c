// Groups: the list, and each group's details (mapping, aliases, accounts, limits, spend).
import { html, useState } from '../lib/html.js';
import { api, rowsOf } from './api.js';
import { Badge, ErrorBox, Loading, Table, useAsync } from './ui.js';
import { time } from '../lib/format.js';
import { BudgetCell, limitsText } from './keys.js';

function Mapping({ value, empty }) {
  const entries = Object.entries(value || {});
  if (!entries.length) return html`<span class="muted">${empty}</span>`;
  return html`<table class="mapping">
    ${entries.map(([from, to]) => html`<tr><td><code>${from}</code></td><td>→ <code>${to}</code></td></tr>`)}
  </table>`;
}

function GroupDetails({ group }) {
  return html`<dl class="kv" data-testid="group-details">
    <dt>Platform</dt><dd>${group.platform}</dd>
    <dt>Upstream accounts</dt>
    <dd>${(group.upstreams || []).map((u, i) => html`${i ? ', ' : ''}<a href="#/upstreams">${u}</a>`)}</dd>
    <dt>Models</dt><dd><${Mapping} value=${group.models} empty="every id, as written" /></dd>
    <dt>Aliases</dt><dd><${Mapping} value=${group.aliases} empty="none" /></dd>
    <dt>Price multiplier</dt><dd>${group.price_multiplier ?? 1}</dd>
    <dt>Limits (shared by its keys)</dt><dd>${limitsText(group)}</dd>
    <dt>Budget</dt><dd><${BudgetCell} budget=${group.budget_usd} period=${group.budget_period} spent=${group.spent_usd} /></dd>
    <dt>Keys</dt><dd>${group.key_count ?? 0}</dd>
    <dt>Source</dt><dd>${group.source === 'config' ? 'config file (edit it there; it is synced at start-up)' : group.source}</dd>
    <dt>Created / updated</dt><dd>${time(group.created_at)} / ${time(group.updated_at)}</dd>
  </dl>`;
}

export function Groups() {
  const groups = useAsync(() => api('/groups'), []);
  const [open, setOpen] = useState(null);
  const columns = [
    { label: 'Name', render: (g) => html`<b>${g.name}</b>` },
    { label: 'Platform', render: (g) => g.platform },
    { label: 'Upstreams', wrap: true, render: (g) => (g.upstreams || []).join(', ') },
    { label: 'Models', render: (g) => (Object.keys(g.models || {}).length ? `${Object.keys(g.models).length} ${Object.keys(g.models).length === 1 ? 'id or pattern' : 'ids or patterns'}` : 'any') },
    { label: 'Keys', num: true, render: (g) => g.key_count ?? 0 },
    { label: 'Budget and spend', render: (g) => html`<${BudgetCell} budget=${g.budget_usd} period=${g.budget_period} spent=${g.spent_usd} />` },
    { label: 'Limits', render: limitsText },
    { label: 'Source', render: (g) => html`<${Badge} tone=${g.source === 'admin' ? 'info' : ''}>${g.source || 'config'}<//>` },
    {
      label: '',
      render: (g) => html`<button type="button" class="small" data-testid="group-details-toggle"
        aria-expanded=${String(open === g.name)} onClick=${() => setOpen(open === g.name ? null : g.name)}>
        ${open === g.name ? 'Hide' : 'Details'}</button>`,
    },
  ];
  return html`<div>
    <div class="page-head"><h1>Groups</h1></div>
    <p class="hint" style="margin-bottom:10px">A key's group picks the platform and the upstream accounts its calls go to.</p>
    <${ErrorBox} error=${groups.error} />
    <${Loading} when=${groups.loading && !groups.data} />
    ${groups.data && html`<${Table} testid="groups-table" rowTestid="group-row" columns=${columns} rows=${rowsOf(groups.data)}
      rowKey=${(g) => g.name} rowProps=${(g) => ({ 'data-group': g.name })}
      after=${(g) => (open === g.name ? html`<${GroupDetails} group=${g} />` : null)}
      empty="No groups. Declare them in the config file or with the admin API." />`}
  </div>`;
}
