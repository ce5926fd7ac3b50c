// API keys the Playground may use, kept in this browser's localStorage.
// The dashboard adds a new key here with "Use in Playground"; the Playground adds pasted keys.

const LIST = 'torouter.playground.keys';
const SELECTED = 'torouter.playground.selected';

export function maskKey(key) {
  if (!key) return '';
  if (key.length <= 12) return key.slice(0, 3) + '…';
  return key.slice(0, 8) + '…' + key.slice(-4);
}

export function savedKeys() {
  try {
    const list = JSON.parse(localStorage.getItem(LIST) || '[]');
    return Array.isArray(list) ? list.filter((k) => k && typeof k.key === 'string' && k.key) : [];
  } catch {
    return [];
  }
}

export function saveKey(key, label) {
  const list = savedKeys().filter((k) => k.key !== key);
  list.unshift({ key, label: label || maskKey(key), saved_at: Math.floor(Date.now() / 1000) });
  localStorage.setItem(LIST, JSON.stringify(list.slice(0, 50)));
  localStorage.setItem(SELECTED, key);
}

export function forgetKey(key) {
  localStorage.setItem(LIST, JSON.stringify(savedKeys().filter((k) => k.key !== key)));
  if (localStorage.getItem(SELECTED) === key) localStorage.removeItem(SELECTED);
}

export function selectedKey() {
  const chosen = localStorage.getItem(SELECTED);
  const list = savedKeys();
  return list.find((k) => k.key === chosen)?.key || list[0]?.key || '';
}

export function selectKey(key) {
  localStorage.setItem(SELECTED, key);
}
