// The pages, each against the admin API alone.
import { useMemo, useState } from 'preact/hooks';
import { api, all, query } from './api.js';
import {
  Action, Chart, CopyButton, Empty, ErrorBox, Field, Loaded, Loading, Meter, Table, fmt, useEvery,
  useLoad,
} from './ui.jsx';

const HOUR = 3600;
const iso = (d) => new Date(d).toISOString();
const listOf = (text) => text.split(',').map((s) => s.trim()).filter(Boolean);
const numOrNull = (v) => (v === '' || v === undefined ? null : Number(v));

// Sum the usage groups by their time member (hour or day) into series.
// Every bucket of STEP seconds from START to END (Unix s) is on the axis,
// empty ones as null, so a quiet hour shows as a gap, not a jump.
function timeSeries(groups, member, pick, start, end, step = HOUR) {
  const by = new Map();
  for (const g of groups) {
    const t = Math.floor(Date.parse(g.group[member]) / 1000);
    if (!by.has(t)) by.set(t, []);
    by.get(t).push(g);
  }
  const x = [];
  for (let t = Math.floor(start / step) * step; t < end; t += step) x.push(t);
  return { x, values: x.map((t) => (by.has(t) ? pick(by.get(t)) : null)) };
}
const sum = (rows, f) => rows.reduce((a, r) => a + (f(r) || 0), 0);

// ---------------------------------------------------------------------------
// Overview: the last 24 hours (or 7 days) by hour.
//
// The cache hit rate comes from the usage records (each request's X-Cache),
// not from GET cache/stats: records have a time, so the rate follows the
// period and has an hour axis; they outlive a restart (the stats count
// since each cache owner started); and they have the overview's scope
// (usage:read: a developer its own key, a tenant-admin its tenant), where
// cache/stats needs cache:read, which developers and viewers lack. The
// records are read up to RECORDS_MAX; past it the rate is of the latest.

const RECORDS_MAX = 1000;
const RECORDS_PAGE = 200;

export function Overview({ me }) {
  const [range, setRange] = useState(24);
  const usage = useLoad(async () => {
    const end = Date.now();
    const start = end - range * HOUR * 1000;
    const [summary, records] = await Promise.all([
      api('GET', `usage${query({ group_by: 'hour', start: iso(start), end: iso(end) })}`),
      all(`usage/records${query({ start: iso(start), end: iso(end), limit: RECORDS_PAGE })}`, RECORDS_MAX)
        .catch(() => []),
    ]);
    return { summary, records, start: start / 1000, end: end / 1000 };
  }, [range]);
  return (
    <section aria-labelledby="h-overview">
      <div class="head">
        <h1 id="h-overview">Overview</h1>
        <Field label="Period">
          <select value={range} onChange={(e) => setRange(Number(e.target.value))}>
            <option value={24}>Last 24 hours</option>
            <option value={168}>Last 7 days</option>
          </select>
        </Field>
      </div>
      <p class="who">Signed in as <strong>{me.principal.name || me.principal.id}</strong> ({me.role}) ·
        tenant {me.tenant.id === '*' ? 'every tenant' : me.tenant.name || me.tenant.id}</p>
      <Loaded state={usage}>{({ summary, records, start, end }) => {
        const g = summary.data;
        const requests = sum(g, (r) => r.requests);
        const errors = sum(g, (r) => r.errors);
        const cost = sum(g, (r) => r.cost_usd);
        // A lookup is a HIT, SEMANTIC-HIT or MISS; BYPASS and none looked nothing up.
        const lookedUp = records.filter((r) => r.cache && r.cache !== 'BYPASS');
        const hits = lookedUp.filter((r) => r.cache.includes('HIT')).length;
        const cacheable = lookedUp.length;
        const req = timeSeries(g, 'hour', (rs) => sum(rs, (r) => r.requests), start, end);
        const err = timeSeries(g, 'hour', (rs) => sum(rs, (r) => r.errors), start, end);
        const p50 = timeSeries(g, 'hour', (rs) => Math.max(...rs.map((r) => r.latency_ms.p50)), start, end);
        const p95 = timeSeries(g, 'hour', (rs) => Math.max(...rs.map((r) => r.latency_ms.p95)), start, end);
        const spend = timeSeries(g, 'hour', (rs) => sum(rs, (r) => r.cost_usd), start, end);
        // Cache hit rate per hour.
        const hours = new Map();
        for (const r of lookedUp) {
          const h = Math.floor(Date.parse(r.ts) / 1000 / HOUR) * HOUR;
          const e = hours.get(h) || { hit: 0, all: 0 };
          e.all++; if (r.cache.includes('HIT')) e.hit++;
          hours.set(h, e);
        }
        const cx = hours.size ? req.x : [];
        return (
          <>
            <div class="cards">
              <div class="card"><span>Requests</span><strong>{fmt.int(requests)}</strong></div>
              <div class="card"><span>Errors</span><strong>{fmt.int(errors)}</strong>
                <small>{requests ? fmt.pct(errors / requests) : '—'}</small></div>
              <div class="card"><span>Spend</span><strong>{fmt.usd(cost)}</strong></div>
              <div class="card"><span>Cache hit rate</span>
                <strong data-testid="cache-hit-rate">{cacheable ? fmt.pct(hits / cacheable) : '—'}</strong>
                <small>{fmt.int(hits)} of {fmt.int(cacheable)} lookups{records.length >= RECORDS_MAX ? ` in the latest ${fmt.int(RECORDS_MAX)} requests` : ''}</small></div>
            </div>
            {!g.length ? <Empty>No requests in this period. Send one with a key and it shows here.</Empty> : (
              <div class="charts">
                <Chart title="Requests and errors per hour" x={req.x} bars
                  series={[{ label: 'requests', values: req.values }, { label: 'errors', values: err.values }]} />
                <Chart title="Latency (ms)" x={p50.x} fmtY={(v) => `${v}`}
                  series={[{ label: 'p50', values: p50.values }, { label: 'p95', values: p95.values }]} />
                <Chart title="Spend per hour (USD)" x={spend.x} fmtY={(v) => (v === null ? '—' : `$${(+v).toFixed(4)}`)}
                  series={[{ label: 'spend', values: spend.values }]} />
                <Chart title="Cache hit rate per hour" x={cx} fmtY={(v) => `${Math.round(v * 100)}%`}
                  series={[{ label: 'hit rate', values: cx.map((h) => (hours.has(h) ? hours.get(h).hit / hours.get(h).all : null)) }]} />
              </div>
            )}
          </>
        );
      }}</Loaded>
    </section>
  );
}

