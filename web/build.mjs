// Build the dashboard: src/main.jsx (Preact) and uPlot bundled by esbuild
// into one minified app.js, uPlot's CSS and ours into app.css, and
// index.html, written to OUT (default: web/dist).
//   node web/build.mjs [--out DIR]
// CMake runs this (AIGW_DASHBOARD) and embeds OUT's files in the binary;
// nothing is fetched at run time. The output depends only on the sources
// and the locked packages (no dates, no paths), so builds are reproducible.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const at = process.argv.indexOf('--out');
const OUT = path.resolve(at > 0 ? process.argv[at + 1] : path.join(HERE, 'dist'));
fs.mkdirSync(OUT, { recursive: true });

await esbuild.build({
  entryPoints: [path.join(HERE, 'src', 'main.jsx')],
  outfile: path.join(OUT, 'app.js'),
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});

const css = [
  fs.readFileSync(path.join(HERE, 'node_modules', 'uplot', 'dist', 'uPlot.min.css'), 'utf8'),
  fs.readFileSync(path.join(HERE, 'src', 'app.css'), 'utf8'),
].join('\n');
const minCss = await esbuild.transform(css, { loader: 'css', minify: true });
fs.writeFileSync(path.join(OUT, 'app.css'), minCss.code);
fs.copyFileSync(path.join(HERE, 'src', 'index.html'), path.join(OUT, 'index.html'));
for (const f of ['index.html', 'app.js', 'app.css']) {
  console.log(`${f} ${fs.statSync(path.join(OUT, f)).size} bytes`);
}
