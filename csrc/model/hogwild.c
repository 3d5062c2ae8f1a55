/* hogwild.c - Hogwild training of text-only models with mm.threads(n) > 1,
 * fastText-style: the shuffled epoch is cut into one contiguous shard per
 * thread; each thread runs its own batches with its own workspace, gradient
 * buffers, touched-row lists, weight backup and rng, and updates the shared
 * weights (and Adam moments) without locks. Updates of the same rows by two
 * threads may interleave (that is the Hogwild trade: the text model's rows
 * are sparse, so collisions are rare). Only used with more than one thread:
 * one thread takes the sequential, bit-reproducible path (train.c). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../core/parallel.h"
#include "../core/tensor.h"
#include "model_internal.h"

typedef struct hog_thr {
  mm_model Mt; /* shallow copy of the model: shared w, m, v; own g, touched lists, bak, rng, workspace */
  double lsum;
  int64_t correct, seen, nb;
  int rc;
  mm_err e;
} hog_thr;

typedef struct hog_ctx {
  mm_dataset *ds;
  const mm_train_opts *o;
  const int64_t *order;
  int64_t B;
  hog_thr *t;
  atomic_int stop;
} hog_ctx;

int mm_hogwild_ok(const mm_model *M) {
  return M->fusion == MM_FUSION_TEXT && M->k == 1 && M->mod[0].enc == MM_ENC_TEXT;
}

static void hog_free(hog_thr *T) {
  mm_model *Mt = &T->Mt;
  mm_ws_cache_free(Mt);
  if (Mt->params)
    for (int i = 0; i < Mt->nparams; i++) {
      mm_ffree(Mt->params[i].g);
      free(Mt->params[i].slot);
      free(Mt->params[i].tlist);
      mm_ffree(Mt->params[i].gc);
    }
  free(Mt->params);
  mm_ffree(Mt->bak);
  memset(T, 0, sizeof *T);
}

void mm_hogwild_free(mm_model *M) {
  hog_thr *t = M->hog;
  for (int i = 0; t && i < M->nhog; i++) hog_free(&t[i]);
  free(t);
  M->hog = NULL;
  M->nhog = 0;
}

/* per epoch: the shared pointers and settings from M; own counters reset */
static void hog_sync(mm_model *M, hog_thr *T) {
  mm_model *Mt = &T->Mt;
  mm_param *own = Mt->params;
  void *wsc = Mt->wscache;
  float *bak = Mt->bak;
  int64_t bakcap = Mt->bakcap;
  *Mt = *M;
  Mt->params = own;
  Mt->wscache = wsc;
  Mt->ws_busy = 0;
  Mt->bak = bak;
  Mt->bakcap = bakcap;
  Mt->hog = NULL;
  Mt->nhog = 0;
  mm_rng_seed(&Mt->rng, mm_rng_u64(&M->rng));
  for (int i = 0; i < M->nparams; i++) {
    own[i].w = M->params[i].w;
    own[i].m = M->params[i].m;
    own[i].v = M->params[i].v;
    own[i].frozen = M->params[i].frozen;
  }
  T->lsum = 0;
  T->correct = T->seen = T->nb = 0;
  T->rc = 0;
  memset(&T->e, 0, sizeof T->e);
}

/* allocates a thread's own buffers (kept on the model between epochs) */
static int hog_init(mm_model *M, mm_dataset *ds, int64_t B, hog_thr *T, mm_err *e) {
  memset(T, 0, sizeof *T);
  mm_model *Mt = &T->Mt;
  *Mt = *M;
  Mt->params = NULL;
  Mt->bak = NULL;
  Mt->bakcap = 0;
  Mt->wscache = NULL;
  Mt->ws_busy = 0;
  Mt->hog = NULL;
  Mt->nhog = 0;
  mm_param *np = calloc((size_t)M->nparams, sizeof *np);
  if (!np) return mm_errorf(e, MM_ENOMEM, "fit: out of memory for a training thread");
  Mt->params = np;
  for (int i = 0; i < M->nparams; i++) {
    np[i] = M->params[i];
    np[i].g = NULL;
    np[i].slot = NULL;
    np[i].tlist = NULL;
    np[i].ntouched = 0;
    np[i].gc = NULL;
    np[i].gccap = 0;
    np[i].gmirror = 0;
  }
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &np[i];
    if (p->sparse) { /* gradients in the thread's own compact rows (no dense g) */
      p->slot = calloc((size_t)p->shape[0], sizeof *p->slot);
      p->tlist = malloc((size_t)p->shape[0] * sizeof *p->tlist);
      if (!p->slot || !p->tlist) return mm_errorf(e, MM_ENOMEM, "fit: out of memory for a training thread");
      continue;
    }
    p->g = mm_falloc(p->count);
    if (!p->g) return mm_errorf(e, MM_ENOMEM, "fit: out of memory for a training thread");
    /* write the zero pages now: a first write after a first read (+= in a
     * backward) would copy-on-write the shared zero page, and in a
     * multi-threaded process each such fault flushes the other cores' TLBs */
    memset(p->g, 0, (size_t)p->count * sizeof(float));
  }
  return MM_OK;
}

