// Preloaded by bunfig.toml before every test file.
import { setDefaultTimeout } from "bun:test";

// Cross-process suites start interpreters and workers on a possibly busy 2-core machine:
// give each test room; none asserts on time. Bun 1.4.5 applies a preload's default only to the
// first test file and reads no timeout from bunfig.toml, so `npm test` also passes --timeout and
// every test file calls setDefaultTimeout itself (plain `bun test` runs them the same way).
setDefaultTimeout(60_000);
