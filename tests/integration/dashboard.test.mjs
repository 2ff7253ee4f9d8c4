// The dashboard in a real browser (issue 14): Debian's chromium, headless,
// driven by playwright-core (pinned in web/package-lock.json; no browser
// download) against a real gateway and PostgreSQL. Signs in with a key,
// creates a tenant and a key and uses it, watches the key's rate limit and
// use change, sees a circuit open on the health page, runs the guardrail
// tester, reads the cache figures and purges the cache by tenant, by model
// and whole, checks the overview's cache hit rate against the usage
// records, signs out; a key revoked during its session is signed out with
// the API's 401; a viewer sees no write buttons, a viewer, a developer or
// a cache reader no purge, and a tenant-admin only its tenant. Checks the
// CSP, the cookie's flags and CSRF. Screenshots of every page, at 1280 px
// and at a phone's width, go to BUILD/dashboard-screenshots.
//
// Needs PostgreSQL (DATABASE_URL; pgtest.mjs freshDatabase), chromium
// (AIGW_CHROMIUM, default /usr/bin/chromium; tests/run.sh installs it) and
// web/node_modules (tests/run.sh runs npm ci there).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import {
  assert, after, before, describe, it, BIN, SRC, eventually, nonce, startGateway, startMock,
} from './lib.mjs';
import { freshDatabase, migrate } from './pgtest.mjs';

const require = createRequire(path.join(SRC, 'web', 'package.json'));
const { chromium } = require('playwright-core');
const CHROMIUM = process.env.AIGW_CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(path.dirname(BIN), 'dashboard-screenshots');
const PHONE = { width: 390, height: 844 };
const PAGES = ['overview', 'keys', 'tenants', 'limits', 'usage', 'health', 'models', 'guardrails',
               'cache', 'audit'];

