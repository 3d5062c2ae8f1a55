/* model_stream.c - build, train, predict and evaluate on a stream
 * (model_stream.h): the loops of train.c and run.c with the batches taken
 * from mm_stream_next_batch instead of an index into a dataset. The text of
 * every chunk is tokenised on the stream's worker threads (the epoch's
 * prepare step), so the training thread only runs the batches. */
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "model_stream.h"

/* the modalities of the stream the model reads (bits of mm_stream_modalities) */
static uint32_t wanted(const mm_model *M, const mm_stream *s) {
  mm_stream_modality mods[MM_MAXMOD];
  int n = mm_stream_modalities(s, mods);
  uint32_t bits = 0;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < M->k; k++)
      if (strcmp(M->mod[k].name, mods[i].name) == 0) bits |= 1u << i;
  return bits ? bits : 1u; /* an epoch with nothing to build still counts rows: the first modality */
}

/* a worker's step on every chunk: the token ids of its text under M's vocabulary */
static int prepare_text(void *ud, mm_dataset *ds, mm_err *e) {
  const mm_model *M = ud;
  for (int k = 0; k < M->k; k++) {
    if (M->mod[k].enc != MM_ENC_TEXT) continue;
    int j = mm_dataset_find(ds, M->mod[k].name);
    if (j < 0 || ds->mods[j].kind != MM_MOD_TEXT) continue;
    int rc = mm_batch_cache_text(M, &ds->mods[j], ds->n, e);
    if (rc) return rc;
  }
  return MM_OK;
}

mm_stream_epoch mm_model_stream_epoch(const mm_model *M, const mm_stream *s, int shuffle, uint64_t seed) {
  mm_stream_epoch ep = {shuffle, seed, wanted(M, s), prepare_text, (void *)M};
  return ep;
}

int mm_model_stream_labelled(const mm_stream_batch *b, mm_err *e) {
  for (int64_t i = 0; i < b->n; i++)
    if (b->ds->labels[b->rows[i]] < 0)
      return mm_errorf(e, MM_EINVAL, "fit: training row %lld of the stream has no label", (long long)(b->first + i + 1));
  return MM_OK;
}

int mm_model_stream_check(const mm_model *M, const mm_stream *s, const char *what, mm_err *e) {
  if (mm_stream_nclasses(s) != M->nclasses)
    return mm_errorf(e, MM_EINVAL, "%s: the stream has %lld classes, the model %lld", what,
                     (long long)mm_stream_nclasses(s), (long long)M->nclasses);
  return MM_OK;
}

/* ---- building ------------------------------------------------------------------------ */

/* the text modality the model's text encoder reads, as the stream's modality index (-1: none) */
static int text_modality(const mm_model *M, const mm_stream *s) {
  mm_stream_modality mods[MM_MAXMOD];
  int n = mm_stream_modalities(s, mods);
  for (int k = 0; k < M->k; k++) {
    if (M->mod[k].enc != MM_ENC_TEXT && M->mod[k].enc != MM_ENC_AUTO) continue;
    for (int i = 0; i < n; i++)
      if (mods[i].kind == MM_MOD_TEXT && strcmp(mods[i].name, M->mod[k].name) == 0) return i;
  }
  return -1;
}

/* the stream's feature modalities whose row norms set a projection's default
 * learning rate (mm_row_norms_wanted, build.c) */
static uint32_t norm_modalities(const mm_model *M, const mm_stream *s) {
  mm_stream_modality mods[MM_MAXMOD];
  int n = mm_stream_modalities(s, mods);
  uint32_t bits = 0;
  for (int k = 0; k < M->k; k++) {
    if (!mm_row_norms_wanted(M, k)) continue;
    for (int i = 0; i < n; i++)
      if (mods[i].kind == MM_MOD_DENSE && strcmp(mods[i].name, M->mod[k].name) == 0) bits |= 1u << i;
  }
  return bits;
}

/* one pass over the stream: its text counted into c (ti >= 0; bounded when
 * max_vocab is set) and the norms of the feature rows of the modalities in
 * feats added to nr */
