/* update.c - the optimiser step of a model: one fused pass per parameter
 * segment (mm_optim_fused: back up the weights, update them, zero the
 * gradient, test the new weights), sparse tables only on the rows a batch
 * touched, with their Adam state handed out row by row (model.h). */
#include <stdlib.h>
#include <string.h>

#include "../core/tensor.h"
#include "../nn/nn.h"
#include "model_internal.h"

/* every gradient the next step reads is finite (sparse tables: touched rows) */
int mm_update_grads_finite(const mm_model *M) {
  for (int i = 0; i < M->nparams; i++) {
    const mm_param *p = &M->params[i];
    if (p->sparse) {
      if (!mm_all_finite(p->gc, p->ntouched * p->rowlen)) return 0;
    } else if (!mm_all_finite_mt(p->g, p->count))
      return 0;
  }
  return 1;
}

double mm_update_grad_sumsq(const mm_model *M) {
  double s = 0;
  for (int i = 0; i < M->nparams; i++) {
    const mm_param *p = &M->params[i];
    if (p->sparse)
      s += mm_sumsq(p->gc, p->ntouched * p->rowlen);
    else
      s += mm_sumsq(p->g, p->count);
  }
  return s;
}

/* m of table row r (v = m + rowlen), from the row-state pool (model.h); a row
 * without state gets the next slot (zero since the last reset). Safe under
 * Hogwild: slots are handed out under a spin lock, and a slot is published
 * (release) only after it is reserved. */
static float *mv_row(mm_param *p, int64_t r) {
  mm_rowstate *rs = p->rs;
  uint32_t s = __atomic_load_n(&rs->slot[r], __ATOMIC_ACQUIRE);
  if (!s) {
    while (__atomic_exchange_n(&rs->lock, 1, __ATOMIC_ACQUIRE)) {
    }
    s = __atomic_load_n(&rs->slot[r], __ATOMIC_RELAXED);
    if (!s) {
      s = (uint32_t)++rs->n;
      __atomic_store_n(&rs->slot[r], s, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&rs->lock, 0, __ATOMIC_RELEASE);
  }
  return p->m + (int64_t)(s - 1) * 2 * p->rowlen;
}

/* floats the backup of one step takes */
static int64_t step_floats(const mm_model *M) {
  int64_t need = 0;
  for (int i = 0; i < M->nparams; i++) {
    const mm_param *p = &M->params[i];
    if (!p->frozen) need += p->sparse ? p->ntouched * p->rowlen : p->count;
  }
  return need;
}

/* the touched rows of a sparse table; returns 0 when a new weight is not finite */
static int update_rows(const mm_optim_step *st, mm_param *p, float *bak) {
  const int64_t L = p->rowlen;
  const int stateful = st->adam || st->momentum != 0.0f;
  int ok = 1;
  for (int64_t t = 0; t < p->ntouched; t++) {
    int64_t r = p->tlist[t];
    if (t + 2 < p->ntouched) { /* rows of a big table are cache and TLB misses: fetch ahead */
      int64_t r2 = p->tlist[t + 2];
      const float *w2 = p->w + r2 * L;
      for (int64_t j = 0; j < L; j += 16) __builtin_prefetch(w2 + j, 1, 3);
      uint32_t s2 = __atomic_load_n(&p->rs->slot[r2], __ATOMIC_RELAXED);
      if (s2) {
        const float *m2 = p->m + (int64_t)(s2 - 1) * 2 * L;
        for (int64_t j = 0; j < 2 * L; j += 16) __builtin_prefetch(m2 + j, 1, 3);
      }
    }
    float *mr = stateful ? mv_row(p, r) : NULL; /* plain SGD keeps no state per row */
    if (!mm_optim_fused(st, p->w + r * L, p->gc + t * L, mr, mr ? mr + L : NULL, bak + t * L, L)) ok = 0;
  }
  return ok;
}

/* the weights of the step back from M->bak */
static void undo_step(mm_model *M) {
  int64_t q = 0;
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    if (p->frozen) continue;
    int64_t nseg = p->sparse ? p->ntouched : 1;
    for (int64_t t = 0; t < nseg; t++) {
      int64_t off = p->sparse ? p->tlist[t] * p->rowlen : 0, cnt = p->sparse ? p->rowlen : p->count;
      memcpy(p->w + off, M->bak + q, (size_t)cnt * sizeof(float));
      q += cnt;
    }
  }
}

/* One optimiser step over every parameter (sparse ones: touched rows only):
 * the old weights go to M->bak, then the update, the gradient back to zero and
 * the finite test of the new weights. If the step makes any weight
 * non-finite, the old values come back and MM_ENUM is returned. */
int mm_update_apply(mm_model *M, const mm_train_opts *o, double scale, mm_err *e) {
  int64_t need = step_floats(M);
  if (need > M->bakcap) {
    mm_ffree(M->bak);
    /* 64-byte aligned: the fused pass streams big blocks of it (optim.c) */
    M->bak = aligned_alloc(64, (((size_t)need * sizeof(float) + 63) / 64) * 64);
    M->bakcap = M->bak ? need : 0;
    if (!M->bak) {
      mm_params_zero_grads(M);
      return mm_errorf(e, MM_ENOMEM, "fit: out of memory");
    }
  }
  M->step++;
  M->wgen++;
  M->opt_dirty = 1;
  mm_optim_step st;
  mm_optim_step_init(&st, o->optimizer == MM_OPT_ADAM, o->lr, o->b1, o->b2, o->eps, o->wd, o->momentum, M->step);
  st.scale = (float)scale;
  int bad = 0;
  int64_t q = 0;
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    if (p->frozen) {
      if (!p->sparse) memset(p->g, 0, (size_t)p->count * sizeof(float));
      continue;
    }
    if (p->sparse) {
      if (!update_rows(&st, p, M->bak + q)) bad = i + 1;
      q += p->ntouched * p->rowlen;
    } else {
      mm_optim_step ps = st;
      if (p->lr_scale != 1.0f) ps.lr *= p->lr_scale, ps.step_size *= p->lr_scale;
      if (!mm_optim_fused_mt(&ps, p->w, p->g, p->m, p->v, M->bak + q, p->count)) bad = i + 1;
      q += p->count;
    }
  }
  if (bad) undo_step(M);
  mm_params_forget_touched(M);
  if (bad) return mm_errorf(e, MM_ENUM, "fit: the update made %s non-finite (Inf/NaN)", M->params[bad - 1].name);
  return MM_OK;
}
