// Type-checks the front end and bundles it into OUT (default dist/): index.html and assets/
// with content-hashed names, each also gzipped for thin links. `node build.mjs OUT`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { gzipSync, constants } from 'node:zlib';
import { createRequire } from 'node:module';
import * as esbuild from 'esbuild';

const out = resolve(process.argv[2] ?? 'dist');
const require = createRequire(import.meta.url);
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '--noEmit', '-p', '.'], {
  stdio: 'inherit',
});

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });
const result = await esbuild.build({
  entryPoints: ['src/main.tsx'],
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  format: 'esm',
  target: ['chrome110', 'firefox115'],
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  metafile: true,
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((n) => n.endsWith('.js'));
const css = outputs.find((n) => n.endsWith('.css'));
if (!js || !css) throw new Error('the bundle lacks its script or its style sheet');
const html = readFileSync('index.html', 'utf8')
  .replace('%SCRIPT%', `/assets/${js}`)
  .replace('%STYLE%', `/assets/${css}`);
writeFileSync(join(out, 'index.html'), html);

const gzip = (file) =>
  writeFileSync(
    `${file}.gz`,
    gzipSync(readFileSync(file), { level: constants.Z_BEST_COMPRESSION }),
  );
gzip(join(out, 'index.html'));
for (const name of readdirSync(join(out, 'assets'))) {
  if (!name.endsWith('.map')) gzip(join(out, 'assets', name));
}
console.log(`web: ${js} and ${css} in ${out}`);
