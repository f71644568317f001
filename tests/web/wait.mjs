// Timeouts and polling shared by the browser test's helpers.

// Upper bounds for conditions that normally hold within a second or two; generous because CTest
// also runs the test under AddressSanitizer (a ~3x slower daemon) next to other tests on 2 cores.
export const kTimeoutMs = 20000;
export const kSlowTimeoutMs = 45000;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls `probe` (async, returns a truthy value when done) every 100 ms; throws with `describe()`'s
// text after `timeoutMs`.
export async function pollUntil(what, probe, timeoutMs = kTimeoutMs, describe = async () => '') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${await describe()}`);
    }
    await sleep(100);
  }
}
