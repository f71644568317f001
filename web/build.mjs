// Builds the dashboard: web/src -> web/dist (bundled, minified, gzipped next to each file).
// Usage: node web/build.mjs   (from anywhere; fetches nothing, uPlot comes from node_modules)
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const webDir = path.dirname(fileURLToPath(import.meta.url));
const srcDir = path.join(webDir, 'src');
const distDir = path.join(webDir, 'dist');
const assetsDir = path.join(distDir, 'assets');

fs.rmSync(distDir, { recursive: true, force: true });
fs.mkdirSync(assetsDir, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  target: ['es2020'],
  logLevel: 'warning',
  absWorkingDir: webDir,
  legalComments: 'none',
};
const results = await Promise.all([
  build({ ...common, entryPoints: [path.join(srcDir, 'main.js')], outfile: path.join(assetsDir, 'app.js'), format: 'esm' }),
  build({ ...common, entryPoints: [path.join(srcDir, 'style.css')], outfile: path.join(assetsDir, 'app.css') }),
]);
const warnings = results.flatMap((r) => r.warnings);
if (warnings.length > 0) {
  console.error(`build: ${warnings.length} warning(s)`);
  process.exit(1);
}
fs.copyFileSync(path.join(srcDir, 'index.html'), path.join(distDir, 'index.html'));

const outputs = ['index.html', 'assets/app.js', 'assets/app.css'];
let rawTotal = 0;
let gzipTotal = 0;
for (const name of outputs) {
  const file = path.join(distDir, name);
  const raw = fs.readFileSync(file);
  const gz = zlib.gzipSync(raw, { level: 9 });
  fs.writeFileSync(`${file}.gz`, gz);
  rawTotal += raw.length;
  gzipTotal += gz.length;
  console.log(`${name.padEnd(16)} ${String(raw.length).padStart(8)} B  gzip ${String(gz.length).padStart(7)} B`);
}
console.log(`${'total'.padEnd(16)} ${String(rawTotal).padStart(8)} B  gzip ${String(gzipTotal).padStart(7)} B`);
