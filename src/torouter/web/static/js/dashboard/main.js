// The dashboard's shell: the login, the navigation and a hash router (#/keys, #/usage, …).
import { html, render, useState, useEffect } from '../lib/html.js';
import { api, errorMessage, getToken, setToken, clearToken, onUnauthorized } from './api.js';
import { Overview } from './overview.js';
import { Keys } from './keys.js';
import { Groups } from './groups.js';
import { Upstreams } from './upstreams.js';
import { UsageLog } from './usage-log.js';
import { Prices } from './prices.js';

const SECTIONS = [
  ['overview', 'Overview', Overview],
  ['keys', 'Keys', Keys],
  ['groups', 'Groups', Groups],
  ['upstreams', 'Upstream accounts', Upstreams],
  ['usage', 'Usage log', UsageLog],
  ['prices', 'Prices', Prices],
];

function currentSection() {
  const name = location.hash.replace(/^#\/?/, '').split('?')[0];
  return SECTIONS.some(([id]) => id === name) ? name : 'overview';
}

function useSection() {
  const [section, setSection] = useState(currentSection());
  useEffect(() => {
    const update = () => setSection(currentSection());
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return section;
}

function Login({ message, onSignedIn }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function submit(event) {
    event.preventDefault();
    const token = value.trim();
    if (!token) {
      setError('Enter the admin token.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      await api('/groups', { token });
      onSignedIn(token);
    } catch (err) {
      if (err.status === 401) setError('That token was refused (401 Unauthorized). Check the admin_token setting.');
      else if (err.status === 403) setError(errorMessage(err.body, 'The admin API is turned off (403).'));
      else if (err.status === 404) setError('This gateway has no admin API (404).');
      else setError(err.message);
    } finally {
      setBusy(false);
    }
  }

  return html`<main class="login">
    <form id="login-form" data-testid="login-form" onSubmit=${submit}>
      <h1>ToRouter dashboard</h1>
      ${message && html`<p class="notice" role="status" data-testid="login-message">${message}</p>`}
      <div class="field">
        <label for="admin-token">Admin token</label>
        <input id="admin-token" name="token" type="password" autocomplete="current-password"
          data-testid="admin-token-input" value=${value} onInput=${(e) => setValue(e.currentTarget.value)} autofocus />
        <p class="hint">The <code>admin_token</code> setting (or <code>TOROUTER_ADMIN_TOKEN</code>). It is kept in this
          tab only, and forgotten when the tab closes.</p>
      </div>
      ${error && html`<p class="error" role="alert" data-testid="login-error">${error}</p>`}
      <button type="submit" class="primary" id="login-submit" data-testid="login-submit" disabled=${busy}>
        ${busy ? 'Checking…' : 'Sign in'}
      </button>
    </form>
  </main>`;
}

function App() {
  const [token, setTokenState] = useState(getToken());
  const [message, setMessage] = useState('');
  const section = useSection();

  useEffect(() => {
    onUnauthorized((text) => {
      setMessage(text);
      setTokenState('');
    });
  }, []);

  if (!token) {
    return html`<${Login} message=${message} onSignedIn=${(t) => {
      setToken(t);
      setMessage('');
      setTokenState(t);
    }} />`;
  }

  const signOut = () => {
    clearToken();
    setMessage('Signed out.');
    setTokenState('');
  };
  const Section = SECTIONS.find(([id]) => id === section)[2];
  return html`<div class="shell">
    <nav class="sidebar" aria-label="Sections" data-testid="nav">
      <div class="brand">ToRouter</div>
      ${SECTIONS.map(
        ([id, label]) => html`<a href=${'#/' + id} id=${'nav-' + id} data-testid=${'nav-' + id}
          class=${id === section ? 'active' : ''} aria-current=${id === section ? 'page' : undefined}>${label}</a>`,
      )}
      <div class="bottom">
        <a href="/playground" data-testid="nav-playground">Playground</a>
        <button type="button" class="link" data-testid="sign-out" onClick=${signOut}>Sign out</button>
      </div>
    </nav>
    <main class="content" data-testid=${'section-' + section}>
      <${Section} key=${section} />
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
