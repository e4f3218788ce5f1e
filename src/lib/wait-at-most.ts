// Bounded waits for shutdown paths: wait for some work, but never longer than a grace period,
// and leave no timer behind to keep the process up.

/** Resolves when `work` settles (fulfilled or rejected) or after `ms` milliseconds, whichever is first. */
export async function waitAtMost(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  try {
    await Promise.race([work.then(() => undefined, () => undefined), grace]);
  } finally {
    clearTimeout(timer);
  }
}
