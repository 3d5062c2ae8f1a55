/* stream_stress.c - the threads of a stream (csrc/model/stream.h) under
 * ThreadSanitizer (`make tsan-stream`): epochs read to their end with 2
 * builder threads and a ring of 2 slots, epochs ended early (mid-chunk, at
 * the first batch), a bad row skipped and counted, a bad row stopping an
 * epoch, split and rank streams; the same seed must give the same order.
 * Exits 0 and prints "stream_stress: ok" when every check holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/stream.h"

#define ROWS 3000

static int fails;
#define CHECK(c, ...)                    \
  do {                                   \
    if (!(c)) {                          \
      fprintf(stderr, "FAIL: " __VA_ARGS__); \
      fprintf(stderr, "\n");             \
      fails++;                           \
    }                                    \
  } while (0)

/* one epoch by batches of B; returns the rows read and a hash of their order (-1 on error) */
static int64_t epoch(mm_stream *s, int shuffle, uint64_t seed, int64_t B, int64_t stop_after, uint64_t *order,
                     mm_err *e) {
  mm_stream_epoch ep = {shuffle, seed, 0, NULL, NULL};
  if (mm_stream_begin(s, &ep, e)) return -1;
  int64_t n = 0, batches = 0;
  uint64_t h = 1469598103934665603ULL;
  for (;;) {
    mm_stream_batch b;
    if (mm_stream_next_batch(s, B, &b, e)) {
      mm_stream_end(s);
      return -1;
    }
    if (b.n == 0) break;
    int j = mm_dataset_find(b.ds, "x");
    for (int64_t i = 0; i < b.n; i++) {
      float v = b.ds->mods[j].feat[b.rows[i] * b.ds->mods[j].dim];
      h = (h ^ (uint64_t)(int64_t)v) * 1099511628211ULL;
    }
    n += b.n;
    if (++batches == stop_after) break;
  }
  mm_stream_end(s);
  *order = h;
  return n;
}

int main(void) {
  char path[] = "/tmp/stream_stress_XXXXXX.tsv";
  int fd = mkstemps(path, 4);
  if (fd < 0) return 2;
  FILE *f = fdopen(fd, "w");
  fprintf(f, "text\tlabel\tx\tfold\n");
  for (int i = 0; i < ROWS; i++) {
    if (i == 1234) fprintf(f, "broken row\n");
    fprintf(f, "word%d other%d\t%s\t%d\t%d\n", i % 97, i % 13, i % 3 == 0 ? "a" : i % 3 == 1 ? "b" : "c", i, i % 5);
  }
  fclose(f);
  const char *paths[] = {path, path};
  const char *cols[] = {"x"};
  mm_stream_feature feat = {"x", NULL, cols, 1, NULL, 0};
  mm_stream_spec sp;
  mm_stream_spec_init(&sp);
  sp.paths = paths, sp.npaths = 2;
  sp.label = "label", sp.text = "text";
  sp.features = &feat, sp.nfeatures = 1;
  sp.chunk = 37, sp.queue = 2, sp.workers = 2, sp.shuffle_buffer = 200;
  sp.skip_bad = 1;
  mm_err e = {0};
  mm_stream *s = mm_stream_open(&sp, &e);
  CHECK(s, "open: %s", e.msg);
  if (!s) return 1;
  uint64_t o1 = 0, o2 = 0, o3 = 0;
  for (int rep = 0; rep < 3; rep++) {
    CHECK(epoch(s, 0, 0, 13, 0, &o1, &e) == 2 * ROWS, "plain epoch: %s", e.msg);
    mm_stream_stats st;
    mm_stream_stats_get(s, &st);
    CHECK(st.bad == 2, "bad rows counted: %lld", (long long)st.bad);
    CHECK(epoch(s, 1, 7, 13, 0, &o1, &e) == 2 * ROWS, "shuffled epoch: %s", e.msg);
    CHECK(epoch(s, 1, 7, 64, 0, &o2, &e) == 2 * ROWS, "shuffled epoch: %s", e.msg);
    CHECK(o1 == o2, "the same seed gives the same order");
    CHECK(epoch(s, 1, 8, 13, 0, &o3, &e) == 2 * ROWS, "shuffled epoch: %s", e.msg);
    CHECK(o1 != o3, "another seed gives another order");
    CHECK(epoch(s, 1, 9, 5, 3, &o3, &e) == 15, "an epoch ended after 3 batches");
    CHECK(epoch(s, 0, 0, 1, 1, &o3, &e) == 1, "an epoch ended at its first batch");
  }
  /* splits and ranks, each on its own threads, read at the same time as the parent's epochs */
  const char *test[] = {"0"}, *valid[] = {"1"};
  mm_stream_split spl = {"fold", test, valid, 1, 1, NULL, {0, 0, 0}};
  mm_stream *parts[3];
  CHECK(mm_stream_split_parts(s, &spl, parts, &e) == MM_OK, "split: %s", e.msg);
  int64_t total = 0;
  for (int p = 0; p < 3; p++) total += epoch(parts[p], 1, 3, 17, 0, &o1, &e);
  CHECK(total == 2 * ROWS, "the split parts cover the rows (%lld)", (long long)total);
  mm_stream *r0 = mm_stream_part(s, 0, 2, 0, 1, &e), *r1 = mm_stream_part(s, 1, 2, 0, 1, &e);
  CHECK(r0 && r1, "part: %s", e.msg);
  if (r0 && r1) CHECK(epoch(r0, 1, 4, 8, 0, &o1, &e) + epoch(r1, 1, 4, 8, 0, &o2, &e) == 2 * ROWS, "ranks");
  for (int p = 0; p < 3; p++) mm_stream_free(parts[p]);
  mm_stream_free(r0);
  mm_stream_free(r1);
  /* a bad row without skipping stops the epoch with its file:line */
  mm_stream_free(s);
  sp.skip_bad = 0;
  const char *classes[] = {"a", "b", "c"};
  sp.classes = classes, sp.nclasses = 3; /* no pass over the labels at open: it would meet the bad row */
  s = mm_stream_open(&sp, &e);
  CHECK(s, "open: %s", e.msg);
  if (s) {
    CHECK(epoch(s, 0, 0, 13, 0, &o1, &e) == -1 && strstr(e.msg, ":1236:"), "the bad row's line: %s", e.msg);
    /* a stream freed while its epoch runs */
    mm_stream_epoch ep = {1, 1, 0, NULL, NULL};
    CHECK(mm_stream_begin(s, &ep, &e) == MM_OK, "begin: %s", e.msg);
    mm_stream_free(s);
  }
  unlink(path);
  if (fails) return 1;
  printf("stream_stress: ok\n");
  return 0;
}