// ---------------------------------------------------------------------------
// Keys

function SecretShown({ secret, onClose }) {
  return (
    <div class="secret" role="alert" aria-label="New key secret">
      <p><strong>Copy this key now: it is shown this once.</strong></p>
      <code data-testid="secret">{secret}</code>
      <div class="row"><CopyButton text={secret} label="Copy key" />
        <button type="button" onClick={onClose}>Done</button></div>
    </div>
  );
}

function KeyForm({ me, tenants, roles, onCreated }) {
  const every = me.tenant.id === '*';
  const [f, setF] = useState({ name: '', tenant_id: '', role: 'developer', expires_at: '', models: '', rpm: '', tpm: '', budget_usd: '' });
  const [error, setError] = useState(null);
  const set = (k) => (e) => setF({ ...f, [k]: e.target.value });
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    const body = { name: f.name, role: f.role };
    if (every) body.tenant_id = f.tenant_id;
    if (f.expires_at) body.expires_at = new Date(`${f.expires_at}Z`).toISOString();
    if (f.models.trim()) body.models = listOf(f.models);
    for (const k of ['rpm', 'tpm', 'budget_usd']) if (f[k] !== '') body[k] = Number(f[k]);
    try {
      const created = await api('POST', 'keys', body);
      setF({ ...f, name: '' });
      onCreated(created);
    } catch (err) { setError(err); }
  };
  return (
    <form class="panel" onSubmit={submit} aria-label="Create a key">
      <h2>Create a key</h2>
      <div class="grid">
        <Field label="Name"><input required value={f.name} onInput={set('name')} /></Field>
        {every && (
          <Field label="Tenant">
            <select required value={f.tenant_id} onChange={set('tenant_id')}>
              <option value="">Choose…</option>
              {tenants.map((t) => <option value={t.id}>{t.name}</option>)}
            </select>
          </Field>
        )}
        <Field label="Role">
          <select value={f.role} onChange={set('role')}>
            {roles.map((r) => <option value={r.name}>{r.name}</option>)}
          </select>
        </Field>
        <Field label="Expires (UTC)" hint="empty: never"><input type="datetime-local" value={f.expires_at} onInput={set('expires_at')} /></Field>
        <Field label="Models" hint="comma-separated; empty: all"><input value={f.models} onInput={set('models')} /></Field>
        <Field label="Requests per minute"><input type="number" min="1" value={f.rpm} onInput={set('rpm')} /></Field>
        <Field label="Tokens per minute"><input type="number" min="1" value={f.tpm} onInput={set('tpm')} /></Field>
        <Field label="Monthly budget (USD)"><input type="number" min="0" step="0.01" value={f.budget_usd} onInput={set('budget_usd')} /></Field>
      </div>
      <button type="submit" class="primary">Create key</button>
      <ErrorBox error={error} />
    </form>
  );
}

function KeyEdit({ k, onDone }) {
  const [f, setF] = useState({
    expires_at: k.expires_at ? k.expires_at.slice(0, 16) : '', models: (k.models || []).join(', '),
    rpm: k.rpm ?? '', tpm: k.tpm ?? '', budget_usd: k.budget_usd ?? '',
  });
  const [error, setError] = useState(null);
  const set = (n) => (e) => setF({ ...f, [n]: e.target.value });
  const save = async (e) => {
    e.preventDefault();
    try {
      await api('PATCH', `keys/${k.id}`, {
        expires_at: f.expires_at ? new Date(`${f.expires_at}Z`).toISOString() : null,
        models: f.models.trim() ? listOf(f.models) : null,
        rpm: numOrNull(f.rpm), tpm: numOrNull(f.tpm), budget_usd: numOrNull(f.budget_usd),
      });
      onDone();
    } catch (err) { setError(err); }
  };
  return (
    <form class="panel" onSubmit={save} aria-label={`Edit key ${k.name}`}>
      <h2>Edit {k.name}</h2>
      <div class="grid">
        <Field label="Expires (UTC)"><input type="datetime-local" value={f.expires_at} onInput={set('expires_at')} /></Field>
        <Field label="Models"><input value={f.models} onInput={set('models')} /></Field>
        <Field label="Requests per minute"><input type="number" min="1" value={f.rpm} onInput={set('rpm')} /></Field>
        <Field label="Tokens per minute"><input type="number" min="1" value={f.tpm} onInput={set('tpm')} /></Field>
        <Field label="Monthly budget (USD)"><input type="number" min="0" step="0.01" value={f.budget_usd} onInput={set('budget_usd')} /></Field>
      </div>
      <button type="submit" class="primary">Save</button> <button type="button" onClick={onDone}>Cancel</button>
      <ErrorBox error={error} />
    </form>
  );
}

