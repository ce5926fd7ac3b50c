// Small building blocks shared by the dashboard's sections.
import { html, useState, useEffect, useCallback, useRef } from '../lib/html.js';

/** Runs `load` on mount and whenever `deps` change; `reload` runs it again. Late answers are dropped. */
export function useAsync(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const serial = useRef(0);
  const run = useCallback(() => {
    const mine = ++serial.current;
    setState((s) => ({ ...s, loading: true, error: null }));
    load().then(
      (data) => mine === serial.current && setState({ data, error: null, loading: false }),
      (error) => mine === serial.current && setState({ data: null, error, loading: false }),
    );
  }, deps);
  useEffect(run, [run]);
  return { ...state, reload: run };
}

export function ErrorBox({ error, testid = 'error' }) {
  if (!error) return null;
  const status = error.status ? `${error.status}: ` : '';
  return html`<div class="error" role="alert" data-testid=${testid}>${status}${error.message || String(error)}</div>`;
}

export function Loading({ when }) {
  return when ? html`<p class="muted" data-testid="loading">Loading…</p>` : null;
}

/**
 * A table that scrolls sideways on narrow screens.
 * columns: [{ label, render(row), num?, wrap? }]
 */
export function Table({ columns, rows, rowKey, testid, rowTestid, empty = 'Nothing here yet.', rowProps, after }) {
  return html`<div class="table-wrap">
    <table data-testid=${testid}>
      <thead><tr>${columns.map((c) => html`<th class=${c.num ? 'num' : ''}>${c.label}</th>`)}</tr></thead>
      <tbody>
        ${rows.length === 0 && html`<tr><td class="empty" colspan=${columns.length}>${empty}</td></tr>`}
        ${rows.map(
          (row, i) => html`<${TableRow} key=${rowKey ? rowKey(row) : i} row=${row} columns=${columns}
            testid=${rowTestid} extra=${rowProps ? rowProps(row) : {}} after=${after ? after(row) : null} />`,
        )}
      </tbody>
    </table>
  </div>`;
}

function TableRow({ row, columns, testid, extra, after }) {
  return html`<tr data-testid=${testid} ...${extra}>
      ${columns.map((c) => html`<td class=${(c.num ? 'num ' : '') + (c.wrap ? 'wrap' : '')}>${c.render(row)}</td>`)}
    </tr>
    ${after && html`<tr class="detail"><td colspan=${columns.length}>${after}</td></tr>`}`;
}

/** A modal dialog: Escape or the backdrop closes it. */
export function Dialog({ title, onClose, children, testid, wide }) {
  useEffect(() => {
    const onKey = (e) => e.key === 'Escape' && onClose();
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [onClose]);
  return html`<div class="overlay" onMouseDown=${(e) => e.target === e.currentTarget && onClose()}>
    <div class="dialog" role="dialog" aria-modal="true" aria-label=${title} data-testid=${testid}
      style=${wide ? 'max-width: 900px' : ''}>
      <h2>${title}</h2>
      ${children}
    </div>
  </div>`;
}

/** "Are you sure?" as a dialog with stable test ids: confirm-dialog, confirm-ok, confirm-cancel. */
export function Confirm({ title, message, action = 'Confirm', danger = true, onConfirm, onCancel }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return html`<${Dialog} title=${title} onClose=${onCancel} testid="confirm-dialog">
    <p>${message}</p>
    <${ErrorBox} error=${error} testid="confirm-error" />
    <div class="actions">
      <button type="button" data-testid="confirm-cancel" onClick=${onCancel}>Cancel</button>
      <button type="button" class=${danger ? 'primary danger-fill' : 'primary'} data-testid="confirm-ok"
        disabled=${busy} onClick=${go}>${busy ? 'Working…' : action}</button>
    </div>
  <//>`;
}

export function Field({ label, hint, children, id }) {
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${children}
    ${hint && html`<p class="hint">${hint}</p>`}
  </div>`;
}

export function Segmented({ options, value, onChange, testidPrefix, label }) {
  return html`<div class="segmented" role="group" aria-label=${label}>
    ${options.map(
      ([v, text]) => html`<button type="button" aria-pressed=${String(v === value)}
        data-testid=${testidPrefix + v} onClick=${() => onChange(v)}>${text}</button>`,
    )}
  </div>`;
}

export function Badge({ tone = '', children, testid }) {
  return html`<span class=${'badge ' + tone} data-testid=${testid}>${children}</span>`;
}

/** Re-renders every `seconds`, for countdowns. */
export function useTicker(seconds = 1) {
  const [, setTick] = useState(0);
  useEffect(() => {
    const id = setInterval(() => setTick((t) => t + 1), seconds * 1000);
    return () => clearInterval(id);
  }, [seconds]);
}

/** The value of a numeric input, or null when it is blank. */
export function numberOrNull(text) {
  const t = String(text ?? '').trim();
  if (t === '') return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : NaN;
}
