// One error model. An error that stands for an HTTP answer (not found, conflict,
// bad input, unavailable) extends ServiceError: it carries its status and its
// problem type, and src/api/plugins/problem-details.ts (problemFor) maps it, and
// everything else (zod, fastify, Redis), in one place. Anything that is not a
// ServiceError or one of those is a bug: 500.
export abstract class ServiceError extends Error {
  /** The HTTP status this error stands for (`statusCode`, the name fastify and its plugins use). */
  abstract readonly statusCode: number;
  /** Problem type slug (urn:digits:problem:<slug>); default from the class name: JobNotFoundError → job-not-found. */
  readonly problemSlug?: string;
  /** Problem title; default from the class name: JobNotFoundError → "Job not found". */
  readonly problemTitle?: string;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    // The class's own name (e.g. JobNotFoundError), which is also its default problem type.
    this.name = new.target.name;
  }

  /** The problem type of this error: [slug, title]. */
  problemType(): [slug: string, title: string] {
    const [slug, title] = problemTypeOf(this.name);
    return [this.problemSlug ?? slug, this.problemTitle ?? title];
  }
}

/** "JobNotFoundError" → ["job-not-found", "Job not found"]. */
export function problemTypeOf(errorName: string): [slug: string, title: string] {
  const words = errorName.replace(/Error$/, '').split(/(?=[A-Z])/).map((word) => word.toLowerCase());
  const title = words.join(' ');
  return [words.join('-'), title.charAt(0).toUpperCase() + title.slice(1)];
}
