/*
 * The deallocator of pooled message buffers (src/lane/pool.ts), compiled at first use with
 * bun:ffi's cc. The garbage collector calls it when a buffer's memory is released — after its
 * last view is gone, wherever a transfer took it — with the slot's flag byte as context: the
 * slot may be handed out again. It runs inside the collector, so it is native and does nothing
 * else.
 */
void mpconn_lane_release(void *bytes, void *flag) {
  (void)bytes;
  *(volatile unsigned char *)flag = 1;
}