export function Keys({ me, can, go }) {
  const [secret, setSecret] = useState(null);
  const [editing, setEditing] = useState(null);
  const [showRevoked, setShowRevoked] = useState(false);
  const state = useLoad(async () => {
    const [keys, tenants, roles] = await Promise.all([
      all(`keys${query({ revoked: showRevoked ? '' : 'false', limit: 100 })}`),
      all('tenants?limit=100').catch(() => []),
      api('GET', 'roles').then((r) => r.data).catch(() => [{ name: 'developer' }, { name: 'viewer' }]),
    ]);
    return { keys, tenants, roles };
  }, [showRevoked]);
  const write = can('keys:write');
  return (
    <section aria-labelledby="h-keys">
      <div class="head"><h1 id="h-keys">API keys</h1>
        <label class="check"><input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked(e.target.checked)} /> Show revoked</label>
      </div>
      {secret && <SecretShown secret={secret} onClose={() => setSecret(null)} />}
      <Loaded state={state}>{({ keys, tenants, roles }) => {
        const tenantName = (id) => (tenants.find((t) => t.id === id) || {}).name || id;
        return (
          <>
            {write && !editing && <KeyForm me={me} tenants={tenants} roles={roles}
              onCreated={(k) => { setSecret(k.key); state.reload(); }} />}
            {editing && <KeyEdit k={editing} onDone={() => { setEditing(null); state.reload(); }} />}
            <Table label="API keys" rows={keys} empty="No keys yet." columns={[
              { label: 'Name', cell: (k) => k.name },
              { label: 'Prefix', cell: (k) => <code>{k.prefix}…</code> },
              { label: 'Tenant', cell: (k) => tenantName(k.tenant_id) },
              { label: 'Role', cell: (k) => k.role },
              { label: 'Status', cell: (k) => <span class={`badge ${k.status}`}>{k.status}</span> },
              { label: 'Expires', cell: (k) => fmt.time(k.expires_at) },
              { label: 'Models', cell: (k) => (k.models ? k.models.join(', ') : 'all') },
              { label: 'Limits', cell: (k) => [k.rpm && `${k.rpm} rpm`, k.tpm && `${k.tpm} tpm`, k.budget_usd !== null && `${fmt.usd(k.budget_usd)}/mo`].filter(Boolean).join(' · ') || 'default' },
              { label: 'Actions', cell: (k) => (
                <div class="row">
                  <button type="button" onClick={() => go(`limits?key_id=${k.id}`)} aria-label={`Rate limits of ${k.name}`}>Limits</button>
                  {write && k.status === 'active' && <>
                    <button type="button" onClick={() => setEditing(k)} aria-label={`Edit ${k.name}`}>Edit</button>
                    <Action label={`Rotate ${k.name}`} confirm={`Rotate ${k.name}? The old secret stops working now.`}
                      action={async () => { const r = await api('POST', `keys/${k.id}/rotate`, {}); setSecret(r.key); state.reload(); }}>Rotate</Action>
                    <Action kind="danger" label={`Revoke ${k.name}`} confirm={`Revoke ${k.name}? This cannot be undone.`}
                      action={async () => { await api('PATCH', `keys/${k.id}`, { revoked: true }); state.reload(); }}>Revoke</Action>
                  </>}
                </div>) },
            ]} />
          </>
        );
      }}</Loaded>
    </section>
  );
}

// ---------------------------------------------------------------------------
// Tenants

export function Tenants({ me, can, go }) {
  const state = useLoad(() => all('tenants?limit=100'), []);
  const [name, setName] = useState('');
  const [error, setError] = useState(null);
  const write = can('tenants:write') && me.tenant.id === '*';
  const create = async (e) => {
    e.preventDefault();
    setError(null);
    try { await api('POST', 'tenants', { name }); setName(''); state.reload(); } catch (err) { setError(err); }
  };
  return (
    <section aria-labelledby="h-tenants">
      <div class="head"><h1 id="h-tenants">Tenants</h1></div>
      {write && (
        <form class="panel inline" onSubmit={create} aria-label="Create a tenant">
          <Field label="New tenant name"><input required value={name} onInput={(e) => setName(e.target.value)} /></Field>
          <button type="submit" class="primary">Create tenant</button>
          <ErrorBox error={error} />
        </form>
      )}
      <Loaded state={state}>{(tenants) => (
        <Table label="Tenants" rows={tenants} empty="No tenants yet." columns={[
          { label: 'Name', cell: (t) => t.name },
          { label: 'Id', cell: (t) => <code>{t.id}</code> },
          { label: 'Stores content', cell: (t) => (t.store_content ? 'yes' : 'no') },
          { label: 'Limits', cell: (t) => (t.limits && Object.keys(t.limits).length ? <code>{JSON.stringify(t.limits)}</code> : 'none') },
          { label: 'Created', cell: (t) => fmt.time(t.created_at) },
          { label: 'Actions', cell: (t) => (
            <div class="row">
              <button type="button" onClick={() => go(`limits?tenant_id=${t.id}`)} aria-label={`Rate limits of ${t.name}`}>Limits</button>
              <button type="button" onClick={() => go(`usage?tenant_id=${t.id}`)} aria-label={`Usage of ${t.name}`}>Usage</button>
              {write && <Action kind="danger" label={`Delete ${t.name}`} confirm={`Delete ${t.name} and every key in it?`}
                action={async () => { await api('DELETE', `tenants/${t.id}`); state.reload(); }}>Delete</Action>}
            </div>) },
        ]} />
      )}</Loaded>
    </section>
  );
}

