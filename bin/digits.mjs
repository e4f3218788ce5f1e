#!/usr/bin/env node
// Runs the TypeScript sources directly, so a fresh clone needs nothing but
// `npm ci` before `npx digits …` works (src/lib/typescript-loader.mjs says how).
import { enableTypeScript } from '../src/lib/typescript-loader.mjs';

await enableTypeScript();
await import('../src/cli/main.ts');
