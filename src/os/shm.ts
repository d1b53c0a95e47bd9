// The libc calls behind the shared-memory lane (docs/large-messages.md): an anonymous memory
// file (memfd) sealed so that its size can never change, mapped shared into both processes;
// and fresh buffers on transparent huge pages for large received messages.
// Linux only; `supported` says whether this process can use them.
//
// mmap returns its address as a plain number (i64_fast; MAP_FAILED is -1): a mapping is only ever touched through the
// one Uint8Array made over it with toArrayBuffer, so the JIT sees every access.
import { ptr, toArrayBuffer, type Pointer } from "bun:ffi";
import { fstatSync } from "node:fs";
import { OSError } from "../errors.ts";
import { closeFd, errno, errnoName, fcntl, memoryCalls, osError } from "./libc.ts";

export const supported = process.platform === "linux" && (process.arch === "x64" || process.arch === "arm64");

const MFD_CLOEXEC = 0x1;
const MFD_ALLOW_SEALING = 0x2;
const MFD_NOEXEC_SEAL = 0x8; // Linux 6.3+: also says "never executable", which newer kernels expect
const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x1;
const MAP_PRIVATE = 0x2;
const MAP_ANONYMOUS = 0x20;
const MADV_DONTNEED = 4;
const MADV_HUGEPAGE = 14;
const PAGE = 4096;
const HUGE_PAGE = 2 * 1024 * 1024;
const F_ADD_SEALS = 1033;
const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 0x1;
export const F_SEAL_SHRINK = 0x2;
export const F_SEAL_GROW = 0x4;
export const F_SEAL_WRITE = 0x8;

function lib(): ReturnType<typeof memoryCalls> {
  if (!supported) throw new OSError(`shared memory is only supported on Linux x64 and arm64 (this is ${process.platform} ${process.arch})`, "ENOTSUP");
  return memoryCalls();
}

/** The OSError of the call that just failed, worded as everywhere else (libc.ts). */
function failure(call: string): OSError {
  return osError(errno(), call);
}

const NAME = Buffer.from("mpconn-lane\0");

/**
 * A new memory file of `size` bytes, close-on-exec, sealed so that nobody (this process
 * included) can shrink or grow it or add seals: a process that maps it can never be made to
 * touch a page past its end (SIGBUS). Returns its descriptor.
 */
export function createSealedFile(size: number): number {
  let fd = lib().memfd_create(NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
  if (fd < 0 && errnoName(errno()) === "EINVAL") fd = lib().memfd_create(NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw failure("memfd_create");
  try {
    if (lib().ftruncate(fd, size) !== 0) throw failure("ftruncate");
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) !== 0) throw failure("fcntl(F_ADD_SEALS)");
  } catch (error) {
    closeFd(fd);
    throw error;
  }
  return fd;
}

/** The seals of a memory file, or -1 when `fd` is not one (or not open). */
export function sealsOf(fd: number): number {
  return fcntl(fd, F_GET_SEALS, 0);
}

/** The size in bytes of the file behind `fd`. */
export function sizeOf(fd: number): number {
  try {
    return fstatSync(fd).size;
  } catch (error) {
    throw new OSError(`fstat failed: ${(error as Error).message}`, (error as { code?: string }).code, { cause: error });
  }
}

/** A second, read-only descriptor of the same file: what a peer is given, so it cannot write. */
export function reopenReadOnly(fd: number): number {
  const copy = lib().open(Buffer.from(`/proc/self/fd/${fd}\0`), O_RDONLY | O_CLOEXEC);
  if (copy < 0) throw failure("open(/proc/self/fd)");
  return copy;
}

/** A shared mapping of a whole file. `bytes` is the only way in; it must not be used after unmap(). */
export interface Mapping {
  readonly address: number;
  readonly size: number;
  readonly bytes: Uint8Array;
}

/** Map `size` bytes of `fd` shared, read-write or read-only. */
export function map(fd: number, size: number, writable: boolean): Mapping {
  const address = Number(lib().mmap(null, size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0));
  if (address === -1) throw failure("mmap");
  const bytes = new Uint8Array(toArrayBuffer(address as Pointer, 0, size));
  return { address, size, bytes };
}

export function unmap(mapping: Mapping): void {
  if (lib().munmap(mapping.address as Pointer, mapping.size) !== 0) throw failure("munmap");
}