// ---------------------------------------------------------------------------
// Rate limits and budgets against current use

function LimitRows({ title, limits }) {
  if (!limits || !limits.length) return <Empty>{title}: no limits at this level.</Empty>;
  return (
    <Table label={title} rows={limits} rowKey={(l) => l.kind} columns={[
      { label: 'Limit', cell: (l) => l.kind + (l.period ? ` (${l.period})` : '') },
      { label: 'Used', cell: (l) => <span data-testid={`used-${l.kind}`}>{l.kind === 'budget' ? fmt.usd(l.used) : fmt.int(l.used)}</span> },
      { label: 'of', cell: (l) => (l.kind === 'budget' ? fmt.usd(l.limit) : fmt.int(l.limit)) },
      { label: 'Remaining', cell: (l) => (l.kind === 'budget' ? fmt.usd(l.remaining) : fmt.int(l.remaining)) },
      { label: 'Use', cell: (l) => <Meter used={l.used} limit={l.limit} label={`${l.kind} use`} /> },
      { label: 'Resets', cell: (l) => fmt.unix(l.reset) },
    ]} />
  );
}

export function Limits({ params, can }) {
  const [target, setTarget] = useState({ key_id: params.get('key_id') || '', tenant_id: params.get('tenant_id') || '' });
  const choices = useLoad(async () => ({
    keys: can('keys:read') ? await all('keys?revoked=false&limit=100').catch(() => []) : [],
    tenants: can('tenants:read') ? await all('tenants?limit=100').catch(() => []) : [],
  }), []);
  const state = useLoad(() => api('GET', `rate-limits${query(target)}`), [target.key_id, target.tenant_id]);
  useEvery(5000, state.reload);
  const pick = (e) => {
    const [kind, id] = e.target.value.split(':');
    setTarget(kind === 'key' ? { key_id: id, tenant_id: '' } : kind === 'tenant' ? { key_id: '', tenant_id: id } : { key_id: '', tenant_id: '' });
  };
  const value = target.key_id ? `key:${target.key_id}` : target.tenant_id ? `tenant:${target.tenant_id}` : '';
  return (
    <section aria-labelledby="h-limits">
      <div class="head"><h1 id="h-limits">Rate limits and budgets</h1>
        {choices.data && (
          <Field label="Whose">
            <select value={value} onChange={pick}>
              <option value="">My own key</option>
              {choices.data.keys.map((k) => <option value={`key:${k.id}`}>key {k.name}</option>)}
              {choices.data.tenants.map((t) => <option value={`tenant:${t.id}`}>tenant {t.name}</option>)}
            </select>
          </Field>
        )}
        <button type="button" onClick={state.reload}>Refresh</button>
      </div>
      <p class="hint">Current use, reservations included, as the rate-limit owner counts it; refreshed every 5 s.</p>
      <Loaded state={state}>{(rl) => (
        <>
          <h2>Key {rl.key && rl.key.id ? <code>{rl.key.id}</code> : ''}</h2>
          <LimitRows title="Key limits" limits={rl.key && rl.key.limits} />
          <h2>Tenant {rl.tenant && rl.tenant.id ? <code>{rl.tenant.id}</code> : ''}</h2>
          <LimitRows title="Tenant limits" limits={rl.tenant && rl.tenant.limits} />
          {Object.entries(rl.models || {}).map(([model, m]) => (
            <div key={model}>
              <h2>Model {model}</h2>
              <LimitRows title={`${model}: key`} limits={m.key} />
              <LimitRows title={`${model}: tenant`} limits={m.tenant} />
            </div>
          ))}
        </>
      )}</Loaded>
    </section>
  );
}

// ---------------------------------------------------------------------------
// Usage and spend

