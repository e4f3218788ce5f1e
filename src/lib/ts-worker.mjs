// Bootstrap for worker threads: enables TypeScript in the thread (typescript-loader.mjs;
// module hooks are per thread) and then loads the TypeScript entry named in workerData.entry.
import { workerData } from 'node:worker_threads';
import { enableTypeScript } from './typescript-loader.mjs';

await enableTypeScript();
await import(workerData.entry);
