// V8 sizes the API process's heaps for memory rather than speed (--optimize-for-size). Under
// load the requests in flight survive young-generation collections, and with V8's default
// sizing the old generation then grew by ~60 MB of garbage that stayed after the load (no
// allocation, so no collection), with the malloc'd buffers it kept alive. With it the API
// stays within ~10 % of its idle RSS after a load run and idles lower, at the same throughput
// (bench/api-rss.ts, bench/predict-load.ts; README "API memory"). The flag is read at every
// sizing decision, but the heap grown while the app's modules load stays: the CLI sets it
// before it imports the `serve` or `up` command (src/cli/main.ts). Inference threads started
// later inherit it; the training worker is another process and keeps V8's defaults.
import v8 from 'node:v8';

export function sizeHeapsForMemory(): void {
  v8.setFlagsFromString('--optimize-for-size');
}
