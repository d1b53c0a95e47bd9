// Where the sender puts the next piece in its region: a ring of contiguous allocations, freed
// in the order they were made (the receiver consumes pieces in order). Allocations start on a
// page boundary. The ring stays in the pages it has already touched (warm) whenever it can:
// it starts again at offset 0 when empty, and wraps to the start rather than moving on into
// untouched pages when there is room there; it goes further only when what is in flight needs it.
// This state is the sender's own: nothing in shared memory can change it.

export const PAGE = 4096;

export const roundUp = (n: number): number => Math.ceil(n / PAGE) * PAGE;

export class Ring {
  // Live allocations, oldest first: starts[i]..ends[i], kept in arrays indexed from `first`.
  private starts: number[] = [];
  private ends: number[] = [];
  private first = 0;
  /** End of the furthest allocation ever made: the pages below it have been written. */
  private touched = 0;

  constructor(readonly size: number) {}

  get count(): number {
    return this.starts.length - this.first;
  }

  /** Bytes held by live allocations (page-rounded, wasted tails included). */
  get used(): number {
    if (this.count === 0) return 0;
    const start = this.starts[this.first]!;
    const end = this.ends[this.ends.length - 1]!;
    return end > start ? end - start : this.size - start + end;
  }

  /** The offset of `n` contiguous bytes (n ≥ 1), or -1 when there is no room now. */
  allocate(n: number): number {
    const want = roundUp(n);
    if (want > this.size) return -1;
    if (this.count === 0) {
      this.starts.length = this.ends.length = this.first = 0;
      return this.push(0, want);
    }
    const tail = this.starts[this.first]!;
    const last = this.starts.length - 1;
    const head = this.ends[last]!;
    if (this.starts[last]! >= tail) {
      // Not wrapped: room after the newest allocation, or before the oldest.
      const afterHead = this.size - head >= want;
      const beforeTail = tail >= want;
      if (afterHead && (head + want <= this.touched || !beforeTail)) return this.push(head, want);
      if (beforeTail) return this.push(0, want);
      return -1;
    }
    return tail - head >= want ? this.push(head, want) : -1;
  }

  /** Free the oldest allocation. */
  free(): void {
    if (this.count === 0) throw new Error("Ring.free: nothing allocated");
    this.first++;
    if (this.first > 1024 && this.first * 2 > this.starts.length) {
      this.starts = this.starts.slice(this.first);
      this.ends = this.ends.slice(this.first);
      this.first = 0;
    }
  }

  private push(start: number, size: number): number {
    this.starts.push(start);
    this.ends.push(start + size);
    this.touched = Math.max(this.touched, start + size);
    return start;
  }
}
