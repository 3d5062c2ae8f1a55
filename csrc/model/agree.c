/* agree.c - what the processes of a data-parallel run agree on (sync.h):
 * that nobody failed (or the failure of the lowest failing rank, everywhere),
 * that they hold the same data, that their weights are the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync.h"

int mm_agree_failed(const mm_comm *c, const float *flags) {
  for (int r = 0; r < c->size; r++)
    if (flags[r] != 0.0f) return r;
  return -1;
}

int mm_agree_message(const mm_comm *c, int who, int code, const mm_err *local_e, mm_err *e) {
  char msg[MM_ERRLEN];
  memset(msg, 0, sizeof msg);
  if (c->rank == who && local_e) snprintf(msg, sizeof msg, "%s", local_e->msg);
  int rc = c->bcast(c->ud, msg, (int64_t)sizeof msg, who, e);
  if (rc) return rc;
  msg[sizeof msg - 1] = 0;
  if (c->size == 1) return mm_errorf(e, code ? code : MM_EINVAL, "%s", msg);
  return mm_errorf(e, code ? code : MM_EINVAL, "rank %d of %d: %s", who, c->size, msg);
}

int mm_agree(const mm_comm *c, int local_rc, const mm_err *local_e, mm_err *e) {
  int64_t *v = calloc((size_t)c->size, sizeof *v); /* one slot per process: its error code */
  if (!v) return mm_errorf(e, MM_ENOMEM, "dist: out of memory");
  v[c->rank] = local_rc;
  int rc = c->allreduce(c->ud, v, c->size, MM_COMM_I64, MM_COMM_SUM, e);
  int who = -1, code = 0;
  for (int r = 0; !rc && r < c->size && who < 0; r++)
    if (v[r]) who = r, code = (int)v[r];
  free(v);
  if (rc) return rc;
  if (who < 0) return MM_OK;
  return mm_agree_message(c, who, code, local_e, e);
}

int mm_agree_same_i64(const mm_comm *c, const int64_t *v, int nv, int *same, mm_err *e) {
  /* one MAX over (v, -v) gives the largest and the smallest value of each */
  int64_t buf[16];
  if (nv > 8) return mm_errorf(e, MM_EINVAL, "dist: too many values to compare");
  for (int i = 0; i < nv; i++) buf[i] = v[i], buf[nv + i] = -v[i];
  int rc = c->allreduce(c->ud, buf, 2 * nv, MM_COMM_I64, MM_COMM_MAX, e);
  if (rc) return rc;
  *same = 1;
  for (int i = 0; i < nv; i++)
    if (buf[i] != -buf[nv + i]) *same = 0;
  return MM_OK;
}

static uint64_t mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdULL;
}

int64_t mm_dataset_fingerprint(const mm_dataset *ds) {
  uint64_t h = mix(0x6d6d6469737431ULL, (uint64_t)ds->n);
  h = mix(h, (uint64_t)ds->nclasses);
  for (int64_t r = 0; r < ds->n; r++) h = mix(h, (uint64_t)ds->labels[r]);
  return (int64_t)(h >> 2);
}

int64_t mm_weights_fingerprint(const mm_model *M) {
  uint64_t h = 0x77656967687473ULL;
  for (int i = 0; i < M->nparams; i++) {
    const mm_param *p = &M->params[i];
    const uint32_t *u = (const uint32_t *)(const void *)p->w;
    uint64_t a = 0, b = 0;
    int64_t q = 0;
    for (; q + 1 < p->count; q += 2) { /* two lanes: the loop runs at memory speed */
      a = (a ^ u[q]) * 0x100000001b3ULL;
      b = (b ^ u[q + 1]) * 0x100000001b3ULL;
    }
    if (q < p->count) a ^= u[q];
    h = mix(mix(h, a), b);
  }
  return (int64_t)(h >> 2);
}

int64_t mm_stream_fingerprint(const mm_stream *s) {
  uint64_t h = mix(0x73747265616dULL, (uint64_t)mm_stream_nclasses(s));
  for (int64_t k = 0; k < mm_stream_nclasses(s); k++)
    for (const char *p = mm_stream_class(s, k); *p; p++) h = mix(h, (uint8_t)*p);
  mm_stream_modality mods[MM_MAXMOD];
  int n = mm_stream_modalities(s, mods);
  for (int i = 0; i < n; i++) {
    h = mix(mix(h, (uint64_t)mods[i].kind), (uint64_t)mods[i].dim);
    for (const char *p = mods[i].name; *p; p++) h = mix(h, (uint8_t)*p);
  }
  return (int64_t)(h >> 2);
}
