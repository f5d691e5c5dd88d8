// The background loop of the lease holders (the audit sealer, retention, the search indexer):
// run a step, go on at once when it says there is more, else wait as long as it says; a failed
// step is reported and waited out like any other; stop() wakes a waiting loop and returns once the
// step under way has finished.

export interface StepLoop {
  start(): void;
  stop(): Promise<void>;
}

/** `pauseAfter` gives the wait in ms after a step's result (or after a failure), or 'now'. */
export function createStepLoop<S>(step: () => Promise<S>, pauseAfter: (result: S | 'failed') => number | 'now', onFailure: (e: Error) => void): StepLoop {
  let running: Promise<void> | null = null;
  let stopped = false;
  let wake: (() => void) | null = null;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        wake = null;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(timer);
        wake = null;
        resolve();
      };
    });

  async function loop(): Promise<void> {
    while (!stopped) {
      let result: S | 'failed';
      try {
        result = await step();
      } catch (e) {
        onFailure(e as Error);
        result = 'failed';
      }
      if (stopped) break;
      const pause = pauseAfter(result);
      if (pause === 'now') await new Promise<void>((r) => setImmediate(r));
      else await sleep(pause);
    }
  }

  return {
    start() {
      running ??= loop();
    },
    async stop() {
      stopped = true;
      wake?.();
      await running;
    },
  };
}