export function Usage({ params }) {
  const [f, setF] = useState({ days: '7', model: '', key_id: params.get('key_id') || '', tenant_id: params.get('tenant_id') || '' });
  const set = (k) => (e) => setF({ ...f, [k]: e.target.value });
  const state = useLoad(async () => {
    const end = Date.now();
    const start = end - Number(f.days) * 24 * HOUR * 1000;
    const base = { start: iso(start), end: iso(end), model: f.model, key_id: f.key_id, tenant_id: f.tenant_id };
    const [byModelDay, byKey, byModel] = await Promise.all([
      api('GET', `usage${query({ ...base, group_by: 'model,day' })}`),
      api('GET', `usage${query({ ...base, group_by: 'key' })}`),
      api('GET', `usage${query({ ...base, group_by: 'model' })}`),
    ]);
    return { byModelDay: byModelDay.data, byKey: byKey.data, byModel: byModel.data };
  }, [f.days, f.model, f.key_id, f.tenant_id]);
  return (
    <section aria-labelledby="h-usage">
      <div class="head"><h1 id="h-usage">Usage and spend</h1></div>
      <form class="panel inline" aria-label="Usage filters" onSubmit={(e) => e.preventDefault()}>
        <Field label="Period">
          <select value={f.days} onChange={set('days')}>
            <option value="1">Last day</option><option value="7">Last 7 days</option><option value="30">Last 30 days</option>
          </select>
        </Field>
        <Field label="Model"><input value={f.model} onChange={set('model')} placeholder="any" /></Field>
        <Field label="Key id"><input value={f.key_id} onChange={set('key_id')} placeholder="any" /></Field>
        <Field label="Tenant id"><input value={f.tenant_id} onChange={set('tenant_id')} placeholder="any" /></Field>
      </form>
      <Loaded state={state}>{({ byModelDay, byKey, byModel }) => {
        const models = [...new Set(byModelDay.map((g) => g.group.model || '(none)'))];
        const DAY = 24 * HOUR;
        const x = [];
        for (let t = Math.floor((Date.now() / 1000 - Number(f.days) * DAY) / DAY) * DAY; t < Date.now() / 1000; t += DAY) x.push(t);
        const days = byModelDay.length ? x : [];
        const cell = (m, d, pick) => {
          const g = byModelDay.find((r) => (r.group.model || '(none)') === m && Math.floor(Date.parse(r.group.day) / 1000) === d);
          return g ? pick(g) : 0;
        };
        const spend = models.map((m) => ({ label: m, values: days.map((d) => cell(m, d, (g) => g.cost_usd)) }));
        const reqs = models.map((m) => ({ label: m, values: days.map((d) => cell(m, d, (g) => g.requests)) }));
        const tokens = models.map((m) => ({ label: m, values: days.map((d) => cell(m, d, (g) => g.prompt_tokens + g.completion_tokens)) }));
        const usageCols = [
          { label: 'Requests', cell: (g) => fmt.int(g.requests) },
          { label: 'Errors', cell: (g) => fmt.int(g.errors) },
          { label: 'Prompt tokens', cell: (g) => fmt.int(g.prompt_tokens) },
          { label: 'Completion tokens', cell: (g) => fmt.int(g.completion_tokens) },
          { label: 'Spend', cell: (g) => fmt.usd(g.cost_usd) },
          { label: 'p95', cell: (g) => fmt.ms(g.latency_ms.p95) },
        ];
        return (
          <>
            <div class="charts">
              <Chart title="Spend per day by model (USD)" x={days} series={spend} bars fmtY={(v) => (v === null ? '—' : `$${(+v).toFixed(4)}`)} />
              <Chart title="Requests per day by model" x={days} series={reqs} bars />
              <Chart title="Tokens per day by model" x={days} series={tokens} bars />
            </div>
            <h2>By model</h2>
            <Table label="Usage by model" rows={byModel} rowKey={(g) => g.group.model} empty="No usage in this period."
              columns={[{ label: 'Model', cell: (g) => g.group.model || '—' }, ...usageCols]} />
            <h2>By key</h2>
            <Table label="Usage by key" rows={byKey} rowKey={(g) => g.group.key_id} empty="No usage in this period."
              columns={[{ label: 'Key', cell: (g) => g.group.key_name || g.group.key_id || '(config or master)' }, ...usageCols]} />
          </>
        );
      }}</Loaded>
    </section>
  );
}

// ---------------------------------------------------------------------------
// Provider health and circuits

export function Health() {
  const state = useLoad(() => api('GET', 'router/health'), []);
  useEvery(3000, state.reload);
  return (
    <section aria-labelledby="h-health">
      <div class="head"><h1 id="h-health">Provider health</h1>
        <button type="button" onClick={state.reload}>Refresh</button></div>
      <p class="hint">Each deployment as the provider processes see it; refreshed every 3 s.</p>
      <Loaded state={state}>{(h) => (
        <Table label="Deployments" rows={h.deployments || []} empty="No deployment has served a request yet." columns={[
          { label: 'Deployment', cell: (d) => <code>{d.id}</code> },
          { label: 'Model', cell: (d) => d.model },
          { label: 'Provider', cell: (d) => d.provider },
          { label: 'Status', cell: (d) => <span class={`badge ${d.status}`}>{d.status}</span> },
          { label: 'Circuit', cell: (d) => <span class={`badge circuit-${d.circuit}`} data-testid={`circuit-${d.id}`}>{d.circuit}</span> },
          { label: 'p50', cell: (d) => fmt.ms(d.latency_ms && d.latency_ms.p50) },
          { label: 'p95', cell: (d) => fmt.ms(d.latency_ms && d.latency_ms.p95) },
          { label: 'Error rate', cell: (d) => fmt.pct(d.error_rate) },
          { label: 'In flight', cell: (d) => fmt.int(d.in_flight) },
        ]} />
      )}</Loaded>
    </section>
  );
}

// ---------------------------------------------------------------------------
// Models and deployments

const PROVIDERS = ['openai', 'azure', 'anthropic', 'gemini', 'bedrock', 'openai_compatible'];

