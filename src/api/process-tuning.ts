// V8's old generation in the API process grows by 20 % over what survives a full collection
// (--heap-growing-percent=20) instead of V8's default factor (up to 4×). Under load the
// requests in flight survive young-generation collections and are promoted; with the default
// factor the old generation then grew by ~60 MB of garbage that no collection reclaimed once
// the load stopped (no allocation, no collection), holding the malloc'd buffers it referenced.
// With 2 MB semi-spaces (`--max-semi-space-size=2`, which V8 reads only at start-up, so it is
// a command-line flag: `npm start`, the Dockerfiles' NODE_OPTIONS, the benches) RSS after a
// load run settles at +15–20 % instead of +110 %, for ~6–14 % more CPU on batched requests
// (bench/predict-load.ts, bench/api-rss.ts; README "API memory", which also has the
// measurements of --optimize-for-size: leaner still, but 15–55 % slower). The growing factor
// is read at every collection, so the CLI sets it here, before the `serve` or `up` command's
// modules load (src/cli/main.ts); the inference threads inherit it, the training worker is
// another process and keeps V8's defaults.
import v8 from 'node:v8';

export function sizeHeapsForMemory(): void {
  v8.setFlagsFromString('--heap-growing-percent=20');
}
