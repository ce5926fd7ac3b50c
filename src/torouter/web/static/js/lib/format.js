// Number, money, time and duration formats shared by the dashboard and the Playground.

const DASH = '–';

export function num(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return DASH;
  return Number(n).toLocaleString('en-US');
}

export function compact(n) {
  if (n === null || n === undefined) return DASH;
  const v = Number(n);
  if (Math.abs(v) >= 1e9) return (v / 1e9).toFixed(1) + 'G';
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  return v.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

export function usd(n) {
  if (n === null || n === undefined) return DASH;
  const v = Number(n);
  const digits = v === 0 ? 2 : Math.abs(v) < 0.01 ? 6 : Math.abs(v) < 1 ? 4 : 2;
  return '$' + v.toFixed(digits);
}

export function ms(n) {
  if (n === null || n === undefined) return DASH;
  const v = Number(n);
  return v >= 1000 ? (v / 1000).toFixed(2) + ' s' : Math.round(v) + ' ms';
}

export function pct(x) {
  if (x === null || x === undefined || Number.isNaN(Number(x))) return DASH;
  return (Number(x) * 100).toFixed(1) + '%';
}

const pad = (n) => String(n).padStart(2, '0');

/** Unix seconds as local "YYYY-MM-DD HH:MM:SS". */
export function time(t) {
  if (!t) return DASH;
  const d = new Date(Number(t) * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Seconds as "3d 4h", "2h 5m", "4m 12s" or "9s". */
export function duration(seconds) {
  let s = Math.max(0, Math.round(Number(seconds) || 0));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

export const now = () => Date.now() / 1000;
