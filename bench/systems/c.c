// The C baseline: fork() + socketpair(AF_UNIX, SOCK_STREAM), CPython's 4-byte big-endian
// framing, frames coalesced into 256 KiB writes, blocking I/O. Bytes workloads only.
// "burst" is "stream" here (writes block); "into": the child reads large bodies into one
// reused buffer instead of a new allocation per message.
// Compiled by the harness at run time: cc -O2 -o <tmp>/c-bench c.c
// The protocol is that of common.ts: a `@@result` line from the parent, an `@@child` line
// from the child, on stdout. The spec is the same JSON; only its numbers are read.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OUT_SIZE (256 * 1024)
#define IN_SIZE (256 * 1024)

static long spec_num(const char *json, const char *key) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":", key);
  const char *at = strstr(json, pattern);
  return at ? strtol(at + strlen(pattern), NULL, 10) : 0;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// ---- memory: /proc/self/status, peak reset at the start of the measured phases ----
static long status(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  long value = 0;
  size_t n = strlen(field);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':') value = strtol(line + n + 1, NULL, 10);
  fclose(f);
  return value;
}
static long peak_before = 0, base = 0;
static int marked = 0;
static void mark(void) {
  long hwm = status("VmHWM");
  if (hwm > peak_before) peak_before = hwm;
  base = status("VmRSS");
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f) fputs("5", f), fclose(f);
  marked = 1;
}
static void mem_json(char *out, size_t size) {
  long hwm = status("VmHWM");
  if (!marked) base = status("VmRSS");
  long peak = hwm > peak_before ? hwm : peak_before;
  snprintf(out, size, "{\"peakKiB\":%ld,\"baseKiB\":%ld,\"growthKiB\":%ld}", peak, base, hwm > base ? hwm - base : 0);
}

// ---- I/O ----
static void die(const char *what) {
  perror(what);
  exit(1);
}
static void write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t k = write(fd, p, n);
    if (k < 0) die("write");
    p += k, n -= (size_t)k;
  }
}
/** Read exactly n bytes; 0 at a clean EOF before the first byte. */
static int read_full(int fd, void *buf, size_t n) {
  char *p = buf;
  size_t done = 0;
  while (done < n) {
    ssize_t k = read(fd, p + done, n - done);
    if (k < 0) die("read");
    if (k == 0) {
      if (done == 0) return 0;
      fprintf(stderr, "c: EOF inside a frame\n");
      exit(1);
    }
    done += (size_t)k;
  }
  return 1;
}

// Sender: frames packed into one buffer, written when full or flushed.
static char out[OUT_SIZE];
static size_t out_len = 0;
static void flush(int fd) {
  if (out_len) write_all(fd, out, out_len);
  out_len = 0;
}
static void send_frame(int fd, const void *body, uint32_t size) {
  if (out_len + 4 + size > OUT_SIZE) flush(fd);
  uint32_t header = htonl(size);
  if (4 + (size_t)size > OUT_SIZE) {
    write_all(fd, &header, 4);
    write_all(fd, body, size);
    return;
  }
  memcpy(out + out_len, &header, 4);
  memcpy(out + out_len + 4, body, size);
  out_len += 4 + size;
}

