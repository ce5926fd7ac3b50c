// Calls to the admin API (/admin/api) with the admin token from this tab's sessionStorage.

const TOKEN = 'torouter.adminToken';

export const getToken = () => sessionStorage.getItem(TOKEN) || '';
export const setToken = (token) => sessionStorage.setItem(TOKEN, token);
export const clearToken = () => sessionStorage.removeItem(TOKEN);

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

let unauthorized = () => {};

/** The app shows the login again when any call gets a 401. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/** The readable message of an error body: the admin API's `detail` (a string, or 422's list), or a vendor error. */
export function errorMessage(body, fallback) {
  if (body === null || body === undefined || body === '') return fallback;
  if (typeof body === 'string') return body.slice(0, 500);
  const detail = body.detail ?? body.error?.message ?? body.message;
  if (Array.isArray(detail)) {
    return detail
      .map((e) => {
        const where = (e.loc || []).filter((p) => p !== 'body').join('.');
        return where ? `${where}: ${e.msg}` : e.msg;
      })
      .join('\n');
  }
  if (typeof detail === 'string') return detail;
  return fallback;
}

export const seg = (value) => encodeURIComponent(String(value));

/** One admin call; answers the parsed JSON, or throws an ApiError with the status and message. */
export async function api(path, { method = 'GET', body, query, token } = {}) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  }
  const url = '/admin/api' + path + (params.toString() ? '?' + params : '');
  const headers = { Authorization: 'Bearer ' + (token ?? getToken()) };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, `The gateway did not answer (${err.message}).`);
  }
  const text = await res.text();
  let data = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text for the message
  }
  if (!res.ok) {
    const error = new ApiError(res.status, errorMessage(data, `${res.status} ${res.statusText}`), data);
    if (res.status === 401 && token === undefined) {
      clearToken();
      unauthorized('The admin token was refused (401 Unauthorized). Sign in again with a valid token.');
    }
    throw error;
  }
  return data;
}

/** The rows of a list answer: `{"data": [...]}` (or `rows`, or a bare list). */
export const rowsOf = (answer) =>
  Array.isArray(answer) ? answer : answer?.data ?? answer?.rows ?? [];
