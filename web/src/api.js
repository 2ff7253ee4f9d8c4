// The admin API from the page: the session cookie authenticates (the key
// never reaches the page's storage), and every change carries the
// session's CSRF token, which the edge checks.

let csrfToken = null;
let onSignedOut = () => {};

export function setSession(token, signedOut) {
  csrfToken = token;
  if (signedOut) onSignedOut = signedOut;
}

// An error answer of the API (the SPEC's shape), or of the network.
export class ApiError extends Error {
  constructor(status, body, fallback) {
    const e = (body && body.error) || {};
    super(e.message || fallback || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || null;
    this.type = e.type || null;
    this.param = e.param || null;
    this.requestId = e.request_id || null;
  }
}

async function call(url, { method = 'GET', body } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['x-csrf-token'] = csrfToken;
  let res;
  try {
    res = await fetch(url, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, null, `The gateway did not answer (${err.message}).`);
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) {
    const err = new ApiError(res.status, json, text.slice(0, 200));
    if (!err.requestId) err.requestId = res.headers.get('x-request-id');
    if (res.status === 401 && url.startsWith('/api/')) onSignedOut(err);
    throw err;
  }
  return json;
}

// An admin API call: api('GET', 'keys?limit=50'), api('POST', 'keys', {...}).
export function api(method, path, body) {
  return call(`/api/v1/admin/${path}`, { method, body });
}

export const session = {
  current: () => call('/dashboard/api/session'),
  login: (key) => call('/dashboard/api/login', { method: 'POST', body: { key } }),
  logout: () => call('/dashboard/api/logout', { method: 'POST', body: {} }),
};

// Every page of a list (next_cursor), up to MAX items.
export async function all(path, max = 1000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api('GET', `${path}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''}`);
    items.push(...(page.data || []));
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

export function query(params) {
  const q = Object.entries(params).filter(([, v]) => v !== '' && v !== null && v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return q ? `?${q}` : '';
}