static int scan_stream(const mm_model *M, mm_stream *s, int ti, mm_counter *c, uint32_t feats, mm_row_norms *nr,
                       mm_err *e) {
  mm_vocab_opts vo = mm_model_vocab_opts(M);
  int64_t bound = vo.max_size > 0 ? 4 * vo.max_size : 0;
  mm_stream_epoch ep = {0, 0, (ti >= 0 ? 1u << ti : 0) | feats, NULL, NULL};
  int rc = mm_stream_begin(s, &ep, e);
  while (!rc) {
    mm_dataset *ch = NULL;
    rc = mm_stream_next_chunk(s, &ch, e);
    if (rc || !ch) break;
    for (int j = 0; j < ch->k && !rc; j++) {
      const mm_modality *m = &ch->mods[j];
      if (m->kind != MM_MOD_TEXT) continue;
      for (int64_t r = 0; r < ch->n && !rc; r++)
        if (m->mask[r])
          rc = mm_counter_add_text(c, m->text + m->off[r], (size_t)(m->off[r + 1] - m->off[r]), &vo.tok, e);
    }
    if (feats) mm_row_norms_add(M, ch, nr);
    mm_dataset_free(ch);
    if (!rc && c && bound && mm_counter_size(c) > bound) rc = mm_counter_prune(c, bound / 2, e);
  }
  mm_stream_end(s);
  return rc;
}

int mm_model_build_stream(mm_model *M, mm_stream *s, uint64_t seed, mm_err *e) {
  if (M->built) return mm_model_stream_check(M, s, "model", e);
  int rc = mm_model_stream_check(M, s, "model", e);
  if (rc) return rc;
  mm_dataset *tpl = mm_stream_template(s, e);
  if (!tpl) return e->code;
  mm_counter *c = NULL;
  mm_row_norms nr = {{0}, {0}};
  int ti = text_modality(M, s);
  uint32_t feats = norm_modalities(M, s);
  if (ti >= 0) {
    c = mm_counter_new(e);
    if (!c) rc = e->code;
  }
  if (!rc && (ti >= 0 || feats)) rc = scan_stream(M, s, ti, c, feats, &nr, e);
  if (!rc) rc = mm_model_build_counted(M, tpl, c, &nr, seed, e);
  mm_counter_free(c);
  mm_dataset_free(tpl);
  return rc;
}

/* ---- training ------------------------------------------------------------------------ */

int mm_model_train_stream(mm_model *M, mm_stream *s, const mm_train_opts *o, mm_epoch_stats *st, mm_err *e) {
  M->wgen++;
  memset(st, 0, sizeof *st);
  if (!M->built) return mm_errorf(e, MM_EINVAL, "model: not built (fit builds it)");
  int rc = mm_model_stream_check(M, s, "fit", e);
  if (!rc) rc = mm_train_opts_check(o, M->nclasses, e);
  if (rc) return rc;
  double t0 = mm_now_seconds(), last = t0;
  int64_t B = o->batch;
  ws *w = mm_ws_acquire(M, B, 1, e);
  if (!w) return e->code;
  M->opt_dirty = 1;
  mm_stream_stats ss;
  mm_stream_stats_get(s, &ss);
  int64_t batches = ss.last_rows >= 0 ? (ss.last_rows + B - 1) / B : 0; /* known after a first pass */
  mm_stream_epoch ep = mm_model_stream_epoch(M, s, o->shuffle, o->shuffle ? mm_rng_u64(&M->rng) : 0);
  rc = mm_stream_begin(s, &ep, e);
  double lsum = 0;
  int64_t correct = 0, seen = 0, nb = 0, reported = -1;
  if (!rc) mm_params_zero_grads(M);
  while (!rc) {
    mm_stream_batch b;
    rc = mm_stream_next_batch(s, B, &b, e);
    if (rc || b.n == 0) break;
    rc = mm_model_stream_labelled(&b, e);
    if (!rc) rc = mm_batch_bind(M, b.ds, w, 1, e);
    double loss = 0;
    if (!rc) rc = mm_train_step(M, b.ds, w, o, b.rows, b.n, b.first, nb, &loss, e);
    if (rc) break;
    lsum += loss * b.n;
    for (int64_t i = 0; i < b.n; i++) correct += mm_argmax(w->probs + i * M->nclasses, M->nclasses) == w->y[i];
    seen += b.n;
    nb++;
    double t = mm_now_seconds();
    if (!o->progress || t - last < o->progress_interval) continue;
    last = t;
    reported = nb;
    mm_progress pr = {nb, batches > nb ? batches : nb, seen, lsum / seen, (double)correct / seen, t - t0};
    int r = o->progress(o->progress_ud, &pr);
    if (r == 1) rc = mm_errorf(e, MM_EINVAL, "fit: the progress callback failed");
    if (r == 2) st->stopped = 1;
    if (r) break;
  }
  /* the last batch is always reported, as for data in memory */
  if (!rc && !st->stopped && o->progress && seen > 0 && reported != nb) {
    mm_progress pr = {nb, nb, seen, lsum / seen, (double)correct / seen, mm_now_seconds() - t0};
    int r = o->progress(o->progress_ud, &pr);
    if (r == 1) rc = mm_errorf(e, MM_EINVAL, "fit: the progress callback failed");
    if (r == 2) st->stopped = 1;
  }
  if (!rc && !st->stopped && seen == 0) rc = mm_errorf(e, MM_EINVAL, "fit: the training stream has no rows");
  mm_stream_end(s);
  mm_ws_release(M, w);
  st->loss = seen ? lsum / seen : 0;
  st->accuracy = seen ? (double)correct / seen : 0;
  st->batches = nb;
  st->samples = seen;
  st->seconds = mm_now_seconds() - t0;
  return rc;
}

