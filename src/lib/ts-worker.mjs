// Bootstrap for worker threads: registers tsx in the thread (module hooks are
// per-thread) and then loads the TypeScript entry named in workerData.entry.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
