#!/usr/bin/env node
// Runs the TypeScript sources directly, so a fresh clone needs nothing but
// `npm ci` before `npx digits …` works. Node ≥ 22.18 / 24 strips the types
// itself (process.features.typescript), which costs nothing; the tsx loader
// (esbuild and its module hooks, set up in every thread) costs memory per
// thread (measured on Node 24: API idle RSS ~5–19 MB, training worker peak
// ~20 MB), so it is only the fallback for older Node, imported lazily so
// that it is not even loaded where Node can do it.
// The sources keep to erasable syntax (tsconfig erasableSyntaxOnly) for this.
if (!process.features.typescript) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import('../src/cli/main.ts');
