// Failures a test queues for a recorder's next calls: each one is taken by the first call of
// its method (or of any method, when it names none), which then throws it instead of recording.

export interface FailNext<M extends string> {
  add(error: Error, method: M | undefined): void;
  /** Throws the first failure meant for `method`, if one waits. */
  check(method: M): void;
}

export function failNext<M extends string>(): FailNext<M> {
  const waiting: { error: Error; method: M | undefined }[] = [];
  return {
    add(error, method) {
      waiting.push({ error, method });
    },
    check(method) {
      const i = waiting.findIndex((f) => f.method === undefined || f.method === method);
      if (i < 0) return;
      const [f] = waiting.splice(i, 1);
      throw f!.error;
    },
  };
}