// Receiver: reads up to IN_SIZE at a time; a frame inside the buffer is handled in place,
// a body larger than the buffer is read straight into its own allocation.
static char in[IN_SIZE];
static size_t in_at = 0, in_end = 0;
static char *big = NULL;
static size_t big_size = 0;
static int reuse_big = 0; /* "into": keep the large-body buffer from message to message */
/** The next message (pointer valid until the next call), its size in *size; NULL at EOF. */
static const char *recv_frame(int fd, uint32_t *size) {
  if (!reuse_big) {
    free(big);
    big = NULL;
    big_size = 0;
  }
  for (;;) {
    size_t have = in_end - in_at;
    if (have >= 4) {
      uint32_t n;
      memcpy(&n, in + in_at, 4);
      n = ntohl(n);
      if (have - 4 >= n) {
        const char *body = in + in_at + 4;
        in_at += 4 + n;
        *size = n;
        return body;
      }
      if (4 + (size_t)n > IN_SIZE) {
        if (big_size < n) {
          free(big);
          big = malloc(n ? n : 1);
          if (!big) die("malloc");
          big_size = n;
        }
        memcpy(big, in + in_at + 4, have - 4);
        read_full(fd, big + (have - 4), n - (have - 4));
        in_at = in_end = 0;
        *size = n;
        return big;
      }
    }
    memmove(in, in + in_at, have);
    in_at = 0, in_end = have;
    ssize_t k = read(fd, in + in_end, IN_SIZE - in_end);
    if (k < 0) die("read");
    if (k == 0) return NULL;
    in_end += (size_t)k;
  }
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void child(int fd, const char *workload, long size, long count, long warmup, long reps) {
  long received = 0;
  uint32_t n;
  const char *body;
  if (strcmp(workload, "pingpong") == 0) {
    while ((body = recv_frame(fd, &n))) {
      send_frame(fd, body, n);
      flush(fd);
      received++;
    }
  } else {
    reuse_big = strcmp(workload, "into") == 0;
    long phases = strcmp(workload, "rss") == 0 ? 2 : 1 + reps;
    for (long p = 0; p < phases; p++) {
      long want = p == 0 ? warmup : count;
      for (long i = 0; i < want; i++) {
        body = recv_frame(fd, &n);
        if (!body || n != (uint32_t)size) {
          fprintf(stderr, "c child: bad message\n");
          exit(1);
        }
        received++;
      }
      if (p == 0) mark();
      send_frame(fd, "\1", 1);
      flush(fd);
    }
    if (recv_frame(fd, &n)) {
      fprintf(stderr, "c child: unexpected message\n");
      exit(1);
    }
  }
  char mem[256];
  mem_json(mem, sizeof mem);
  printf("@@child {\"mem\":%s,\"received\":%ld}\n", mem, received);
  fflush(stdout);
  exit(0);
}

int main(int argc, char **argv) {
  if (argc < 3 || strcmp(argv[1], "parent") != 0) {
    fprintf(stderr, "usage: c-bench parent '<spec json>'\n");
    return 2;
  }
  const char *spec = argv[2];
  char workload[32] = "";
  const char *w = strstr(spec, "\"workload\":\"");
  if (w) sscanf(w + 12, "%31[^\"]", workload);
  long size = spec_num(spec, "size"), count = spec_num(spec, "count");
  long warmup = spec_num(spec, "warmup"), reps = spec_num(spec, "reps");

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) die("socketpair");
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(sv[0]);
    child(sv[1], workload, size, count, warmup, reps);
  }
  close(sv[1]);
  int fd = sv[0];

  char *msg = calloc((size_t)size ? (size_t)size : 1, 1);
  // Every byte written: untouched zero pages would make large copies unrealistically cheap.
  for (long i = 0; i < size; i++) msg[i] = (char)(((i & 4095) * 7 + 1) & 0xff);
  char result[8192];
  size_t len = (size_t)snprintf(result, sizeof result, "@@result {\"reps\":[");
  uint32_t n;
  if (strcmp(workload, "pingpong") == 0) {
    double *samples = malloc(sizeof(double) * (size_t)(count > warmup ? count : warmup));
    for (long p = 0; p <= reps; p++) {
      long rounds = p == 0 ? warmup : count;
      if (p == 1) mark();
      for (long i = 0; i < rounds; i++) {
        double t0 = now();
        send_frame(fd, msg, (uint32_t)size);
        flush(fd);
        if (!recv_frame(fd, &n)) die("echo");
        samples[i] = now() - t0;
      }
      if (p == 0) continue;
      qsort(samples, (size_t)rounds, sizeof(double), cmp);
      long m = rounds / 2, q = (long)(0.99 * rounds);
      if (q >= rounds) q = rounds - 1;
      len += (size_t)snprintf(result + len, sizeof result - len, "%s{\"median\":%.3f,\"p99\":%.3f}", p > 1 ? "," : "",
                              samples[m] * 1e6, samples[q] * 1e6);
    }
  } else if (strcmp(workload, "stream") == 0 || strcmp(workload, "rss") == 0 || strcmp(workload, "burst") == 0 ||
             strcmp(workload, "into") == 0) {
    long phases = strcmp(workload, "rss") == 0 ? 2 : 1 + reps;
    for (long p = 0; p < phases; p++) {
      long messages = p == 0 ? warmup : count;
      if (p == 1) mark();
      double t0 = now();
      for (long i = 0; i < messages; i++) send_frame(fd, msg, (uint32_t)size);
      flush(fd);
      if (!recv_frame(fd, &n)) die("ack");
      double t = now() - t0;
      if (p > 0) len += (size_t)snprintf(result + len, sizeof result - len, "%s%.9f", p > 1 ? "," : "", t);
    }
  } else {
    fprintf(stderr, "c: no %s workload (bytes only)\n", workload);
    return 2;
  }
  close(fd);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    fprintf(stderr, "c: child failed\n");
    return 1;
  }
  char mem[256];
  mem_json(mem, sizeof mem);
  printf("%.*s],\"mem\":%s}\n", (int)len, result, mem);
  return 0;
}
