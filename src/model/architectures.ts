// The architectures' names, apart from the tfjs model (seed-net.ts): the registry's types, the
// job schema and the recipes need only the names, and importing tfjs costs a process that never
// runs a model (the worker's main thread, the API's job routes) about 95 MB of memory.
export const ARCHITECTURE_NAMES = ['seed', 'compact'] as const;
export type ArchitectureName = (typeof ARCHITECTURE_NAMES)[number];
