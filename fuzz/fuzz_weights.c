/* fuzz_weights: the model-file checks of csrc/model/weights.c through the C
 * API alone (no Lua): a small joint model (a text bag and a feature
 * modality) is built once from mm_model_init / mm_model_add_modality /
 * mm_model_build_resolved, then every input is a header + data section for
 * mm_model_load_weights. Input: per parameter (model order) a record of 15
 * bytes: flags (bit 0 present, bit 1 dtype "F32" (else "F16"), bit 2
 * data_offsets given), ndim, 4 dims (int16 LE), begin (int32 LE), the
 * length in floats (int8: end = begin + 4 * length); the rest of the input is
 * the data section.
 * Invariants beyond "no crash, no leak, no read outside the data": a failed
 * load names the file; a load that succeeds copied exactly the bytes each
 * record points at, and every weight is finite. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

#define REC 15

static mm_model *model(void) {
  static mm_model M;
  static int built;
  if (built) return &M;
  mm_err e = {0};
  mm_model_init(&M);
  M.fusion = MM_FUSION_JOINT;
  M.dim = 4;
  M.nclasses = 3;
  M.ngrams = 1;
  M.buckets = 0;
  mm_modcfg c;
  mm_modcfg_init(&c);
  strcpy(c.name, "text");
  c.enc = MM_ENC_TEXT;
  if (mm_model_add_modality(&M, &c, &e)) abort();
  mm_modcfg_init(&c);
  strcpy(c.name, "f");
  c.enc = MM_ENC_FEAT;
  c.in_dim = 5;
  if (mm_model_add_modality(&M, &c, &e)) abort();
  char *words[] = {"cat", "face", "heart"};
  if (mm_model_build_resolved(&M, words, 3, &e)) abort();
  built = 1;
  return &M;
}

static int32_t rd32(const uint8_t *p) {
  return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}
static int16_t rd16(const uint8_t *p) { return (int16_t)((uint16_t)p[0] | (uint16_t)p[1] << 8); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mm_model *M = model();
  int n = M->nparams;
  mm_weight_entry ents[16];
  const mm_weight_entry *by[16];
  if (n > 16) abort();
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    by[i] = NULL;
    if (off + REC > size) continue;
    const uint8_t *r = data + off;
    off += REC;
    if (!(r[0] & 1)) continue;
    mm_weight_entry *t = &ents[i];
    memset(t, 0, sizeof *t);
    t->dtype = (r[0] & 2) ? "F32" : "F16";
    t->ndim = r[1] % 6;
    for (int d = 0; d < 4; d++) t->shape[d] = rd16(r + 2 + 2 * d);
    t->has_offsets = (r[0] & 4) != 0;
    t->begin = rd32(r + 10);
    t->end = (int64_t)t->begin + (int8_t)r[14] * 4;
    by[i] = t;
  }
  /* the data section: a private copy of exactly its bytes, so reads past it are caught */
  size_t dlen = size - (off < size ? off : size);
  uint8_t *dat = malloc(dlen ? dlen : 1);
  if (!dat) return 0;
  if (dlen) memcpy(dat, data + off, dlen);
  mm_err e = {0};
  if (mm_model_load_weights(M, by, dat, dlen, "fuzz.mmf", &e) == MM_OK) {
    for (int i = 0; i < n; i++) {
      const mm_param *p = &M->params[i];
      if (memcmp(p->w, dat + by[i]->begin, (size_t)p->count * 4) != 0) abort();
      for (int64_t j = 0; j < p->count; j++)
        if (!isfinite(p->w[j])) abort();
    }
  } else if (strncmp(e.msg, "fuzz.mmf: ", 10) != 0) {
    abort(); /* every failure names the file */
  }
  free(dat);
  return 0;
}
