// Bootstrap for worker threads: loads the TypeScript entry named in
// workerData.entry. Node ≥ 22.18 / 24 strips the types itself
// (process.features.typescript, in every thread), which costs nothing; the tsx
// loader costs memory in every thread that registers it (see bin/digits.mjs),
// so it is only the fallback for older Node, registered here because module
// hooks are per-thread (and imported lazily, so that it is not even loaded
// where Node can do it).
import { workerData } from 'node:worker_threads';

if (!process.features.typescript) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(workerData.entry);
