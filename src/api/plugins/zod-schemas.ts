// Route schemas are zod schemas, next to their routes:
//   app.withTypeProvider<ZodTypeProvider>().get('/x', { schema: { querystring: Query } }, handler)
// gives the handler typed, parsed (defaults applied) request parts. A failure
// reaches the problem+json handler as a ZodError with validationContext set
// (body → 422, params/querystring/headers → 400). Responses are plain
// JSON.stringify: what they look like is specified in openapi.yaml, and the
// contract test checks real responses against it. `schema: { hide: true }` keeps a
// route out of openapi.yaml (static files, the console); the contract test skips it.
import type { FastifyInstance, FastifyTypeProvider } from 'fastify';
import { z } from 'zod';

declare module 'fastify' {
  interface FastifySchema {
    /** Not part of the documented API (not in openapi.yaml). */
    hide?: boolean;
  }
}

export interface ZodTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends z.ZodType ? z.output<this['schema']> : unknown;
  serializer: this['schema'] extends z.ZodType ? z.input<this['schema']> : unknown;
}

export class SchemaNotZodError extends Error {
  constructor(method: string, url: string, part: string) {
    super(`${method} ${url}: schema.${part} must be a zod schema (see src/api/plugins/zod-schemas.ts)`);
    this.name = 'SchemaNotZodError';
  }
}

export function useZodSchemas(app: FastifyInstance): void {
  app.setValidatorCompiler(({ schema, method, url, httpPart }) => {
    if (!(schema instanceof z.ZodType)) throw new SchemaNotZodError(method, url, httpPart ?? 'unknown');
    return (data: unknown) => {
      // fastify passes null when there is no body; let `.optional()`/`.default()` see it as absent.
      const result = schema.safeParse(httpPart === 'body' && data === null ? undefined : data);
      return result.success ? { value: result.data } : { error: result.error };
    };
  });
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
}
