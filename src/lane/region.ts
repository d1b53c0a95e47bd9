// One region of the lane: a sealed memory file mapped into this process. The sending side
// creates it and maps it read-write; the receiving side adopts the descriptor it was given,
// checks that the file is really sealed against shrinking and has the announced size, and maps
// it read-only. After that no peer can make an access through the mapping fault: every offset
// the receiver reads is checked against `size`, and the file cannot get shorter than `size`.
import { OSError } from "../errors.ts";
import { closeFd } from "../os/libc.ts";
import { F_SEAL_SEAL, F_SEAL_SHRINK, createSealedFile, map, reopenReadOnly, sealsOf, sizeOf, unmap, type Mapping } from "../os/shm.ts";

export class Region {
  private mapping: Mapping | null;

  private constructor(
    readonly id: number,
    private fd: number,
    mapping: Mapping,
  ) {
    this.mapping = mapping;
  }

  /** A new region of `size` bytes, mapped read-write (the sending side). */
  static create(id: number, size: number): Region {
    const fd = createSealedFile(size);
    try {
      return new Region(id, fd, map(fd, size, true));
    } catch (error) {
      closeFd(fd);
      throw error;
    }
  }

  /**
   * The receiving side: take ownership of `fd` (closed here on failure too), check it is a
   * memory file sealed against shrinking of exactly `size` bytes, and map it read-only.
   */
  static adopt(id: number, fd: number, size: number): Region {
    try {
      const seals = sealsOf(fd);
      if (seals < 0) throw new OSError("shared-memory lane: the descriptor received is not a memory file", "EPROTO");
      const required = F_SEAL_SHRINK | F_SEAL_SEAL;
      if ((seals & required) !== required) {
        throw new OSError(`shared-memory lane: the region is not sealed against shrinking (seals 0x${seals.toString(16)})`, "EPROTO");
      }
      const actual = sizeOf(fd);
      if (actual !== size) throw new OSError(`shared-memory lane: the region has ${actual} bytes, ${size} were announced`, "EPROTO");
      return new Region(id, fd, map(fd, size, false));
    } catch (error) {
      closeFd(fd);
      throw error;
    }
  }

  get size(): number {
    return this.mapping?.size ?? 0;
  }

  /** The mapped bytes. Throws once the region is closed, so nothing reads an unmapped page. */
  get bytes(): Uint8Array {
    if (!this.mapping) throw new OSError("shared-memory lane: the region is closed", "EBADF");
    return this.mapping.bytes;
  }

  get closed(): boolean {
    return this.mapping === null;
  }

  /** A read-only descriptor of the file, for the peer (the caller owns it). */
  shareReadOnly(): number {
    if (this.fd < 0) throw new OSError("shared-memory lane: the region is closed", "EBADF");
    return reopenReadOnly(this.fd);
  }

  /** Unmap and close. Idempotent. */
  close(): void {
    const mapping = this.mapping;
    this.mapping = null;
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
    if (mapping) unmap(mapping);
  }
}
