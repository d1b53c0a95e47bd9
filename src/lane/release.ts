// The deallocator of pooled message buffers (pool.ts), compiled once per process with bun:ffi's
// cc (TinyCC). The garbage collector calls it when a buffer's memory is released — after its last
// view is gone, wherever a transfer took it — with the slot's flag byte as context: the slot may
// be handed out again. It runs inside the collector, so it is native and does nothing else.
//
// The source is kept here rather than in a .c file so it travels with any build of the package;
// cc reads a file, so it is written to a private temporary directory for the compile.
import { cc, type Pointer } from "bun:ffi";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SOURCE = `
void mpconn_lane_release(void *bytes, void *flag) {
  (void)bytes;
  *(volatile unsigned char *)flag = 1;
}
`;

/**
 * The compiled library, held for the life of the process: buffers released at any time later
 * call into its code, which must stay where it is.
 */
let library: ReturnType<typeof compile> | null = null;

function compile(source: string) {
  return cc({ source, symbols: { mpconn_lane_release: { args: ["ptr", "ptr"], returns: "void" } } });
}

/** The native address of the release function. Throws where there is no compiler at run time. */
export function compileRelease(): Pointer {
  if (library) return (library.symbols.mpconn_lane_release as unknown as { ptr: Pointer }).ptr;
  const dir = mkdtempSync(join(tmpdir(), "mpconn-lane-"));
  try {
    const source = join(dir, "release.c");
    writeFileSync(source, SOURCE);
    library = compile(source);
    return (library.symbols.mpconn_lane_release as unknown as { ptr: Pointer }).ptr;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
