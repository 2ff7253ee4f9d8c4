// The dashboard's shell: sign-in, navigation by the URL's #fragment, and
// the pages the signed-in role may see.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, session, setSession } from './api.js';
import { ErrorBox, Field, Loading } from './ui.jsx';
import {
  Audit, Cache, Guardrails, Health, Keys, Limits, Models, Overview, Tenants, Usage,
} from './pages.jsx';

const PAGES = [
  { id: 'overview', title: 'Overview', perm: 'usage:read', page: Overview },
  { id: 'keys', title: 'Keys', perm: 'keys:read', page: Keys },
  { id: 'tenants', title: 'Tenants', perm: 'tenants:read', page: Tenants },
  { id: 'limits', title: 'Rate limits', perm: null, page: Limits },
  { id: 'usage', title: 'Usage', perm: 'usage:read', page: Usage },
  { id: 'health', title: 'Health', perm: 'router:read', page: Health },
  { id: 'models', title: 'Models', perm: 'models:read', page: Models },
  { id: 'guardrails', title: 'Guardrails', perm: 'guardrails:read', page: Guardrails },
  { id: 'cache', title: 'Cache', perm: 'cache:read', page: Cache },
  { id: 'audit', title: 'Audit log', perm: 'audit:read', page: Audit },
];

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, '');
  const [id, q] = raw.split('?');
  return { id: id || '', params: new URLSearchParams(q || '') };
}

function SignIn({ onSignedIn, notice, ended }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true); setError(null);
    try {
      const r = await session.login(key);
      setKey('');
      onSignedIn(r);
    } catch (err) { setError(err); }
    setBusy(false);
  };
  return (
    <main class="signin">
      <form onSubmit={submit} aria-label="Sign in">
        <h1>aigw</h1>
        <p>Sign in with an API key or an admin token. It is exchanged for a session; the page never stores it.</p>
        {notice && <p class="notice" role="status">{notice}</p>}
        {ended && ended.status && <ErrorBox error={ended} title="Signed out" />}
        <Field label="API key or admin token">
          <input type="password" autocomplete="off" required value={key} onInput={(e) => setKey(e.target.value)} />
        </Field>
        <button type="submit" class="primary" disabled={busy}>Sign in</button>
        <ErrorBox error={error} title="Sign-in failed" />
      </form>
    </main>
  );
}

function App() {
  const [me, setMe] = useState(undefined);  // undefined: finding out; null: signed out
  const [notice, setNotice] = useState(null);
  const [ended, setEnded] = useState(null);  // the API's 401 that ended the session
  const [route, setRoute] = useState(parseHash());
  const [menu, setMenu] = useState(false);

  // WHY: the API's 401 (the key was revoked or expired, or the session
  // ended). The edge's session would go on holding a key that no longer
  // works: end it too (logout reads the CSRF token before it is cleared).
  const signedOut = (why) => {
    if (why) session.logout().catch(() => {});
    setSession(null);
    setMe(null);
    setEnded(why || null);
    if (why) setNotice('Your session ended; sign in again.');
  };
  useEffect(() => {
    setSession(null, signedOut);
    (async () => {
      try {
        const s = await session.current();
        setSession(s.csrf_token);
        setMe(await api('GET', 'auth/me'));
      } catch { setMe(null); }
    })();
    const onHash = () => { setRoute(parseHash()); setMenu(false); };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  if (me === undefined) return <Loading what="Loading the dashboard" />;
  if (me === null) {
    return <SignIn notice={notice} ended={ended}
      onSignedIn={(r) => { setSession(r.csrf_token); setNotice(null); setEnded(null); setMe(r.me); }} />;
  }
  const perms = me.permissions || [];
  const can = (p) => perms.includes('*') || perms.includes(p);
  const pages = PAGES.filter((p) => !p.perm || can(p.perm));
  const current = pages.find((p) => p.id === route.id) || pages[0];
  const go = (to) => { window.location.hash = `#/${to}`; };
  const logout = async () => {
    try { await session.logout(); } catch { /* the cookie is cleared either way */ }
    signedOut();
  };
  const Page = current.page;
  return (
    <div class="app">
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <strong class="brand">aigw</strong>
        <button type="button" class="menu" aria-expanded={menu} aria-controls="nav" onClick={() => setMenu(!menu)}>Menu</button>
        <span class="who-top">{me.principal.name || me.principal.id} · {me.role}{me.tenant.id !== '*' ? ` · ${me.tenant.name || me.tenant.id}` : ''}</span>
        <button type="button" onClick={logout}>Sign out</button>
      </header>
      <nav id="nav" class={menu ? 'open' : ''} aria-label="Pages">
        <ul>
          {pages.map((p) => (
            <li><a href={`#/${p.id}`} aria-current={p === current ? 'page' : undefined}>{p.title}</a></li>
          ))}
        </ul>
      </nav>
      <main id="main" tabIndex={-1}>
        <Page key={`${current.id}?${route.params}`} me={me} can={can} go={go} params={route.params} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app'));