function ModelForm({ onDone }) {
  const [f, setF] = useState({ name: '', provider: 'openai', model: '', base_url: '', api_key_env: '', weight: '1', priority: '0', price_in: '0', price_out: '0', fallbacks: '' });
  const [error, setError] = useState(null);
  const set = (k) => (e) => setF({ ...f, [k]: e.target.value });
  const submit = async (e) => {
    e.preventDefault();
    const dep = { provider: f.provider, model: f.model, weight: Number(f.weight), priority: Number(f.priority), price_in: Number(f.price_in), price_out: Number(f.price_out) };
    if (f.base_url) dep.base_url = f.base_url;
    if (f.api_key_env) dep.api_key_env = f.api_key_env;
    const body = { name: f.name, deployments: [dep] };
    if (f.fallbacks.trim()) body.fallbacks = listOf(f.fallbacks);
    try { await api('POST', 'models', body); onDone(); } catch (err) { setError(err); }
  };
  return (
    <form class="panel" onSubmit={submit} aria-label="Create a model">
      <h2>Create a model</h2>
      <div class="grid">
        <Field label="Model name"><input required value={f.name} onInput={set('name')} /></Field>
        <Field label="Provider"><select value={f.provider} onChange={set('provider')}>{PROVIDERS.map((p) => <option>{p}</option>)}</select></Field>
        <Field label="Upstream model"><input required value={f.model} onInput={set('model')} /></Field>
        <Field label="Base URL" hint="empty: the provider's"><input value={f.base_url} onInput={set('base_url')} /></Field>
        <Field label="API key variable" hint="e.g. OPENAI_API_KEY"><input value={f.api_key_env} onInput={set('api_key_env')} /></Field>
        <Field label="Weight"><input type="number" min="0" value={f.weight} onInput={set('weight')} /></Field>
        <Field label="Priority"><input type="number" min="0" value={f.priority} onInput={set('priority')} /></Field>
        <Field label="Price in (USD / M tokens)"><input type="number" min="0" step="any" value={f.price_in} onInput={set('price_in')} /></Field>
        <Field label="Price out (USD / M tokens)"><input type="number" min="0" step="any" value={f.price_out} onInput={set('price_out')} /></Field>
        <Field label="Fallbacks" hint="model names, comma-separated"><input value={f.fallbacks} onInput={set('fallbacks')} /></Field>
      </div>
      <button type="submit" class="primary">Create model</button>
      <ErrorBox error={error} />
    </form>
  );
}

// Edit a database model as JSON (deployments, fallbacks, strategy).
function JsonEdit({ title, initial, save, onDone }) {
  const [text, setText] = useState(JSON.stringify(initial, null, 2));
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    let body;
    try { body = JSON.parse(text); } catch (err) { setError({ message: `Not JSON: ${err.message}` }); return; }
    try { await save(body); onDone(); } catch (err) { setError(err); }
  };
  return (
    <form class="panel" onSubmit={submit} aria-label={title}>
      <h2>{title}</h2>
      <Field label="Definition (JSON)"><textarea rows={14} value={text} onInput={(e) => setText(e.target.value)} spellcheck={false} /></Field>
      <button type="submit" class="primary">Save</button> <button type="button" onClick={onDone}>Cancel</button>
      <ErrorBox error={error} />
    </form>
  );
}

export function Models({ can }) {
  const state = useLoad(() => all('models?limit=100'), []);
  const [mode, setMode] = useState(null);
  const write = can('models:write');
  const editable = (m) => ({
    strategy: m.strategy, fallbacks: m.fallbacks,
    deployments: m.deployments.map(({ api_key_set, ...d }) => Object.fromEntries(Object.entries(d).filter(([, v]) => v !== null))),
  });
  return (
    <section aria-labelledby="h-models">
      <div class="head"><h1 id="h-models">Models and deployments</h1>
        {write && !mode && <button type="button" class="primary" onClick={() => setMode('new')}>New model</button>}</div>
      {mode === 'new' && <ModelForm onDone={() => { setMode(null); state.reload(); }} />}
      {mode && mode !== 'new' && <JsonEdit title={`Edit ${mode.name}`} initial={editable(mode)}
        save={(body) => api('PATCH', `models/${mode.id}`, body)} onDone={() => { setMode(null); state.reload(); }} />}
      <Loaded state={state}>{(models) => (
        <Table label="Models" rows={models} empty="No models." columns={[
          { label: 'Model', cell: (m) => <strong>{m.name}</strong> },
          { label: 'Source', cell: (m) => m.source },
          { label: 'Deployments', cell: (m) => (
            <ul class="plain">{m.deployments.map((d) => <li><code>{d.provider}</code> {d.model}{d.base_url ? ` @ ${d.base_url}` : ''} · w{d.weight} p{d.priority} · ${d.price_in}/${d.price_out}</li>)}</ul>) },
          { label: 'Fallbacks', cell: (m) => m.fallbacks.join(', ') || '—' },
          { label: 'Actions', cell: (m) => (write && m.source === 'database' ? (
            <div class="row">
              <button type="button" onClick={() => setMode(m)} aria-label={`Edit ${m.name}`}>Edit</button>
              <Action kind="danger" label={`Delete ${m.name}`} confirm={`Delete model ${m.name}?`}
                action={async () => { await api('DELETE', `models/${m.id}`); state.reload(); }}>Delete</Action>
            </div>) : <small>{m.source === 'config' ? 'config file' : ''}</small>) },
        ]} />
      )}</Loaded>
    </section>
  );
}

// ---------------------------------------------------------------------------
// Guardrail policies and the tester

function Tester({ policies }) {
  const [text, setText] = useState('');
  const [policy, setPolicy] = useState('default');
  const [verdict, setVerdict] = useState(null);
  const [error, setError] = useState(null);
  const run = async (e) => {
    e.preventDefault();
    setError(null); setVerdict(null);
    try { setVerdict(await api('POST', 'guardrails/test', { text, policy })); } catch (err) { setError(err); }
  };
  return (
    <form class="panel" onSubmit={run} aria-label="Guardrail tester">
      <h2>Tester</h2>
      <Field label="Text to check"><textarea rows={4} required value={text} onInput={(e) => setText(e.target.value)} /></Field>
      <Field label="Policy">
        <select value={policy} onChange={(e) => setPolicy(e.target.value)}>
          {policies.map((p) => <option value={p.name}>{p.name}</option>)}
        </select>
      </Field>
      <button type="submit" class="primary">Check</button>
      <ErrorBox error={error} />
      {verdict && (
        <div class="verdict" role="status" data-testid="verdict">
          <p><span class={`badge action-${verdict.action}`}>{verdict.action}</span> {verdict.allowed ? 'allowed' : 'blocked'}</p>
          {verdict.triggered.length ? (
            <ul>{verdict.triggered.map((t) => <li>{t.guardrail}: {t.rule} (bytes {t.start}–{t.end})</li>)}</ul>
          ) : <p>Nothing triggered.</p>}
          <p>Redacted text:</p><pre>{verdict.text}</pre>
        </div>
      )}
    </form>
  );
}