describe('dashboard in a browser', () => {
  let db, mock, gw, browser, ctx, page;
  const pageErrors = [];
  const state = {};
  const dialogs = { seen: [], answer: true };

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} not found (Debian: apt-get install chromium)`);
    fs.mkdirSync(SHOTS, { recursive: true });
    db = await freshDatabase('aigw_dashboard');
    migrate(db.url);
    mock = await startMock({ name: 'dash-mock' });
    gw = await startGateway({
      mock, name: 'dash', env: { DATABASE_URL: db.url },
      config: {
        router: { report_ms: 200, max_attempts: 1,
                  breaker: { consecutive_failures: 2, cooldown_ms: 300000, min_samples: 100 } },
        models: [
          { name: 'gpt-4o-mini', provider: 'openai' },
          { name: 'fragile', deployments: [{ id: 'fragile-1', provider: 'openai_compatible',
                                             model: 'gpt-4o-mini', base_url: mock.baseURL,
                                             api_key: mock.apiKey }] },
        ],
      },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    // A CSP violation shows as a console error; the page itself must cause none.
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
    });
    // Confirmations: what they asked, answered as dialogs.answer says.
    page.on('dialog', (d) => {
      dialogs.seen.push(d.message());
      return dialogs.answer ? d.accept() : d.dismiss();
    });
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close();
    await gw?.stop();
    await mock?.stop();
    db?.destroy();
  });

  const admin = (method, p, body, key = gw.masterKey) =>
    gw.fetch(`/api/v1/admin/${p}`, { method, body, key });
  const shot = (name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const go = async (p, heading) => {
    await page.goto(`${gw.url}/dashboard#/${p}`);
    if (heading) await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  };
  // The session cookie of a browser context.
  const cookieOf = async (c) => (await c.cookies()).find((k) => k.name === 'aigw_session');
  const signIn = async (p, key) => {
    await p.goto(`${gw.url}/dashboard`);
    await p.getByLabel('API key or admin token').fill(key);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('button', { name: 'Sign out' }).waitFor();
  };

  it('serves the page with a strict CSP and no inline script', async () => {
    const res = await fetch(`${gw.url}/dashboard`);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy');
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.ok(res.headers.get('x-request-id'));
    const html = await res.text();
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.ok(scripts.length >= 1);
    for (const [, attrs, body] of scripts) {
      assert.match(attrs, /src="\/dashboard\/[a-z]+\.js"/);
      assert.equal(body.trim(), '');
    }
    assert.doesNotMatch(html, /\son[a-z]+=|style=/i, 'no inline handlers or styles');
    const js = await fetch(`${gw.url}/dashboard/app.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type'), /javascript/);
    const etag = js.headers.get('etag');
    const again = await fetch(`${gw.url}/dashboard/app.js`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    const missing = await fetch(`${gw.url}/dashboard/nothing.js`);
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error.code, 'not_found');
  });

  it('refuses a bad key and signs in with the master key: HttpOnly, SameSite=Strict, expiring cookie', async () => {
    await page.goto(`${gw.url}/dashboard`);
    await page.getByLabel('API key or admin token').fill(`sk-wrong-${nonce()}`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.textContent(), /401.*Invalid API key.*request id req_/s);
    assert.equal(await cookieOf(ctx), undefined);

    await page.getByLabel('API key or admin token').fill(gw.masterKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    const cookie = await cookieOf(ctx);
    assert.ok(cookie, 'no session cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.secure, false, 'plain HTTP here: Secure would drop the cookie');
    assert.equal(cookie.path, '/');
    assert.ok(cookie.expires > Date.now() / 1000 + 3600, `expires ${cookie.expires}`);
    // The key is in no storage the page's scripts can read.
    const stored = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage },
                                                             document.cookie]));
    assert.ok(!stored.includes(gw.masterKey), stored);
    assert.equal(await page.evaluate(() => document.cookie), '');
    await shot('signed-in');

    // Over TLS (a proxy says so) the cookie is Secure too.
    const tls = await fetch(`${gw.url}/dashboard/api/login`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' },
      body: JSON.stringify({ key: gw.masterKey }),
    });
    assert.equal(tls.status, 200);
    assert.match(tls.headers.get('set-cookie'), /HttpOnly; SameSite=Strict; Secure/);
    // Another site's page may not sign a browser in, nor post a form.
    const cross = await fetch(`${gw.url}/dashboard/api/login`, {
      method: 'POST', headers: { 'content-type': 'application/json', origin: 'http://evil.example' },
      body: JSON.stringify({ key: gw.masterKey }),
    });
    assert.equal(cross.status, 403);
    const form = await fetch(`${gw.url}/dashboard/api/login`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `key=${gw.masterKey}`,
    });
    assert.equal(form.status, 415);
  });

  it('refuses a change made with the cookie but without the CSRF token', async () => {
    const cookie = `aigw_session=${(await cookieOf(ctx)).value}`;
    const name = `csrf-${nonce()}`;
    const post = (headers) => fetch(`${gw.url}/api/v1/admin/tenants`, {
      method: 'POST', headers: { cookie, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ name }),
    });
    const none = await post({});
    assert.equal(none.status, 403);
    const body = await none.json();
    assert.equal(body.error.code, 'csrf_failed');
    assert.ok(body.error.request_id);
    const wrong = await post({ 'x-csrf-token': 'a'.repeat(64) });
    assert.equal(wrong.status, 403);
    assert.equal(db.sql(`SELECT count(*) FROM tenants WHERE name = '${name}'`).trim(), '0');
    // A read needs no token; the session's token lets the write through.
    const me = await fetch(`${gw.url}/api/v1/admin/auth/me`, { headers: { cookie } });
    assert.equal(me.status, 200);
    assert.equal((await me.json()).principal.type, 'master');
    const info = await (await fetch(`${gw.url}/dashboard/api/session`, { headers: { cookie } })).json();
    const ok = await post({ 'x-csrf-token': info.csrf_token });
    assert.equal(ok.status, 201, await ok.text());
    assert.equal(db.sql(`SELECT count(*) FROM tenants WHERE name = '${name}'`).trim(), '1');
  });

  it('creates a tenant and a key; the secret is shown once and works with the API', async () => {
    state.tenant = `acme-${nonce()}`;
    await go('tenants', 'Tenants');
    await page.getByLabel('New tenant name').fill(state.tenant);
    await page.getByRole('button', { name: 'Create tenant' }).click();
    await page.getByRole('cell', { name: state.tenant, exact: true }).waitFor();
    state.tenantId = db.sql(`SELECT id FROM tenants WHERE name = '${state.tenant}'`).trim();

    await go('keys', 'API keys');
    state.keyName = `web-${nonce()}`;
    const form = page.getByRole('form', { name: 'Create a key' });
    await form.getByLabel('Name').fill(state.keyName);
    await form.getByLabel('Tenant').selectOption({ label: state.tenant });
    await form.getByLabel('Role').selectOption('developer');
    await form.getByLabel('Requests per minute').fill('50');
    await form.getByRole('button', { name: 'Create key' }).click();
    const secret = await page.getByTestId('secret').textContent();
    assert.match(secret, /^sk-/);
    assert.ok(await page.getByRole('button', { name: 'Copy key' }).isVisible());
    await shot('key-created');
    await page.getByRole('button', { name: 'Done' }).click();
    assert.equal(await page.getByTestId('secret').count(), 0, 'the secret is shown once');
    await page.getByRole('cell', { name: state.keyName, exact: true }).waitFor();
    state.key = secret;
    state.keyId = db.sql(`SELECT id FROM api_keys WHERE name = '${state.keyName}'`).trim();
    assert.equal(db.sql(`SELECT tenant_id FROM api_keys WHERE id = '${state.keyId}'`).trim(),
                 state.tenantId);
    const res = await gw.chat(`hello ${nonce()}`, { key: secret });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('x-ratelimit-limit-requests'), '50');
  });

  it("shows the key's rate limit and its use changing after requests", async () => {
    await go(`limits?key_id=${state.keyId}`, 'Rate limits and budgets');
    const used = page.getByRole('region', { name: 'Key limits' }).getByTestId('used-rpm');
    await used.waitFor();
    const read = async () => Number((await used.textContent()).replace(/,/g, ''));
    const before = await read();
    assert.ok(before >= 1, `used ${before} after one request`);
    assert.ok(await page.getByRole('region', { name: 'Key limits' }).getByRole('cell', { name: '50', exact: true }).isVisible());
    for (let i = 0; i < 3; i++) {
      const r = await gw.chat(`again ${nonce()}`, { key: state.key });
      assert.equal(r.status, 200, r.text);
    }
    await page.getByRole('button', { name: 'Refresh' }).click();
    const now = await eventually(async () => {
      const n = await read();
      return n >= before + 2.5 && n;
    }, 10000);
    assert.ok(now, `used ${before}, then ${await read()} after 3 more requests`);
    await shot('limits-key');
  });

  it("shows a deployment's circuit open after its upstream fails", async () => {
    const refused = await eventually(async () => {
      const r = await gw.chat(`mock:status=500 ${nonce()}`, { model: 'fragile' });
      assert.ok(r.status === 502 || r.status === 503, r.text);
      return r.status === 503;
    }, 15000, 100);
    assert.ok(refused, 'the circuit never opened');
    await go('health', 'Provider health');
    const circuit = page.getByTestId('circuit-fragile-1');
    const open = await eventually(async () => (await circuit.textContent()) === 'open', 15000);
    assert.ok(open, `circuit ${await circuit.textContent()}`);
    await shot('health-open');
  });

  it('runs the guardrail tester', async () => {
    await go('guardrails', 'Guardrails');
    await page.getByLabel('Text to check').fill('write to alice@example.com please');
    await page.getByLabel('Policy').selectOption('default');
    await page.getByRole('button', { name: 'Check' }).click();
    const verdict = page.getByTestId('verdict');
    await verdict.waitFor();
    const text = await verdict.textContent();
    assert.match(text, /redact/);
    assert.match(text, /pii: email/);
    assert.match(text, /\[EMAIL\]/);
    assert.doesNotMatch(text, /alice@example\.com/);
    await shot('guardrails-tested');
  });

  it('shows the cache figures and purges by tenant, by model and all, each after a confirmation', async () => {
    const stats = async (q = '') => {
      const r = await admin('GET', `cache/stats${q}`);
      assert.equal(r.status, 200, r.text);
      return r.json;
    };
    // A cached answer in the test's tenant (its developer key) and one with
    // the master key: two identical requests each.
    const mine = `cached ${nonce()}`, theirs = `cached ${nonce()}`;
    assert.equal((await gw.chat(mine, { key: state.key })).headers.get('x-cache'), 'MISS');
    assert.equal((await gw.chat(mine, { key: state.key })).headers.get('x-cache'), 'HIT');
    assert.equal((await gw.chat(theirs)).headers.get('x-cache'), 'MISS');
    assert.equal((await gw.chat(theirs)).headers.get('x-cache'), 'HIT');
    const total = await stats();
    assert.ok(total.entries >= 2, JSON.stringify(total));
    const row = total.data.find((r) => r.tenant === state.tenantId && r.model === 'gpt-4o-mini');
    // Every earlier answer to that key was stored too: at least this one, hit once.
    assert.ok(row && row.entries >= 1 && row.hits === 1, JSON.stringify(total.data));
    const rate = (f) => `${((100 * (f.hits + f.semantic_hits)) / (f.hits + f.semantic_hits + f.misses)).toFixed(1)}%`;

    await go('cache', 'Cache');
    const entries = page.getByTestId('cache-entries');
    assert.equal(await entries.textContent(), String(total.entries));
    assert.equal(await page.getByTestId('cache-hits').textContent(), String(total.hits));
    const table = page.getByRole('region', { name: 'Cache by tenant and model' });
    const tenantRow = table.getByRole('row').filter({ hasText: state.tenant });
    // Tenant, model, entries, memory, hits, semantic hits, misses, bypasses, hit rate.
    const cells = await tenantRow.getByRole('cell').allTextContents();
    assert.deepEqual([cells[0], cells[1], cells[2], cells[4], cells[5], cells[6], cells[7], cells[8]],
                     [state.tenant, 'gpt-4o-mini', String(row.entries), '1', '0', String(row.misses),
                      String(row.bypasses), rate(row)], cells.join(' | '));
    assert.match(cells[3], /^\d+(\.\d)? (B|KiB)$/);
    await shot('cache');

    // Dismissed: nothing goes.
    dialogs.answer = false;
    const form = page.getByRole('form', { name: 'Purge the cache' });
    await form.getByLabel('Purge tenant').selectOption({ label: state.tenant });
    const byTenant = form.getByRole('button', { name: `Purge tenant ${state.tenant}` });
    await byTenant.click();
    assert.match(dialogs.seen.at(-1), new RegExp(`Purge every cached answer of tenant ${state.tenant}\\?`));
    assert.equal(await page.getByTestId('purged').count(), 0);
    assert.equal((await stats()).entries, total.entries);
    dialogs.answer = true;

    // By tenant: that tenant's entry goes, the master key's stays.
    await byTenant.click();
    await page.getByTestId('purged').waitFor();
    const plural = row.entries === 1 ? 'entry' : 'entries';
    assert.match(await page.getByTestId('purged').textContent(),
                 new RegExp(`Purged ${row.entries} ${plural} of tenant ${state.tenant} on 1 cache owner\\.`));
    assert.equal((await stats(`?tenant=${state.tenantId}`)).entries, 0);
    assert.equal((await stats()).entries, total.entries - row.entries);
    assert.equal((await gw.chat(theirs)).headers.get('x-cache'), 'HIT');
    assert.equal((await gw.chat(mine, { key: state.key })).headers.get('x-cache'), 'MISS');
    const left = (await stats()).entries;

    // By model: another model's purge leaves gpt-4o-mini's entries.
    await form.getByLabel('Purge tenant').selectOption({ label: 'Every tenant' });
    await form.getByLabel('Purge model').fill('text-embedding-3-small');
    await form.getByRole('button', { name: 'Purge model text-embedding-3-small of every tenant' }).click();
    await eventually(async () => /Purged 0 entries of model text-embedding-3-small/.test(await page.getByTestId('purged').textContent()), 5000);
    assert.match(dialogs.seen.at(-1), /Purge every cached answer of model text-embedding-3-small of every tenant\?/);
    assert.equal((await stats()).entries, left);

    // All: zero entries, in the API and on the page; the next ask is a miss.
    await form.getByLabel('Purge model').fill('');
    await form.getByRole('button', { name: 'Purge every tenant' }).click();
    await eventually(async () => /Purged [1-9]\d* entr(y|ies) of every tenant/.test(await page.getByTestId('purged').textContent()), 5000);
    assert.equal((await stats()).entries, 0);
    const zero = await eventually(async () => (await entries.textContent()) === '0', 5000);
    assert.ok(zero, `entries shown: ${await entries.textContent()}`);
    assert.equal((await gw.chat(theirs)).headers.get('x-cache'), 'MISS');
    await shot('cache-purged');
  });

  it("shows the overview's cache hit rate from the usage records of the period", async () => {
    // The records land a moment after their answers: compare until the page
    // and the database agree (and there is a hit to count, from the test above).
    const fromDb = () => {
      const [hits, lookups] = db.sql(`SELECT count(*) FILTER (WHERE cache IN ('HIT', 'SEMANTIC-HIT')),
                                             count(*) FILTER (WHERE cache IN ('HIT', 'SEMANTIC-HIT', 'MISS'))
                                      FROM usage_records WHERE ts > now () - interval '24 hours'`)
        .trim().split('|').map(Number);
      return { hits, lookups, text: `${((100 * hits) / lookups).toFixed(1)}%` };
    };
    let shown, want;
    await go('overview', 'Overview');
    const agreed = await eventually(async () => {
      // The same URL again would not load the page anew (only its #fragment).
      await page.reload();
      const card = page.getByTestId('cache-hit-rate');
      await card.waitFor();
      shown = await card.textContent();
      want = fromDb();
      return want.hits >= 3 && shown === want.text;
    }, 15000, 500);
    assert.ok(agreed, `page ${shown}, database ${JSON.stringify(want)}`);
    const small = await page.getByTestId('cache-hit-rate').locator('xpath=..').locator('small').textContent();
    assert.equal(small, `${want.hits} of ${want.lookups} lookups`);
  });

  it('shows every page at 1280 px and at a phone width, without errors', async () => {
    for (const p of PAGES) {
      await go(p);
      await page.locator('main h1').waitFor();
      await page.waitForLoadState('networkidle');
      await shot(`page-${p}`);
    }
    await page.setViewportSize(PHONE);
    for (const p of PAGES) {
      await go(p);
      await page.locator('main h1').waitFor();
      await page.waitForLoadState('networkidle');
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= PHONE.width + 1, `${p}: the page is ${width} px wide on a phone`);
      await shot(`phone-${p}`);
    }
    // The menu opens by keyboard on a phone.
    await page.getByRole('button', { name: 'Menu' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('link', { name: 'Keys' }).waitFor();
    await page.keyboard.press('Tab');
    await shot('phone-menu');
    await page.setViewportSize({ width: 1280, height: 900 });
    assert.deepEqual(pageErrors, []);
  });

  it('signs out: the cookie is cleared and the old session is dead', async () => {
    const old = (await cookieOf(ctx)).value;
    await go('overview', 'Overview');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key or admin token').waitFor();
    assert.equal(await cookieOf(ctx), undefined);
    const res = await fetch(`${gw.url}/api/v1/admin/auth/me`, { headers: { cookie: `aigw_session=${old}` } });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error.code, 'no_session');
  });

  it('a viewer sees no write buttons', async () => {
    const created = await admin('POST', 'keys', { tenant_id: state.tenantId, name: `viewer-${nonce()}`, role: 'viewer' });
    assert.equal(created.status, 201, created.text);
    const c = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await c.newPage();
    await signIn(p, created.json.key);
    await p.goto(`${gw.url}/dashboard#/keys`);
    await p.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    await p.getByRole('cell', { name: state.keyName, exact: true }).waitFor();
    for (const name of ['Create key', /^Revoke/, /^Rotate/, /^Edit/]) {
      assert.equal(await p.getByRole('button', { name }).count(), 0, `viewer sees ${name}`);
    }
    await p.goto(`${gw.url}/dashboard#/tenants`);
    await p.getByRole('heading', { level: 1, name: 'Tenants' }).waitFor();
    assert.equal(await p.getByRole('button', { name: 'Create tenant' }).count(), 0);
    const nav = await p.getByRole('navigation', { name: 'Pages' }).textContent();
    assert.doesNotMatch(nav, /Audit log|Guardrails|Health/, nav);
    await p.screenshot({ path: path.join(SHOTS, 'viewer-keys.png'), fullPage: true });
    await c.close();
  });

  it('a key revoked during its session is refused on the next call: the page shows the 401 and signs out', async () => {
    const made = await admin('POST', 'keys', { tenant_id: state.tenantId, name: `revoked-${nonce()}`, role: 'tenant-admin' });
    assert.equal(made.status, 201, made.text);
    const c = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await c.newPage();
    await signIn(p, made.json.key);
    await p.goto(`${gw.url}/dashboard#/keys`);
    await p.getByRole('cell', { name: made.json.name, exact: true }).waitFor();
    const old = (await cookieOf(c)).value;
    // Another admin revokes it through the API.
    const revoked = await admin('PATCH', `keys/${made.json.id}`, { revoked: true });
    assert.equal(revoked.status, 200, revoked.text);
    // The next call the page makes carries the revoked key: auth says 401
    // (its cache drops the key on the database's NOTIFY; until then the
    // key still works, so ask until it does not).
    const refused = await eventually(async () => {
      const r = await fetch(`${gw.url}/api/v1/admin/auth/me`, { headers: { cookie: `aigw_session=${old}` } });
      return r.status === 401;
    }, 10000);
    assert.ok(refused, 'the revoked key still works through its session');
    await p.getByRole('link', { name: 'Tenants' }).click();
    const alert = p.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.textContent(), /Signed out \(401\):.*revoked.*request id req_/s);
    await p.getByLabel('API key or admin token').waitFor();
    assert.match(await p.getByRole('status').textContent(), /session ended/);
    await p.screenshot({ path: path.join(SHOTS, 'revoked-signed-out.png'), fullPage: true });
    // The page ended the edge's session too: the cookie is gone and dead.
    const gone = await eventually(async () => (await cookieOf(c)) === undefined, 5000);
    assert.ok(gone, 'the session cookie is still set');
    const res = await fetch(`${gw.url}/api/v1/admin/auth/me`, { headers: { cookie: `aigw_session=${old}` } });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error.code, 'no_session');
    await c.close();
  });

  it('a viewer, a developer and a role with cache:read alone see no purge button', async () => {
    // A custom role (roles are rows; the API lists them): reads the cache, purges nothing.
    db.sql(`INSERT INTO roles (name, permissions, description) VALUES ('cache-reader',
            ARRAY['cache:read', 'usage:read'], 'test: cache figures only') ON CONFLICT DO NOTHING`);
    const made = {};
    for (const role of ['viewer', 'developer', 'cache-reader']) {
      const r = await admin('POST', 'keys', { tenant_id: state.tenantId, name: `${role}-${nonce()}`, role });
      assert.equal(r.status, 201, r.text);
      made[role] = r.json.key;
    }
    for (const [role, key] of Object.entries(made)) {
      const c = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const p = await c.newPage();
      await signIn(p, key);
      await p.goto(`${gw.url}/dashboard#/cache`);
      await p.locator('main h1').waitFor();
      const nav = await p.getByRole('navigation', { name: 'Pages' }).textContent();
      if (role === 'cache-reader') {
        // It sees the figures (of its tenant only: no tenant column) but no purge.
        assert.match(nav, /Cache/);
        await p.getByRole('heading', { level: 1, name: 'Cache' }).waitFor();
        await p.getByTestId('cache-entries').waitFor();
        assert.equal(await p.getByRole('columnheader', { name: 'Tenant' }).count(), 0);
      } else {
        // No cache:read: no Cache page at all; #/cache shows the first page.
        assert.doesNotMatch(nav, /Cache/, `${role}: ${nav}`);
        assert.notEqual(await p.locator('main h1').textContent(), 'Cache');
      }
      assert.equal(await p.getByRole('form', { name: 'Purge the cache' }).count(), 0, role);
      assert.equal(await p.getByRole('button', { name: /^Purge/ }).count(), 0, role);
      await p.screenshot({ path: path.join(SHOTS, `${role}-cache.png`), fullPage: true });
      await c.close();
    }
  });

  it('a tenant-admin sees only its own tenant', async () => {
    const other = await admin('POST', 'tenants', { name: `other-${nonce()}` });
    const otherKey = await admin('POST', 'keys', { tenant_id: other.json.id, name: `hidden-${nonce()}`, role: 'developer' });
    assert.equal(otherKey.status, 201, otherKey.text);
    const ta = await admin('POST', 'keys', { tenant_id: state.tenantId, name: `ta-${nonce()}`, role: 'tenant-admin' });
    assert.equal(ta.status, 201, ta.text);
    const c = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await c.newPage();
    await signIn(p, ta.json.key);
    await p.goto(`${gw.url}/dashboard#/keys`);
    await p.getByRole('cell', { name: state.keyName, exact: true }).waitFor();
    assert.equal(await p.getByRole('cell', { name: otherKey.json.name, exact: true }).count(), 0);
    // It may write keys in its tenant: the form is there, with no tenant choice.
    const form = p.getByRole('form', { name: 'Create a key' });
    assert.ok(await form.isVisible());
    assert.equal(await form.getByLabel('Tenant').count(), 0);
    await p.goto(`${gw.url}/dashboard#/tenants`);
    await p.getByRole('cell', { name: state.tenant, exact: true }).waitFor();
    assert.equal(await p.getByRole('cell', { name: other.json.name, exact: true }).count(), 0);
    assert.equal(await p.getByRole('button', { name: 'Create tenant' }).count(), 0);
    await p.screenshot({ path: path.join(SHOTS, 'tenant-admin-tenants.png'), fullPage: true });
    // cache:write within its tenant: a purge of its own tenant, no tenant to choose.
    await p.goto(`${gw.url}/dashboard#/cache`);
    await p.getByRole('heading', { level: 1, name: 'Cache' }).waitFor();
    const purge = p.getByRole('form', { name: 'Purge the cache' });
    await purge.getByRole('button', { name: 'Purge this tenant' }).waitFor();
    assert.equal(await purge.getByLabel('Purge tenant').count(), 0);
    await c.close();
  });
});
