// imap reads its input lazily: the items read but not yet yielded stay within 4 chunks per
// process, so an endless input runs in bounded memory, also while the consumer pauses.
import { expect, setDefaultTimeout, test } from "bun:test";
import { Pool } from "../../../src/index.ts";
import { READ_AHEAD } from "../../../src/processes/pool/imap.ts";
import { tasksModule, waitFor, type Tasks } from "../../fixtures/pool/helpers.ts";

// These tests start worker processes on a possibly busy machine (the preload's default reaches only the first file).
setDefaultTimeout(60_000);

/** An endless input that counts the items taken from it, and whether it was closed. */
function endless(): { input: Generator<number>; pulled: () => number; closed: () => boolean } {
  let pulled = 0;
  let closed = false;
  function* numbers(): Generator<number> {
    try {
      for (;;) yield pulled++;
    } finally {
      closed = true;
    }
  }
  return { input: numbers(), pulled: () => pulled, closed: () => closed };
}

async function* endlessAsync(counter: { pulled: number }): AsyncGenerator<number> {
  for (;;) {
    await Bun.sleep(0);
    yield counter.pulled++;
  }
}

for (const [processes, chunksize] of [
  [2, 1],
  [2, 5],
  [3, 16],
] as const) {
  test(`an endless input stays bounded (${processes} processes, chunksize ${chunksize}), also while the consumer pauses`, async () => {
    const pool = new Pool<Tasks>(tasksModule, { processes });
    const bound = READ_AHEAD * chunksize * processes;
    try {
      for (const ordered of [true, false]) {
        const source = endless();
        const iterator = ordered
          ? pool.imap("square", source.input, { chunksize })
          : pool.imapUnordered("square", source.input, { chunksize });
        let yielded = 0;
        for (let round = 0; round < 3; round++) {
          for (let i = 0; i < 25; i++) {
            const { value, done } = await iterator.next();
            expect(done).toBe(false);
            if (ordered) expect(value).toBe(yielded * yielded);
            yielded++;
          }
          // The consumer pauses: once the pool has nothing left to run, the input is no longer read.
          await waitFor(() => pool.stats().busy === 0 && pool.stats().queued === 0, "the pool idle");
          expect(source.pulled() - yielded).toBeLessThanOrEqual(bound);
          expect(source.pulled()).toBeGreaterThan(yielded);
        }
        await iterator.return!();
        expect(source.closed()).toBe(true);
        const pulled = source.pulled();
        await waitFor(() => pool.stats().busy === 0, "the pool idle");
        expect(source.pulled()).toBe(pulled);
        // Read-ahead dropped because the consumer left is not a failure.
        expect(pool.stats()).toMatchObject({ queued: 0, failed: 0 });
      }
    } finally {
      pool.close();
      await pool.join();
    }
  });
}

test("an endless async input stays bounded too; break closes it", async () => {
  const pool = new Pool<Tasks>(tasksModule, { processes: 2 });
  const counter = { pulled: 0 };
  try {
    let yielded = 0;
    for await (const value of pool.imap("square", endlessAsync(counter), { chunksize: 4 })) {
      expect(value).toBe(yielded * yielded);
      if (++yielded === 100) break;
    }
    await waitFor(() => pool.stats().busy === 0 && pool.stats().queued === 0, "the pool idle");
    expect(counter.pulled - yielded).toBeLessThanOrEqual(READ_AHEAD * 4 * 2);
  } finally {
    pool.close();
    await pool.join();
  }
});

test("without a chunksize, the read-ahead stays within 4 chunks of at most 1,024 items per process", async () => {
  const pool = new Pool<Tasks>(tasksModule, { processes: 2 });
  try {
    const source = endless();
    const iterator = pool.imap("square", source.input);
    let yielded = 0;
    for (; yielded < 20_000; yielded++) expect((await iterator.next()).value).toBe(yielded * yielded);
    await waitFor(() => pool.stats().busy === 0 && pool.stats().queued === 0, "the pool idle");
    expect(source.pulled() - yielded).toBeLessThanOrEqual(READ_AHEAD * 1024 * 2);
    await iterator.return!();
    expect(source.closed()).toBe(true);
  } finally {
    pool.close();
    await pool.join();
  }
});