/* ---- prediction ---------------------------------------------------------------------- */

int mm_model_run_stream(mm_model *M, mm_stream *s, float **probs, int64_t *n, mm_metrics *m, mm_err *e) {
  if (probs) *probs = NULL;
  *n = 0;
  if (!M->built) return mm_errorf(e, MM_EINVAL, "model: not trained yet (call fit or load a model)");
  int rc = mm_model_stream_check(M, s, "evaluate", e);
  if (rc) return rc;
  const int64_t B = MM_PREDICT_BATCH, C = M->nclasses;
  if (m && mm_metrics_begin(m, C)) return mm_errorf(e, MM_ENOMEM, "evaluate: out of memory");
  ws *w = mm_ws_acquire(M, B, 0, e);
  if (!w) {
    if (m) mm_metrics_free(m);
    return e->code;
  }
  int64_t *lab = malloc((size_t)B * sizeof *lab), cap = 0;
  float *P = NULL;
  if (!lab) rc = mm_errorf(e, MM_ENOMEM, "predict: out of memory");
  mm_stream_epoch ep = mm_model_stream_epoch(M, s, 0, 0);
  if (!rc) rc = mm_stream_begin(s, &ep, e);
  while (!rc) {
    mm_stream_batch b;
    rc = mm_stream_next_batch(s, B, &b, e);
    if (rc || b.n == 0) break;
    rc = mm_batch_bind(M, b.ds, w, 0, e);
    double loss;
    if (!rc) rc = mm_run_batch(M, b.ds, w, b.rows, b.n, 0, NULL, &loss, e);
    if (rc) break;
    if (probs) {
      if (*n + b.n > cap) {
        int64_t nc = cap ? cap * 2 : 4096;
        while (nc < *n + b.n) nc *= 2;
        float *q = realloc(P, (size_t)(nc * C) * sizeof *q);
        if (!q) {
          rc = mm_errorf(e, MM_ENOMEM, "predict: out of memory for %lld rows of probabilities", (long long)nc);
          break;
        }
        P = q, cap = nc;
      }
      memcpy(P + *n * C, w->probs, (size_t)(b.n * C) * sizeof *P);
    }
    if (m) {
      for (int64_t i = 0; i < b.n; i++) lab[i] = b.ds->labels[b.rows[i]];
      mm_metrics_add(m, w->probs, lab, b.n);
    }
    *n += b.n;
  }
  mm_stream_end(s);
  mm_ws_release(M, w);
  free(lab);
  if (rc) {
    free(P);
    if (m) mm_metrics_free(m);
    *n = 0;
    return rc;
  }
  if (m) mm_metrics_end(m);
  if (probs) *probs = P;
  return MM_OK;
}
