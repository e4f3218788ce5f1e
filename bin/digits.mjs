#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, so a fresh clone needs
// nothing but `npm ci` before `npx digits …` works.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
