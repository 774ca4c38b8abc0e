// Installs the built OHIF Viewer (node_modules/@ohif/app/dist, from the committed lock file)
// into DEST, the directory the hub serves at /ohif/:
//   - the bundles are built for the site root; their webpack public path becomes /ohif/;
//   - index.html is replaced by a small one with no inline script (the hub's Content-Security-
//     Policy forbids them) that loads app-config.js, which the hub generates at run time;
//   - the microscopy viewer library and the style sheets' fonts, named from the site root, are
//     named under /ohif/ too;
//   - the service worker files are left out (nothing is cached behind the hub's back, and the
//     worker's loader would fetch from the internet);
//   - text and WebAssembly files get a .gz beside them, sent to browsers that accept gzip.
// Usage: node install.mjs DEST
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { gzipSync } from "node:zlib";

const dest = process.argv[2];
if (!dest) {
  console.error("usage: node install.mjs DEST");
  process.exit(2);
}
const here = new URL(".", import.meta.url).pathname;
const dist = join(here, "node_modules", "@ohif", "app", "dist");
const version = JSON.parse(
  readFileSync(join(dist, "..", "package.json"), "utf8"),
).version;
const BASE = "/ohif/";

function fail(msg) {
  console.error(`ohif install: ${msg}`);
  process.exit(1);
}

rmSync(dest, { recursive: true, force: true });
mkdirSync(dest, { recursive: true });
const skip = new Set([
  "index.html",
  "app-config.js",
  "sw.js",
  "init-service-worker.js",
  "_headers",
  "_redirects",
]);
cpSync(dist, dest, {
  recursive: true,
  filter: (src) => !skip.has(relative(dist, src)) && !src.endsWith(".map"),
});

// One pass over the bundles and style sheets, for what they name from the site root:
//   - the webpack runtime in the app bundle and in each worker bundle: the public path;
//   - the microscopy mode's viewer library (loaded by URL, not by webpack);
//   - the fonts the style sheets name.
const ROOT_PATH = '__webpack_require__.p = "/";';
const MICROSCOPY = "'/dicom-microscopy-viewer/dicomMicroscopyViewer.min.js'";
let patched = 0;
let microscopy = 0;
for (const name of readdirSync(dest)) {
  const file = join(dest, name);
  if (name.endsWith(".js")) {
    let text = readFileSync(file, "utf8");
    const n = text.split(ROOT_PATH).length - 1;
    if (n > 1) fail(`${name} sets its public path ${n} times`);
    const m = text.split(MICROSCOPY).length - 1;
    if (n === 0 && m === 0) continue;
    if (n === 1) {
      text = text.replace(ROOT_PATH, `__webpack_require__.p = "${BASE}";`);
      ++patched;
    }
    text = text.replaceAll(MICROSCOPY, `'${BASE}${MICROSCOPY.slice(2)}`);
    microscopy += m;
    writeFileSync(file, text);
  } else if (name.endsWith(".css")) {
    const text = readFileSync(file, "utf8");
    writeFileSync(file, text.replace(/url\(\/(?!\/)/g, `url(${BASE}`));
  }
}
if (microscopy === 0)
  fail("no bundle loads the microscopy viewer from its root path");
if (
  !existsSync(
    join(dest, "dicom-microscopy-viewer", "dicomMicroscopyViewer.min.js"),
  )
)
  fail("the microscopy viewer library is missing");

// The entry points, from the original index.html.
const original = readFileSync(join(dist, "index.html"), "utf8");
const scripts = [
  ...original.matchAll(/<script defer(?:="defer")? src="\/([^"]+\.js)"/g),
].map((m) => m[1]);
const styles = [
  ...original.matchAll(/<link href="\/([^"]+\.css)" rel="stylesheet">/g),
].map((m) => m[1]);
const appBundle = scripts.find((s) => s.startsWith("app.bundle."));
if (!appBundle || !original.includes('window.PUBLIC_URL="/"')) {
  fail(
    "index.html no longer has the shape this installer knows (app bundle, PUBLIC_URL)",
  );
}
if (
  !readFileSync(join(dest, appBundle), "utf8").includes(
    `__webpack_require__.p = "${BASE}"`,
  )
) {
  fail(`${appBundle} has no public path to set`);
}
for (const f of [...scripts, ...styles])
  if (!existsSync(join(dest, f))) fail(`${f} is missing`);
const index = `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width,initial-scale=1,shrink-to-fit=no">
<meta name="theme-color" content="#000000">
<title>医联 · 高级阅片 (OHIF ${version})</title>
<link rel="icon" href="${BASE}assets/favicon.ico">
<script src="${BASE}app-config.js"></script>
${scripts.map((s) => `<script defer src="${BASE}${s}"></script>`).join("\n")}
${styles.map((s) => `<link href="${BASE}${s}" rel="stylesheet">`).join("\n")}
</head>
<body>
<noscript>高级阅片需要 JavaScript。</noscript>
<div id="react-portal"></div>
<div id="root"></div>
</body>
</html>
`;
writeFileSync(join(dest, "index.html"), index);

// Pre-compressed copies of what compresses.
const compressible = /\.(js|css|html|json|svg|wasm|mjs|txt)$/;
let gz = 0;
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) walk(p);
    else if (
      compressible.test(name) &&
      st.size > 1024 &&
      name !== "index.html"
    ) {
      writeFileSync(`${p}.gz`, gzipSync(readFileSync(p), { level: 6 }));
      ++gz;
    }
  }
};
walk(dest);
writeFileSync(join(dest, "VERSION"), `${version}\n`);
console.log(
  `ohif ${version}: ${patched} bundles rebased to ${BASE}, ${gz} files compressed, in ${dest}`,
);
