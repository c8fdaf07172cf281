// Bundles the Mini App's ES modules (one entry per page, shared chunks split out) into
// webapp/static/dist/, minified, with a .gz and a .br beside every file: aiohttp's static
// handler serves the precompressed sibling the browser accepts.
import { build } from "esbuild";
import { readdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, gzipSync, constants } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static", "dist");
const pages = ["feed", "markets", "chart", "watchlist", "settings", "plans", "record", "plain"];

rmSync(out, { recursive: true, force: true });
const result = await build({
  metafile: true,
  entryPoints: [...pages.map((p) => join(here, "src", "pages", `${p}.js`)), join(here, "src", "app.css")],
  outdir: out,
  bundle: true,
  splitting: true,
  format: "esm",
  minify: true,
  target: ["es2020"],
  legalComments: "linked",
  entryNames: "[name]",
  chunkNames: "chunk-[hash]",
  logLevel: "warning",
});
// Each page's static imports (shared chunks), for <link rel="modulepreload"> in its template.
const manifest = {};
for (const [file, meta] of Object.entries(result.metafile.outputs)) {
  if (!meta.entryPoint || !file.endsWith(".js")) continue;
  manifest[file.split("/").pop()] = meta.imports.filter((i) => i.kind === "import-statement").map((i) => i.path.split("/").pop());
}
writeFileSync(join(out, "manifest.json"), JSON.stringify(manifest, null, 1));
// The license texts of the bundled libraries travel with the bundle.
copyFileSync(join(here, "node_modules", "lightweight-charts", "LICENSE"), join(out, "LICENSE-lightweight-charts.txt"));
writeFileSync(
  join(out, "NOTICE-lightweight-charts.txt"),
  "TradingView Lightweight Charts™\nCopyright (c) 2026 TradingView, Inc. https://www.tradingview.com/\n" +
    "Licensed under the Apache License, Version 2.0 (LICENSE-lightweight-charts.txt)\n",
);
for (const name of readdirSync(out)) {
  if (!/\.(js|css|txt)$/.test(name)) continue;
  const body = readFileSync(join(out, name));
  writeFileSync(join(out, `${name}.gz`), gzipSync(body, { level: 9 }));
  writeFileSync(
    join(out, `${name}.br`),
    brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
  );
}
