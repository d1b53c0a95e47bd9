// A user's Pool, as test/package/package.test.ts runs it from the installed package: the workers
// run the package's own worker entry, which loads tasks.ts.
import { Pool } from "mpconn";

await using pool = new Pool<typeof import("./tasks.ts")>(new URL("./tasks.ts", import.meta.url), { processes: 2 });
console.log(`pool: ${(await pool.map("square", [1, 2, 3, 4])).join(" ")}`);
