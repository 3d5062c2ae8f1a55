/* sync.c - the gradient sum of a data-parallel step (sync.h).
 *
 * The global batch's loss is the weighted mean over every process's rows, so
 * its gradient is sum_r (W_r / W) g_r, where g_r is process r's gradient (the
 * mean over its rows), W_r its rows' loss weight and W = sum_r W_r. With one
 * cross entropy over the rows (text, image, early and joint fusion) this is
 * exactly the gradient one process would compute on all the rows; late
 * fusion (one mean per modality) and the ranking loss of common space (its
 * negatives come from the process's own rows) get the usual data-parallel
 * weighted mean of the processes' gradients.
 *
 * One allreduce (sum) over one packed float buffer carries, per step:
 *   every dense gradient, multiplied by W_r    | D floats
 *   W_r, loss_r W_r, correct_r, rows_r         | 4
 *   one error flag and one stop flag per process (each fills its own slot,
 *   so the sum gathers them)                   | 2 size
 *   the touched-row count of each sparse table per process (two floats,
 *   2^20 apart, so a count stays exact)        | 2 size per table
 * When no process failed or asked to stop, the touched rows of each sparse
 * table (text embedding) are summed one of two ways, chosen per table and
 * step from the counts (every process knows them, so all choose alike):
 *   rows   every process's row ids and rows (times W_r / W), gathered by
 *          one allgatherv for all tables and added up in rank order: each
 *          process receives sum_r n_r (8 + 4 L) bytes;
 *   table  the whole table, and one touched flag per row, summed by an
 *          allreduce: 4 (L + 1) x table rows bytes, which a ring allreduce
 *          moves twice.
 * Gathering rows is chosen unless the gathered rows outweigh twice the table
 * (MM_SYNC_AUTO; MM_SYNC_ROWS / _TABLE force one way). For a 200 k x 64 table
 * and 32 posts a process the gather moves 258 KB a step and the table 56 MB,
 * and the table's sum takes about 70 times as long (bench/dist_bench.lua,
 * README "more than one machine").
 * Every process merges the gathered rows in the same order from the same
 * bytes, so every process holds the same sums. */
#include <stdlib.h>
#include <string.h>

#include "../core/tensor.h"
#include "sync.h"

#define COUNT_SPLIT ((int64_t)1 << 20)

int mm_sync_init(mm_sync *s, const mm_comm *c, int mode, mm_err *e) {
  memset(s, 0, sizeof *s);
  s->c = c;
  s->mode = mode;
  s->bytes_of = calloc((size_t)c->size, sizeof *s->bytes_of);
  if (!s->bytes_of) return mm_errorf(e, MM_ENOMEM, "dist: out of memory");
  return MM_OK;
}

void mm_sync_free(mm_sync *s) {
  mm_ffree(s->buf);
  free(s->mine);
  free(s->all);
  free(s->bytes_of);
  free(s->counts);
  free(s->sl);
  mm_ffree(s->table);
  memset(s, 0, sizeof *s);
}

static int grow(void **p, int64_t *cap, int64_t need, size_t elem, mm_err *e) {
  if (need <= *cap) return MM_OK;
  int64_t n = need + need / 2 + 64;
  void *q = realloc(*p, (size_t)n * elem);
  if (!q) return mm_errorf(e, MM_ENOMEM, "dist: out of memory for %lld bytes", (long long)(n * (int64_t)elem));
  *p = q;
  *cap = n;
  return MM_OK;
}

static int grow_floats(float **p, int64_t *cap, int64_t need, mm_err *e) {
  if (need <= *cap) return MM_OK;
  mm_ffree(*p);
  *p = mm_falloc_uninit(need);
  *cap = *p ? need : 0;
  return *p ? MM_OK : mm_errorf(e, MM_ENOMEM, "dist: out of memory for %lld floats", (long long)need);
}

static int summed(const mm_param *p) { return !p->frozen; }
static int64_t pad8(int64_t b) { return (b + 7) & ~(int64_t)7; }

static void forget_rows(mm_param *p) {
  for (int64_t t = 0; t < p->ntouched; t++) p->slot[p->tlist[t]] = 0;
  p->ntouched = 0;
}

