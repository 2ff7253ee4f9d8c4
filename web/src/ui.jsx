// Shared pieces: loading, empty and error states, tables, forms, charts.
import { useEffect, useRef, useState, useCallback } from 'preact/hooks';
import uPlot from 'uplot';

// Load with FN (async) when DEPS change; { data, error, loading, reload }.
export function useLoad(fn, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const reload = useCallback(async () => {
    const n = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await fn();
      if (n === seq.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (n === seq.current) setState({ data: null, error, loading: false });
    }
  }, deps);
  useEffect(() => { reload(); }, [reload]);
  return { ...state, reload };
}

// Call RELOAD every MS while the page is shown.
export function useEvery(ms, reload) {
  useEffect(() => {
    const t = setInterval(reload, ms);
    return () => clearInterval(t);
  }, [ms, reload]);
}

export function Loading({ what = 'Loading' }) {
  return <p class="loading" role="status" aria-live="polite">{what}…</p>;
}

export function Empty({ children }) {
  return <p class="empty">{children}</p>;
}

// An API error: its message and the request id to quote.
export function ErrorBox({ error, title }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      <strong>{title || 'Error'}{error.status ? ` (${error.status})` : ''}:</strong> {error.message}
      {error.requestId && <div class="rid">request id <code>{error.requestId}</code></div>}
    </div>
  );
}

// State of a load: loading, error, or CHILDREN(data).
export function Loaded({ state, children }) {
  if (state.error) return <ErrorBox error={state.error} />;
  if (state.data === null) return <Loading />;
  return children(state.data);
}

// A table: COLUMNS [{ label, cell(row) }], ROWS; EMPTY text when none.
export function Table({ columns, rows, empty = 'Nothing yet.', label, rowKey = (r) => r.id }) {
  if (!rows.length) return <Empty>{empty}</Empty>;
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label={label}>
      <table>
        {label && <caption class="sr-only">{label}</caption>}
        <thead><tr>{columns.map((c) => <th scope="col">{c.label}</th>)}</tr></thead>
        <tbody>
          {rows.map((r) => <tr key={rowKey(r)}>{columns.map((c) => <td data-label={c.label}>{c.cell(r)}</td>)}</tr>)}
        </tbody>
      </table>
    </div>
  );
}

// A labelled form field; the input gets an id tied to the label.
let fieldSeq = 0;
export function Field({ label, hint, children }) {
  const id = useRef(`f${++fieldSeq}`).current;
  const child = Array.isArray(children) ? children[0] : children;
  const input = child && child.props ? { ...child, props: { ...child.props, id } } : child;
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {input}
      {hint && <small>{hint}</small>}
    </div>
  );
}

// A button that runs an async ACTION, disabled while it runs; errors show beside it.
export function Action({ action, children, kind = '', confirm: ask, label }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async () => {
    if (ask && !window.confirm(ask)) return;
    setBusy(true); setError(null);
    try { await action(); } catch (e) { setError(e); }
    setBusy(false);
  };
  return (
    <span class="action">
      <button type="button" class={kind} disabled={busy} onClick={run} aria-label={label}>{children}</button>
      {error && <ErrorBox error={error} />}
    </span>
  );
}

// Copy TEXT to the clipboard, saying so.
export function CopyButton({ text, label = 'Copy' }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = document.createElement('textarea');
      area.value = text; document.body.appendChild(area); area.select();
      document.execCommand('copy'); area.remove();
    }
    setDone(true); setTimeout(() => setDone(false), 2000);
  };
  return <button type="button" onClick={copy}>{done ? 'Copied' : label}</button>;
}

export const fmt = {
  int: (n) => (n ?? 0).toLocaleString('en-US'),
  usd: (n) => `$${(n ?? 0).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: (n ?? 0) < 1 ? 6 : 2 })}`,
  pct: (n) => `${((n ?? 0) * 100).toFixed(1)}%`,
  time: (s) => (s ? new Date(s).toLocaleString('en-GB', { timeZone: 'UTC' }) + ' UTC' : '—'),
  unix: (s) => (s ? new Date(s * 1000).toLocaleString('en-GB', { timeZone: 'UTC' }) + ' UTC' : '—'),
  bytes: (n) => {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = n ?? 0, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return `${i ? v.toFixed(1) : v} ${units[i]}`;
  },
  ms: (n) => (n === null || n === undefined ? '—' : `${Math.round(n)} ms`),
};

const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

// A uPlot chart: X (Unix seconds) and SERIES [{ label, values }]; fills
// its container's width and follows it.
export function Chart({ title, x, series, yLabel, fmtY = (v) => v, height = 220, bars = false }) {
  const box = useRef(null);
  useEffect(() => {
    if (!box.current || !x.length) return undefined;
    const opts = {
      width: box.current.clientWidth || 600,
      height,
      legend: { live: true },
      cursor: { focus: { prox: 16 } },
      scales: { x: { time: true } },
      axes: [{}, { label: yLabel, size: 80, values: (u, vals) => vals.map(fmtY) }],
      series: [{}, ...series.map((s, i) => ({
        label: s.label,
        stroke: PALETTE[i % PALETTE.length],
        fill: bars ? `${PALETTE[i % PALETTE.length]}55` : undefined,
        width: 2,
        paths: bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined,
        points: { show: x.length < 40 },
        value: (u, v) => (v === null || v === undefined ? '—' : fmtY(v)),
      }))],
    };
    const plot = new uPlot(opts, [x, ...series.map((s) => s.values)], box.current);
    const ro = new ResizeObserver(() => plot.setSize({ width: box.current.clientWidth, height }));
    ro.observe(box.current);
    return () => { ro.disconnect(); plot.destroy(); };
  }, [x, series, height]);
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      {x.length ? <div ref={box} role="img" aria-label={`${title}: chart`} /> : <Empty>No data in this period.</Empty>}
    </figure>
  );
}

// A meter of USED against LIMIT.
export function Meter({ used, limit, label }) {
  const share = limit > 0 ? Math.min(1, used / limit) : 0;
  const level = share >= 0.9 ? 'high' : share >= 0.7 ? 'mid' : 'low';
  return (
    <div class={`meter ${level}`} role="meter" aria-label={label} aria-valuemin={0}
         aria-valuemax={limit} aria-valuenow={used}>
      <div class="bar" style={{ width: `${(share * 100).toFixed(1)}%` }} />
    </div>
  );
}