/**
 * A new zeroed buffer of `size` bytes whose memory the kernel backs with transparent huge pages
 * where it can: the huge-page-aligned part of a fresh allocation is advised (MADV_HUGEPAGE)
 * before anything touches it, so its first touch costs one fault per 2 MiB instead of one per
 * 4 KiB. The buffer is an ordinary one (the garbage collector owns and counts it); the advice only
 * changes how its pages are allocated, never what they hold. Where there are no huge pages, or the
 * allocation was touched already, nothing changes.
 */
export function freshBuffer(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  if (size < 2 * HUGE_PAGE || !supported) return bytes;
  const address = ptr(bytes);
  const start = Math.ceil(address / HUGE_PAGE) * HUGE_PAGE;
  const end = Math.floor((address + size) / HUGE_PAGE) * HUGE_PAGE;
  if (end > start) lib().madvise(start as Pointer, end - start, MADV_HUGEPAGE); // advice: failure is harmless
  return bytes;
}

/**
 * Give the physical pages under `bytes` back to the kernel at once, rather than when the collector
 * frees the buffer: its whole pages are dropped (MADV_DONTNEED) and read as zeros from then on,
 * so the buffer stays valid memory (nothing that still views it can fault) but holds no pages
 * until it is written again. For a buffer whose contents are no longer needed; where it cannot
 * be done (not Linux), nothing happens.
 */
export function discardPages(bytes: Uint8Array): void {
  if (!supported || bytes.byteLength < PAGE) return;
  const address = ptr(bytes);
  const start = Math.ceil(address / PAGE) * PAGE;
  const end = Math.floor((address + bytes.byteLength) / PAGE) * PAGE;
  if (end > start) lib().madvise(start as Pointer, end - start, MADV_DONTNEED); // advice: failure keeps the pages
}

/** Whole huge pages for `size` bytes. */
export const hugePageLength = (size: number): number => Math.ceil(size / HUGE_PAGE) * HUGE_PAGE;

/**
 * A private zeroed mapping of `length` bytes (a multiple of 2 MiB) that starts on a huge-page
 * boundary and is advised onto transparent huge pages (one page fault per 2 MiB where 4 KiB
 * pages take 512). Returns its address; unmapPages() gives it back.
 */
export function mapHugePages(length: number): number {
  // Map one huge page more, then cut the ends so the mapping starts on a huge-page boundary.
  const reserved = length + HUGE_PAGE;
  const start = Number(lib().mmap(null, reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (start === -1) throw failure("mmap");
  const address = Math.ceil(start / HUGE_PAGE) * HUGE_PAGE;
  if (address > start) lib().munmap(start as Pointer, address - start);
  const end = start + reserved;
  if (end > address + length) lib().munmap((address + length) as Pointer, end - address - length);
  lib().madvise(address as Pointer, length, MADV_HUGEPAGE); // advice only: no huge pages is fine
  return address;
}

/** A private zeroed mapping of `length` bytes (for memory that must never move or be freed). */
export function mapPages(length: number): number {
  const address = Number(lib().mmap(null, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (address === -1) throw failure("mmap");
  return address;
}

export function unmapPages(address: number, length: number): void {
  if (lib().munmap(address as Pointer, length) !== 0) throw failure("munmap");
}

/** A Uint8Array over `size` bytes at `address`, for memory that outlives every view of it. */
export function viewOf(address: number, size: number): Uint8Array {
  return new Uint8Array(toArrayBuffer(address as Pointer, 0, size));
}

/** toArrayBuffer's two further arguments (bun-types declares three): a native deallocator and its context. */
type ExternalArrayBuffer = (address: Pointer, byteOffset: number, byteLength: number, context: number, deallocator: Pointer) => ArrayBuffer;

/**
 * A Uint8Array over `size` bytes at `address` that the garbage collector does not own: when the
 * buffer's memory is released (after its last view is gone, wherever a transfer took it), the
 * native function `deallocator(address, context)` runs — inside the collector, so it must be
 * native. The collector does not count this memory as its own.
 */
export function externalBuffer(address: number, size: number, deallocator: Pointer, context: number): Uint8Array {
  const external = toArrayBuffer as unknown as ExternalArrayBuffer;
  return new Uint8Array(external(address as Pointer, 0, size, context, deallocator));
}