static void hog_run(void *ctx, int64_t begin, int64_t end, int tid) {
  hog_ctx *h = ctx;
  hog_thr *T = &h->t[tid];
  mm_model *Mt = &T->Mt;
  ws *w = Mt->wscache;
  Mt->ws_busy = 1;
  for (int64_t s = begin; s < end && !atomic_load_explicit(&h->stop, memory_order_relaxed); s += h->B) {
    int64_t n = end - s < h->B ? end - s : h->B;
    double loss = 0;
    int rc = mm_train_step(Mt, h->ds, w, h->o, h->order + s, n, s, T->nb, &loss, &T->e);
    if (rc) {
      T->rc = rc;
      atomic_store(&h->stop, 1);
      break;
    }
    T->lsum += loss * n;
    for (int64_t b = 0; b < n; b++) T->correct += mm_argmax(w->probs + b * Mt->nclasses, Mt->nclasses) == w->y[b];
    T->seen += n;
    T->nb++;
  }
  Mt->ws_busy = 0;
}

/* the threads' state for nt threads (kept on the model between epochs) */
static int hog_prepare(mm_model *M, mm_dataset *ds, int64_t B, int nt, mm_err *e) {
  if (M->nhog == nt) return MM_OK;
  mm_hogwild_free(M);
  M->hog = calloc((size_t)nt, sizeof(hog_thr));
  if (!M->hog) return mm_errorf(e, MM_ENOMEM, "fit: out of memory");
  M->nhog = nt;
  /* map the shared optimiser state now, while one thread runs: Adam's first
   * read-modify-write of a zero page would otherwise copy it on write with a
   * TLB flush on every core (a write of each page to itself keeps the values) */
  for (int i = 0; i < M->nparams; i++) {
    const mm_param *p = &M->params[i];
    float *arr[2] = {p->m, p->v};
    int64_t len[2] = {p->sparse ? 2 * p->count : p->count, p->sparse ? 0 : p->count}; /* sparse: v inside m's pool */
    for (int a = 0; a < 2; a++)
      for (int64_t q = 0; q < len[a]; q += 1024) {
        volatile float *x = arr[a] + q;
        *x = *x;
      }
  }
  int rc = MM_OK;
  for (int t = 0; t < nt && !rc; t++) rc = hog_init(M, ds, B, &((hog_thr *)M->hog)[t], e);
  if (rc) mm_hogwild_free(M);
  return rc;
}

/* the threads' statistics into st; the first thread's error when rc is 0 */
static int hog_collect(mm_model *M, hog_thr *th, int nt, int rc, mm_epoch_stats *st, mm_err *e) {
  double lsum = 0;
  int64_t correct = 0, seen = 0, nb = 0;
  for (int t = 0; t < nt; t++) {
    hog_thr *T = &th[t];
    if (!rc && T->rc) {
      rc = T->rc;
      *e = T->e;
      mm_err_prefix(e, "thread %d: ", t + 1);
    }
    lsum += T->lsum, correct += T->correct, seen += T->seen, nb += T->nb;
    if (T->Mt.step > M->step) M->step = T->Mt.step;
    mm_params_zero_grads(&T->Mt); /* after an error: its touched rows */
  }
  st->loss = seen ? lsum / seen : 0;
  st->accuracy = seen ? (double)correct / seen : 0;
  st->batches = nb;
  st->samples = seen;
  return rc;
}

int mm_train_hogwild(mm_model *M, mm_dataset *ds, const mm_train_opts *o, const int64_t *order, int64_t B, int nt,
                     mm_epoch_stats *st, double t0, mm_err *e) {
  hog_ctx h = {ds, o, order, B, NULL, 0};
  int rc = hog_prepare(M, ds, B, nt, e);
  if (rc) return rc;
  h.t = M->hog;
  for (int t = 0; t < nt && !rc; t++) {
    hog_thr *T = &h.t[t];
    hog_sync(M, T);
    ws *w = mm_ws_acquire(&T->Mt, B, 1, e); /* grown when the batch grew */
    if (!w) return e->code;
    rc = mm_batch_bind(&T->Mt, ds, w, 1, e);
    mm_ws_release(&T->Mt, w);
  }
  if (!rc) {
    atomic_init(&h.stop, 0);
    int ran = mm_parallel_for(ds->n, hog_run, &h);
    if (ran != nt) rc = mm_errorf(e, MM_EINVAL, "fit: %d training threads ran, %d expected", ran, nt);
  }
  rc = hog_collect(M, h.t, nt, rc, st, e);
  if (!rc && o->progress) {
    mm_progress pr = {st->batches, st->batches, st->samples, st->loss, st->accuracy, mm_now_seconds() - t0};
    int r = o->progress(o->progress_ud, &pr);
    if (r == 1) rc = mm_errorf(e, MM_EINVAL, "fit: the progress callback failed");
    if (r == 2) st->stopped = 1;
  }
  return rc;
}