const POLICY_TEMPLATE = { name: 'my-policy', guardrails: [{ detector: 'pii', action: 'redact' }], bindings: { tenants: [], keys: [], models: [] } };

export function Guardrails({ can }) {
  const state = useLoad(() => api('GET', 'guardrails/policies').then((r) => r.data), []);
  const [mode, setMode] = useState(null);
  const write = can('guardrails:write');
  return (
    <section aria-labelledby="h-guardrails">
      <div class="head"><h1 id="h-guardrails">Guardrails</h1>
        {write && !mode && <button type="button" class="primary" onClick={() => setMode('new')}>New policy</button>}</div>
      {mode === 'new' && <JsonEdit title="New policy" initial={POLICY_TEMPLATE}
        save={(body) => api('POST', 'guardrails/policies', body)} onDone={() => { setMode(null); state.reload(); }} />}
      {mode && mode !== 'new' && <JsonEdit title={`Edit ${mode.name}`} initial={{ guardrails: mode.guardrails, bindings: mode.bindings }}
        save={(body) => api('PATCH', `guardrails/policies/${encodeURIComponent(mode.name)}`, body)} onDone={() => { setMode(null); state.reload(); }} />}
      <Loaded state={state}>{(policies) => (
        <>
          <Table label="Guardrail policies" rows={policies} rowKey={(p) => p.name} empty="No policies." columns={[
            { label: 'Policy', cell: (p) => <strong>{p.name}</strong> },
            { label: 'Source', cell: (p) => p.source },
            { label: 'Guardrails', cell: (p) => p.guardrails.map((g) => `${g.type || g.detector || '?'}: ${g.action || ''}`).join(', ') },
            { label: 'Bound to', cell: (p) => ['tenants', 'keys', 'models'].map((k) => (p.bindings[k] || []).length ? `${k} ${(p.bindings[k] || []).join(', ')}` : null).filter(Boolean).join('; ') || '—' },
            { label: 'Actions', cell: (p) => (write && p.source === 'database' ? (
              <div class="row">
                <button type="button" onClick={() => setMode(p)} aria-label={`Edit ${p.name}`}>Edit</button>
                <Action kind="danger" label={`Delete ${p.name}`} confirm={`Delete policy ${p.name}?`}
                  action={async () => { await api('DELETE', `guardrails/policies/${encodeURIComponent(p.name)}`); state.reload(); }}>Delete</Action>
              </div>) : null) },
          ]} />
          <Tester policies={policies} />
        </>
      )}</Loaded>
    </section>
  );
}

// ---------------------------------------------------------------------------
// Cache: GET cache/stats (cache:read) and DELETE cache (cache:write), each
// narrowed by ?tenant= and ?model=. A principal of one tenant sees and
// purges its own tenant only (the API says 403 for another).

const hitRate = (f) => {
  const asked = f.hits + f.semantic_hits + f.misses;
  return asked ? fmt.pct((f.hits + f.semantic_hits) / asked) : '—';
};

// What a purge of TENANT and MODEL ('' for every) takes, in words.
function purgeScope(tenant, model, tenantName, every) {
  const t = tenant ? `tenant ${tenantName(tenant)}` : every ? 'every tenant' : 'this tenant';
  return model ? `model ${model} of ${t}` : t;
}