/* the rows of table p in process block b (n ids, then n rows), added in */
static int merge_block(mm_sync *s, mm_param *p, const uint8_t *b, int64_t n, mm_err *e) {
  const int64_t L = p->rowlen;
  const int64_t *ids = (const int64_t *)(const void *)b;
  const float *rows = (const float *)(const void *)(b + 8 * n);
  for (int64_t q = 0; q < n; q++)
    if (ids[q] < 0 || ids[q] >= p->shape[0])
      return mm_errorf(e, MM_EFORMAT, "dist: a process sent row %lld of %s (%lld rows)", (long long)ids[q], p->name,
                       (long long)p->shape[0]);
  if (grow((void **)&s->sl, &s->slcap, n, sizeof *s->sl, e)) return e->code;
  mm_params_slot_rows(p, ids, n, s->sl);
  for (int64_t q = 0; q < n; q++) {
    float *g = p->gc + s->sl[q] * L;
    const float *x = rows + q * L;
    for (int64_t j = 0; j < L; j++) g[j] += x[j];
  }
  return MM_OK;
}

/* the sparse tables whose rows are gathered: one allgatherv for all of them */
static int sync_rows(mm_sync *s, mm_model *M, const uint8_t *use_rows, int ntab, const int *tab, float factor,
                     mm_err *e) {
  const mm_comm *c = s->c;
  int64_t total = 0;
  for (int r = 0; r < c->size; r++) {
    int64_t b = 0;
    for (int t = 0; t < ntab; t++) {
      if (!use_rows[t]) continue;
      int64_t n = s->counts[t * c->size + r];
      b += 8 * n + pad8(4 * M->params[tab[t]].rowlen * n);
    }
    s->bytes_of[r] = b;
    total += b;
  }
  if (total == 0) return MM_OK;
  if (grow((void **)&s->mine, &s->minecap, s->bytes_of[c->rank] + 8, 1, e)) return e->code;
  if (grow((void **)&s->all, &s->allcap, total + 8, 1, e)) return e->code;
  uint8_t *o = s->mine;
  for (int t = 0; t < ntab; t++) {
    if (!use_rows[t]) continue;
    const mm_param *p = &M->params[tab[t]];
    const int64_t n = p->ntouched, L = p->rowlen;
    memcpy(o, p->tlist, (size_t)n * 8);
    float *rows = (float *)(void *)(o + 8 * n);
    for (int64_t q = 0; q < n * L; q++) rows[q] = p->gc[q] * factor;
    o += 8 * n + pad8(4 * L * n);
  }
  int rc = c->allgatherv(c->ud, s->mine, s->bytes_of[c->rank], s->all, s->bytes_of, e);
  if (rc) return rc;
  const uint8_t *blk = s->all;
  for (int t = 0; t < ntab; t++)
    if (use_rows[t]) {
      mm_param *p = &M->params[tab[t]];
      int64_t sum = 0;
      for (int r = 0; r < c->size; r++) sum += s->counts[t * c->size + r];
      forget_rows(p);
      if (mm_params_reserve_rows(p, sum, e)) return e->code;
    }
  for (int r = 0; r < c->size; r++) {
    const uint8_t *b = blk;
    for (int t = 0; t < ntab; t++) {
      if (!use_rows[t]) continue;
      mm_param *p = &M->params[tab[t]];
      int64_t n = s->counts[t * c->size + r];
      if (n && merge_block(s, p, b, n, e)) return e->code;
      b += 8 * n + pad8(4 * p->rowlen * n);
    }
    blk += s->bytes_of[r];
  }
  return MM_OK;
}

/* one sparse table summed whole (with a touched flag per row) */
static int sync_table(mm_sync *s, mm_param *p, float factor, mm_err *e) {
  const int64_t R = p->shape[0], L = p->rowlen, nf = R * L + R;
  if (grow_floats(&s->table, &s->tablecap, nf, e)) return e->code;
  float *tb = s->table, *flag = tb + R * L;
  memset(tb, 0, (size_t)nf * sizeof *tb);
  for (int64_t t = 0; t < p->ntouched; t++) {
    int64_t r = p->tlist[t];
    for (int64_t j = 0; j < L; j++) tb[r * L + j] = p->gc[t * L + j] * factor;
    flag[r] = 1.0f;
  }
  int rc = s->c->allreduce(s->c->ud, tb, nf, MM_COMM_F32, MM_COMM_SUM, e);
  if (rc) return rc;
  forget_rows(p);
  int64_t n = 0;
  for (int64_t r = 0; r < R; r++) n += flag[r] != 0.0f;
  if (mm_params_reserve_rows(p, n, e)) return e->code;
  for (int64_t r = 0; r < R; r++) {
    if (flag[r] == 0.0f) continue;
    int64_t sl;
    mm_params_slot_rows(p, &r, 1, &sl);
    memcpy(p->gc + sl * L, tb + r * L, (size_t)L * sizeof(float));
  }
  return MM_OK;
}

