// Lets this thread import the project's .ts files. Node ≥ 22.18 / 24 strips the types itself
// (process.features.typescript, in every thread), which costs nothing; the tsx loader
// (esbuild and its module hooks) costs memory in every thread that registers it (measured on
// Node 24: API idle RSS ~5–19 MB, training worker peak ~20 MB), so it is only the fallback for
// older Node, imported lazily so that it is not even loaded where Node can do it. Module hooks
// are per thread: the CLI (bin/digits.mjs) and each worker thread's bootstrap (ts-worker.mjs)
// call this. The sources keep to erasable syntax (tsconfig erasableSyntaxOnly) for it.
export async function enableTypeScript() {
  if (process.features.typescript) return;
  const { register } = await import('tsx/esm/api');
  register();
}