export function Cache({ me, can }) {
  const every = me.tenant.id === '*';
  const [filter, setFilter] = useState({ tenant: '', model: '' });
  const [target, setTarget] = useState({ tenant: '', model: '' });
  const [done, setDone] = useState(null);
  const state = useLoad(() => api('GET', `cache/stats${query(filter)}`), [filter.tenant, filter.model]);
  const tenants = useLoad(() => (every && can('tenants:read') ? all('tenants?limit=100').catch(() => []) : Promise.resolve([])), []);
  const names = new Map((tenants.data || []).map((t) => [t.id, t.name]));
  const tenantName = (id) => names.get(id) || (id === '*' ? '* (keys of every tenant)' : id);
  const write = can('cache:write');
  const rows = state.data ? state.data.data : [];
  const tenantIds = [...new Set([...rows.map((r) => r.tenant), ...names.keys()])];
  const models = [...new Set(rows.map((r) => r.model))].sort();
  const purge = async () => {
    const scope = purgeScope(target.tenant, target.model, tenantName, every);
    if (!window.confirm(`Purge every cached answer of ${scope}? Clients get fresh answers (and pay for them) until the cache fills again.`)) return;
    setDone(null);
    const r = await api('DELETE', `cache${query(target)}`);
    setDone({ ...r, scope });
    state.reload();
  };
  const choose = (set, value) => (k) => (e) => set({ ...value, [k]: e.target.value });
  const tenantSelect = (value, onChange, any) => (
    <select value={value} onChange={onChange}>
      <option value="">{any}</option>
      {tenantIds.map((id) => <option value={id}>{tenantName(id)}</option>)}
    </select>
  );
  return (
    <section aria-labelledby="h-cache">
      <div class="head"><h1 id="h-cache">Cache</h1>
        <form class="row" aria-label="Cache filters" onSubmit={(e) => e.preventDefault()}>
          {every && <Field label="Tenant">{tenantSelect(filter.tenant, choose(setFilter, filter)('tenant'), 'Every tenant')}</Field>}
          <Field label="Model"><select value={filter.model} onChange={choose(setFilter, filter)('model')}>
            <option value="">Every model</option>
            {[...new Set([...models, filter.model].filter(Boolean))].map((m) => <option value={m}>{m}</option>)}
          </select></Field>
          <button type="button" onClick={state.reload}>Refresh</button>
        </form></div>
      <Loaded state={state}>{(s) => (
        <>
          <div class="cards" data-testid="cache-figures">
            <div class="card"><span>Entries</span><strong data-testid="cache-entries">{fmt.int(s.entries)}</strong>
              <small>{fmt.bytes(s.bytes)} held</small></div>
            <div class="card"><span>Hit rate</span><strong>{hitRate(s)}</strong>
              <small>hits of hits and misses</small></div>
            <div class="card"><span>Exact hits</span><strong data-testid="cache-hits">{fmt.int(s.hits)}</strong></div>
            <div class="card"><span>Semantic hits</span><strong>{fmt.int(s.semantic_hits)}</strong>
              <small>{s.semantic ? 'semantic cache on' : 'semantic cache off'}</small></div>
            <div class="card"><span>Misses</span><strong>{fmt.int(s.misses)}</strong></div>
            <div class="card"><span>Bypasses</span><strong>{fmt.int(s.bypasses)}</strong>
              <small>skipped the lookup</small></div>
          </div>
          <p class="hint">Counted since each cache owner started ({s.instances} answered){every ? '' : `; tenant ${me.tenant.name || me.tenant.id} only`}.</p>
          <Table label="Cache by tenant and model" rows={rows} rowKey={(r) => `${r.tenant}\n${r.model}`}
            empty="Nothing cached and no lookups yet." columns={[
              ...(every ? [{ label: 'Tenant', cell: (r) => tenantName(r.tenant) }] : []),
              { label: 'Model', cell: (r) => r.model },
              { label: 'Entries', cell: (r) => fmt.int(r.entries) },
              { label: 'Memory', cell: (r) => fmt.bytes(r.bytes) },
              { label: 'Hits', cell: (r) => fmt.int(r.hits) },
              { label: 'Semantic hits', cell: (r) => fmt.int(r.semantic_hits) },
              { label: 'Misses', cell: (r) => fmt.int(r.misses) },
              { label: 'Bypasses', cell: (r) => fmt.int(r.bypasses) },
              { label: 'Hit rate', cell: hitRate },
            ]} />
        </>
      )}</Loaded>
      {write && (
        <form class="panel inline" aria-label="Purge the cache" onSubmit={(e) => e.preventDefault()}>
          {every && <Field label="Purge tenant">{tenantSelect(target.tenant, choose(setTarget, target)('tenant'), 'Every tenant')}</Field>}
          <Field label="Purge model" hint="empty: every model">
            <input list="cache-models" value={target.model} onInput={choose(setTarget, target)('model')} placeholder="every model" />
          </Field>
          <datalist id="cache-models">{models.map((m) => <option value={m} />)}</datalist>
          <Action kind="danger" action={purge}>
            {`Purge ${purgeScope(target.tenant, target.model, tenantName, every)}`}
          </Action>
          {done && <p role="status" data-testid="purged">Purged {fmt.int(done.purged)} {done.purged === 1 ? 'entry' : 'entries'} of {done.scope} on {done.instances} cache {done.instances === 1 ? 'owner' : 'owners'}.</p>}
        </form>
      )}
    </section>
  );
}

// ---------------------------------------------------------------------------
// Audit log

export function Audit() {
  const [action, setAction] = useState('');
  const [pages, setPages] = useState([]);
  const state = useLoad(async () => {
    const page = await api('GET', `audit${query({ action, limit: 50 })}`);
    setPages([page]);
    return page;
  }, [action]);
  const rows = useMemo(() => pages.flatMap((p) => p.data), [pages]);
  const last = pages[pages.length - 1];
  const more = async () => {
    const page = await api('GET', `audit${query({ action, limit: 50, cursor: last.next_cursor })}`);
    setPages([...pages, page]);
  };
  return (
    <section aria-labelledby="h-audit">
      <div class="head"><h1 id="h-audit">Audit log</h1>
        <Field label="Action"><input value={action} onChange={(e) => setAction(e.target.value)} placeholder="any, e.g. key.create" /></Field></div>
      <Loaded state={state}>{() => (
        <>
          <Table label="Audit log" rows={rows} empty="No changes recorded." columns={[
            { label: 'When', cell: (a) => fmt.time(a.at) },
            { label: 'Who', cell: (a) => `${a.actor_type}:${a.actor_id}` },
            { label: 'Action', cell: (a) => a.action },
            { label: 'Target', cell: (a) => <>{a.target_type} <code>{a.target_id}</code></> },
            { label: 'Change', cell: (a) => <details><summary>show</summary><pre>{JSON.stringify({ before: a.before, after: a.after }, null, 2)}</pre></details> },
          ]} />
          {last && last.next_cursor && <Action action={more}>Load more</Action>}
        </>
      )}</Loaded>
    </section>
  );
}