int mm_sync_step(mm_sync *s, mm_model *M, const mm_sync_local *l, mm_sync_total *t, mm_err *e) {
  const mm_comm *c = s->c;
  const int size = c->size;
  memset(t, 0, sizeof *t);
  int64_t D = 0;
  int ntab = 0, tab[MM_MAXMOD * 2];
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    if (!summed(p)) continue;
    if (p->sparse) {
      if (ntab < (int)(sizeof tab / sizeof *tab)) tab[ntab++] = i;
    } else {
      D += p->count;
    }
  }
  const int64_t nbuf = D + 4 + 2 * (int64_t)size + 2 * (int64_t)ntab * size;
  if (grow_floats(&s->buf, &s->bufcap, nbuf, e)) return e->code;
  float *buf = s->buf, *st = buf + D, *err = st + 4, *stop = err + size, *cnt = stop + size;
  memset(st, 0, (size_t)(nbuf - D) * sizeof *buf);
  int64_t q = 0;
  const float wr = l->rc ? 0.0f : (float)l->wsum;
  for (int i = 0; i < M->nparams; i++) {
    const mm_param *p = &M->params[i];
    if (!summed(p) || p->sparse) continue;
    for (int64_t j = 0; j < p->count; j++) buf[q + j] = p->g[j] * wr;
    q += p->count;
  }
  /* this process's share must stay finite when weighted, or the sum would
   * fail on every process without naming the one whose rows made it */
  mm_err own = l->e;
  int own_rc = l->rc;
  if (!own_rc && !mm_all_finite(buf, D))
    own_rc = mm_errorf(&own, MM_ENUM, "fit: gradient is not finite (or overflows times the batch's loss weight %g); "
                                      "weights kept from the batch before",
                       (double)wr);
  if (!l->rc) {
    st[0] = wr;
    st[1] = (float)(l->loss * l->wsum);
    st[2] = (float)l->correct;
    st[3] = (float)l->rows;
  }
  err[c->rank] = (float)own_rc;
  stop[c->rank] = l->stop ? 1.0f : 0.0f;
  for (int k = 0; k < ntab; k++) {
    int64_t n = l->rc ? 0 : M->params[tab[k]].ntouched;
    cnt[2 * (k * size + c->rank)] = (float)(n / COUNT_SPLIT);
    cnt[2 * (k * size + c->rank) + 1] = (float)(n % COUNT_SPLIT);
  }
  int rc = c->allreduce(c->ud, buf, nbuf, MM_COMM_F32, MM_COMM_SUM, e);
  if (rc) return rc;
  int who = mm_agree_failed(c, err);
  if (who >= 0) {
    mm_params_zero_grads(M);
    return mm_agree_message(c, who, (int)err[who], &own, e);
  }
  for (int r = 0; r < size; r++) t->stop |= stop[r] != 0.0f;
  if (t->stop) {
    mm_params_zero_grads(M);
    return MM_OK;
  }
  const double W = st[0];
  const float scale = W > 0 ? (float)(1.0 / W) : 0.0f;
  t->wsum = W;
  t->loss = W > 0 ? st[1] / W : 0.0;
  t->correct = (int64_t)st[2];
  t->rows = (int64_t)st[3];
  q = 0;
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    if (p->sparse) {
      if (!summed(p)) forget_rows(p);
      continue;
    }
    if (!summed(p)) {
      memset(p->g, 0, (size_t)p->count * sizeof(float));
      continue;
    }
    for (int64_t j = 0; j < p->count; j++) p->g[j] = buf[q + j] * scale;
    q += p->count;
  }
  if (!ntab) return MM_OK;
  if (grow((void **)&s->counts, &s->countscap, (int64_t)ntab * size, sizeof *s->counts, e)) return e->code;
  uint8_t use_rows[MM_MAXMOD * 2];
  int any_rows = 0;
  for (int k = 0; k < ntab; k++) {
    const mm_param *p = &M->params[tab[k]];
    int64_t sum = 0;
    for (int r = 0; r < size; r++) {
      int64_t n = (int64_t)cnt[2 * (k * size + r)] * COUNT_SPLIT + (int64_t)cnt[2 * (k * size + r) + 1];
      s->counts[k * size + r] = n;
      sum += n;
    }
    use_rows[k] = s->mode == MM_SYNC_ROWS ||
                  (s->mode == MM_SYNC_AUTO &&
                   (double)sum * (8.0 + 4.0 * p->rowlen) <= 2.0 * 4.0 * (p->rowlen + 1) * (double)p->shape[0]);
    any_rows |= use_rows[k];
  }
  const float factor = (float)(l->wsum * (W > 0 ? 1.0 / W : 0.0));
  if (any_rows && (rc = sync_rows(s, M, use_rows, ntab, tab, factor, e))) return rc;
  for (int k = 0; k < ntab; k++)
    if (!use_rows[k] && (rc = sync_table(s, &M->params[tab[k]], factor, e))) return rc;
  return MM_OK;
}
