import { InferencePool } from './src/serving/inference-pool.ts';
const t = Date.now();
const pool = await InferencePool.start(1, 'wasm');
console.log('pool ready ms', Date.now() - t);
await pool.close();
