// The start every browser test shares: a hub and a browser, both ended
// (after the test's producers) when the test ends, pass or fail.
import { Hub } from './hub.mjs';
import { launch } from './browser.mjs';

/**
 * Starts a hub with `args` and a browser for test `t`. `keep(x)` returns
 * `x` and has it closed when the test ends, before the browser and the hub.
 * @param {import('node:test').TestContext} t
 * @param {string[]} args
 */
export async function hubAndBrowser(t, args) {
  const hub = await Hub.start(args);
  const browser = await launch();
  /** @type {{ close(): void }[]} */
  const kept = [];
  t.after(async () => {
    for (const k of kept) k.close();
    await browser.close();
    await hub.stop();
  });
  /** @template {{ close(): void }} T @param {T} x @returns {T} */
  const keep = (x) => { kept.push(x); return x; };
  return { hub, browser, keep };
}
