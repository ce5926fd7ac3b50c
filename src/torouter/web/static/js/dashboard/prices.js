// Prices: the table (USD per million tokens), with a filter; edit (PUT) and reset (DELETE).
import { html, useState, useEffect } from '../lib/html.js';
import { api, rowsOf, seg } from './api.js';
import { Badge, Confirm, Dialog, ErrorBox, Field, Loading, Table, numberOrNull, useAsync } from './ui.js';
import { time } from '../lib/format.js';

const FIELDS = [
  ['input', 'Input'],
  ['output', 'Output'],
  ['cache_read', 'Cache read'],
  ['cache_write', 'Cache write (5 min)'],
  ['cache_write_1h', 'Cache write (1 h)'],
];

const per = (v) => (v === null || v === undefined ? html`<span class="muted">–</span>` : `$${Number(v)}`);

function PriceForm({ price, onSubmit, onCancel }) {
  const isNew = !price;
  const [model, setModel] = useState('');
  const [values, setValues] = useState(Object.fromEntries(FIELDS.map(([f]) => [f, price?.[f] ?? ''])));
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function submit(e) {
    e.preventDefault();
    setError(null);
    const body = {};
    for (const [field, label] of FIELDS) {
      const v = numberOrNull(values[field]);
      if (Number.isNaN(v) || (v !== null && v < 0)) {
        setError(new Error(`${label} must be a number ≥ 0.`));
        return;
      }
      if (v !== null) body[field] = v;
    }
    if (isNew && (!model.trim() || body.input === undefined || body.output === undefined)) {
      setError(new Error('A new price needs a model id, an input price and an output price.'));
      return;
    }
    setBusy(true);
    try {
      await onSubmit(isNew ? model.trim() : price.model, body);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  return html`<form onSubmit=${submit} data-testid="price-form">
    ${isNew && html`<${Field} label="Model id" id="price-form-model">
      <input id="price-form-model" data-testid="price-form-model" value=${model} onInput=${(e) => setModel(e.currentTarget.value)} required />
    <//>`}
    <p class="hint">USD per million tokens. Blank leaves a price unset.</p>
    <div class="grid-2">
      ${FIELDS.map(([field, label]) => html`<${Field} label=${label} id=${'price-form-' + field}>
        <input id=${'price-form-' + field} data-testid=${'price-form-' + field} inputmode="decimal" value=${values[field]}
          onInput=${(e) => setValues({ ...values, [field]: e.currentTarget.value })} />
      <//>`)}
    </div>
    <${ErrorBox} error=${error} testid="form-error" />
    <div class="actions">
      <button type="button" onClick=${onCancel}>Cancel</button>
      <button type="submit" class="primary" data-testid="price-form-submit" disabled=${busy}>${busy ? 'Saving…' : 'Save'}</button>
    </div>
  </form>`;
}

export function Prices() {
  const [filter, setFilter] = useState('');
  const [applied, setApplied] = useState('');
  const [dialog, setDialog] = useState(null); // {kind: 'edit'|'new'|'reset', price?}
  useEffect(() => {
    const id = setTimeout(() => setApplied(filter.trim()), 250);
    return () => clearTimeout(id);
  }, [filter]);
  const prices = useAsync(() => api('/prices', { query: { model: applied } }), [applied]);
  const close = () => setDialog(null);
  const save = async (model, body) => {
    await api(`/prices/${seg(model)}`, { method: 'PUT', body });
    close();
    prices.reload();
  };

  const columns = [
    { label: 'Model', render: (p) => html`<code>${p.model}</code>` },
    ...FIELDS.map(([field, label]) => ({ label, num: true, render: (p) => per(p[field]) })),
    {
      label: 'Long context',
      render: (p) => (p.long_context ? `> ${Number(p.long_context.threshold).toLocaleString('en-US')} tokens: $${p.long_context.input} / $${p.long_context.output}` : html`<span class="muted">–</span>`),
    },
    {
      label: 'Source',
      render: (p) => html`<span title=${'updated ' + time(p.updated_at)}><${Badge} tone=${p.source === 'custom' ? 'info' : ''} testid="price-source">${p.source}<//></span>`,
    },
    {
      label: '',
      render: (p) => html`<div class="row actions">
        <button type="button" class="small" data-testid="edit-price" onClick=${() => setDialog({ kind: 'edit', price: p })}>Edit</button>
        <button type="button" class="small danger" data-testid="reset-price" disabled=${p.source !== 'custom'}
          title=${p.source === 'custom' ? 'Back to the shipped price' : 'Already the shipped price'}
          onClick=${() => setDialog({ kind: 'reset', price: p })}>Reset</button>
      </div>`,
    },
  ];

  return html`<div>
    <div class="page-head">
      <h1>Prices</h1>
      <span class="spacer"></span>
      <button type="button" class="primary" data-testid="new-price" onClick=${() => setDialog({ kind: 'new' })}>Add a price</button>
    </div>
    <div class="row" style="margin-bottom:10px">
      <input type="search" placeholder="Filter by model" aria-label="Filter prices by model" data-testid="prices-filter"
        value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)} />
      <span class="hint">USD per million tokens. A call is priced by the model that served it.</span>
    </div>
    <${ErrorBox} error=${prices.error} />
    <${Loading} when=${prices.loading && !prices.data} />
    ${prices.data && html`<${Table} testid="prices-table" rowTestid="price-row" columns=${columns} rows=${rowsOf(prices.data)}
      rowKey=${(p) => p.model} rowProps=${(p) => ({ 'data-model': p.model })} empty="No price matches." />`}
    ${dialog?.kind === 'edit' && html`<${Dialog} title=${`Price of ${dialog.price.model}`} onClose=${close} testid="edit-price-dialog">
      <${PriceForm} price=${dialog.price} onSubmit=${save} onCancel=${close} />
    <//>`}
    ${dialog?.kind === 'new' && html`<${Dialog} title="Add a price" onClose=${close} testid="new-price-dialog">
      <${PriceForm} onSubmit=${save} onCancel=${close} />
    <//>`}
    ${dialog?.kind === 'reset' && html`<${Confirm} title="Reset this price?" action="Reset"
      message=${`${dialog.price.model} goes back to the shipped price (or to no price if it has none).`}
      onCancel=${close}
      onConfirm=${async () => {
        await api(`/prices/${seg(dialog.price.model)}`, { method: 'DELETE' });
        close();
        prices.reload();
      }} />`}
  </div>`;
}
