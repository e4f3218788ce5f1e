// JSON from clients, parsed once in one way: a syntax error says where it is, and
// keys that could reach an object's prototype (`__proto__`, and `constructor`
// holding a `prototype`) are refused on purpose, as fastify's own parser does,
// with an answer that says so instead of calling valid JSON invalid.

export class MalformedJsonError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'MalformedJsonError';
  }
}

export class ForbiddenJsonKeyError extends Error {
  readonly key: string;
  readonly path: string;
  constructor(key: string, path: string) {
    super(`the JSON key ${JSON.stringify(key)}${path ? ` at ${path}` : ''} is refused on purpose (it could reach object prototypes); rename or drop it`);
    this.key = key;
    this.path = path;
    this.name = 'ForbiddenJsonKeyError';
  }
}

/** The first forbidden key in `value`, breadth-first, with its dotted path. */
function findForbiddenKey(value: unknown): ForbiddenJsonKeyError | undefined {
  const queue: [unknown, string][] = [[value, '']];
  while (queue.length > 0) {
    const [node, path] = queue.shift()!;
    if (typeof node !== 'object' || node === null) continue;
    if (Array.isArray(node)) {
      node.forEach((item, i) => queue.push([item, `${path}[${i}]`]));
      continue;
    }
    if (Object.prototype.hasOwnProperty.call(node, '__proto__')) return new ForbiddenJsonKeyError('__proto__', path);
    const record = node as Record<string, unknown>;
    const ctor = Object.prototype.hasOwnProperty.call(node, 'constructor') ? record.constructor : undefined;
    if (typeof ctor === 'object' && ctor !== null && Object.prototype.hasOwnProperty.call(ctor, 'prototype')) {
      return new ForbiddenJsonKeyError('constructor', path);
    }
    for (const key of Object.keys(node)) queue.push([record[key], path ? `${path}.${key}` : key]);
  }
  return undefined;
}

/** Parses client JSON; throws MalformedJsonError or ForbiddenJsonKeyError. */
export function parseClientJson(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new MalformedJsonError((error as Error).message);
  }
  // Only bodies that mention a forbidden key pay for the walk (the predict path sends 784 numbers per image).
  if (text.includes('"__proto__"') || text.includes('"constructor"') || text.includes('\\u')) {
    const forbidden = findForbiddenKey(value);
    if (forbidden) throw forbidden;
  }
  return value;
}
