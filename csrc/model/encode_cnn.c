/* encode_cnn.c - the CNN image encoder: blocks of conv(k, pad k/2) -> relu
 * -> max-pool 2 (when the map is at least 2x2), then a global average pool
 * (out_dim = the last block's channels). Training runs channel-major
 * (activations [c, n, h, w], mm_conv2d_cn_*) and keeps each block's im2col
 * for the backward; inference runs the direct convolution (nn/cnn_direct.h)
 * one sample at a time, reading the dataset's bytes when they need no
 * resizing, with the packed kernels kept while the weights stay the same. */
#include <stdlib.h>
#include <string.h>

#include "../core/cpu.h"
#include "../core/tensor.h"
#include "../image/image.h"
#include "../nn/cnn_direct.h"
#include "../nn/nn.h"
#include "model_internal.h"

/* pixels (0..255) -> (x / 255 - 0.5) / 0.25 */
static const float img_mean[3] = {0.5f, 0.5f, 0.5f};
static const float img_std[3] = {0.25f, 0.25f, 0.25f};

_Static_assert(MM_MAXBLOCKS <= MM_CNN_MAXBLOCKS, "the direct-convolution inference takes every CNN block");

/* Shapes of the CNN blocks for n samples. With colmax (the workspace): places
 * each block's whole-batch im2col in the ws col buffer and grows *colmax to
 * the floats it needs; when train, blocks (and CNN modalities) get places of
 * their own, one after the other, so backward reuses the forward's im2col.
 * Inference needs no whole-batch im2col: small ones (a few posts) share
 * offset 0 (no allocation per call), for big ones (colofs -1) the conv
 * allocates a chunk-sized im2col per thread itself. */
int mm_cnn_shapes(const mm_modcfg *c, modws *m, int64_t n, int train, int64_t *colmax, mm_err *e) {
  int64_t cin = 3, h = c->img_h, wd = c->img_w;
  for (int b = 0; b < c->nblocks; b++) {
    int rc = mm_conv2d_shape_init(&m->cs[b], n, cin, h, wd, c->ch[b], c->ksize, c->ksize, 1, c->ksize / 2, 1, e);
    if (rc) return rc;
    int64_t cs = mm_conv2d_cn_col_size(&m->cs[b]);
    if (colmax && train) {
      m->colofs[b] = *colmax;
      *colmax += cs;
    } else if (colmax) {
      m->colofs[b] = cs <= ((int64_t)1 << 20) ? 0 : -1;
      if (m->colofs[b] == 0 && cs > *colmax) *colmax = cs;
    }
    h = m->cs[b].oh, wd = m->cs[b].ow, cin = c->ch[b];
    m->pooled[b] = h >= 2 && wd >= 2;
    if (m->pooled[b]) {
      rc = mm_pool2d_shape_init(&m->ps[b], n, cin, h, wd, 2, 2, 0, e);
      if (rc) return rc;
      h = m->ps[b].oh, wd = m->ps[b].ow;
    }
  }
  return MM_OK;
}

#define FA(ptr, cnt)                             \
  do {                                           \
    (ptr) = mm_falloc((int64_t)(cnt) + 1);       \
    if (!(ptr)) goto oom;                        \
  } while (0)

/* the per-block activations (and their gradients when train) for batches of
 * B, after mm_cnn_shapes; -1 when out of memory (nothing half-made) */
int mm_cnn_activations(const mm_modcfg *c, modws *m, int64_t B, int train) {
  for (int b = 0; b < c->nblocks; b++) {
    int64_t na = B * c->ch[b] * m->cs[b].oh * m->cs[b].ow;
    FA(m->a[b], na);
    if (train) FA(m->ga[b], na);
    if (m->pooled[b]) {
      int64_t np = B * c->ch[b] * m->ps[b].oh * m->ps[b].ow;
      FA(m->p[b], np);
      if (train) {
        FA(m->gp[b], np);
        m->arg[b] = malloc((size_t)np * sizeof *m->arg[b]);
        if (!m->arg[b]) goto oom;
      }
    }
  }
  return 0;
oom: /* the forward tests m->a[0] */
  for (int b = 0; b < c->nblocks; b++) {
    mm_ffree(m->a[b]);
    mm_ffree(m->ga[b]);
    mm_ffree(m->p[b]);
    mm_ffree(m->gp[b]);
    free(m->arg[b]);
    m->a[b] = m->ga[b] = m->p[b] = m->gp[b] = NULL;
    m->arg[b] = NULL;
  }
  return -1;
}

/* inference by direct convolution; bytes: rows are consecutive and stored at
 * the model's size, so the CNN reads the dataset's bytes itself
 * (mm_image_prep_rgb8's arithmetic, no float image) */
static int cnn_direct(mm_model *M, const mm_modality *dm, modws *m, const mm_modcfg *c, const mm_image_prep *pp,
                      const int64_t *rows, int64_t n, int bytes, mm_err *e) {
  mm_cnn_block bl[MM_MAXBLOCKS];
  for (int b = 0; b < c->nblocks; b++)
    bl[b] = (mm_cnn_block){c->ch[b], c->ksize, M->params[c->p_cw[b]].w, M->params[c->p_cb[b]].w, m->pooled[b]};
  int64_t need = mm_cnn_direct_scratch(bl, (int)c->nblocks, n, 3, c->img_h, c->img_w, 1);
  if (need < 0) return mm_errorf(e, MM_EINVAL, "model: the cnn of '%s' has a shape direct convolution rejects", c->name);
  if (need > m->dcap) {
    mm_ffree(m->dscr);
    m->dcap = 0;
    m->dgen = 0;
    m->dscr = mm_falloc_uninit(need);
    if (!m->dscr) return mm_errorf(e, MM_ENOMEM, "model: out of memory for the cnn of '%s'", c->name);
    m->dcap = need;
  }
  /* the packed kernels are kept while the weights and the kernel level stay the same */
  int kern = mm_isa();
  int packed = m->dgen == M->wgen + 1 && m->dkern == kern;
  if (bytes) {
    float sc[3], sh[3];
    mm_image_prep_rgb8_affine(pp, sc, sh);
    int64_t per = dm->h * dm->w * 3;
    mm_cnn_direct_forward_rgb8(bl, (int)c->nblocks, n, c->img_h, c->img_w, dm->pix + rows[0] * per, sc, sh, m->h,
                               m->dscr, packed, 1);
  } else {
    mm_cnn_direct_forward(bl, (int)c->nblocks, n, 3, c->img_h, c->img_w, m->img, m->h, m->dscr, packed, 1);
  }
  m->dgen = M->wgen + 1;
  m->dkern = kern;
  return MM_OK;
}

/* conv + bias + ReLU (+ max pool) per block, channel-major, then the global
 * average pool; training keeps the im2col for backward (colofs >= 0 then) */
static int cnn_blocks_forward(mm_model *M, ws *w, modws *m, const mm_modcfg *c, int64_t n, int train, mm_err *e) {
  if (!m->a[0] && mm_cnn_activations(c, m, w->B, w->train)) /* the kernel level changed since the workspace */
    return mm_errorf(e, MM_ENOMEM, "model: out of memory for the cnn of '%s'", c->name);
  const float *x = m->img;
  for (int b = 0; b < c->nblocks; b++) {
    int pl = m->pooled[b];
    float *col = m->colofs[b] >= 0 ? w->col + m->colofs[b] : NULL;
    if (mm_conv2d_cn_forward(&m->cs[b], x, b == 0, M->params[c->p_cw[b]].w, M->params[c->p_cb[b]].w, m->a[b], col, 1,
                             pl ? &m->ps[b] : NULL, pl ? m->p[b] : NULL, pl && train ? m->arg[b] : NULL))
      return mm_errorf(e, MM_ENOMEM, "model: out of memory for the cnn of '%s'", c->name);
    x = pl ? m->p[b] : m->a[b];
  }
  int last = c->nblocks - 1;
  int64_t lhw = m->pooled[last] ? m->ps[last].oh * m->ps[last].ow : m->cs[last].oh * m->cs[last].ow;
  mm_global_avg_pool_cn_forward(x, m->h, n, c->ch[last], lhw);
  return MM_OK;
}

int mm_encode_cnn_forward(mm_model *M, const mm_modality *dm, ws *w, int i, const int64_t *rows, int64_t n,
                          int train, mm_err *e) {
  const mm_modcfg *c = &M->mod[i];
  modws *m = &w->m[i];
  int rc = mm_cnn_shapes(c, m, n, 0, NULL, e);
  if (rc) return rc;
  const int aug = train && c->augment;
  mm_image_prep pp = {(int)c->img_h, (int)c->img_w, aug ? 2 : 0, aug, aug, img_mean, img_std};
  rc = mm_image_prep_check(&pp, (int)dm->h, (int)dm->w, e);
  if (rc) return rc;
  int64_t per = dm->h * dm->w * 3, hw = c->img_h * c->img_w;
  int direct = !train && mm_cnn_direct_ok(), bytes = direct && dm->h == c->img_h && dm->w == c->img_w;
  for (int64_t b = 1; bytes && b < n; b++) bytes = rows[b] == rows[0] + b;
  if (!bytes) /* crop, flip and normalise into float images (the augmentation draws from the model's rng) */
    for (int64_t b = 0; b < n; b++)
      mm_image_prep_rgb8(&pp, dm->pix + rows[b] * per, (int)dm->h, (int)dm->w, &M->rng, m->img + b * 3 * hw);
  if (direct) return cnn_direct(M, dm, m, c, &pp, rows, n, bytes, e);
  return cnn_blocks_forward(M, w, m, c, n, train, e);
}

void mm_encode_cnn_backward(mm_model *M, ws *w, int i, int64_t n) {
  const mm_modcfg *c = &M->mod[i];
  modws *m = &w->m[i];
  int last = c->nblocks - 1;
  int64_t lhw = m->pooled[last] ? m->ps[last].oh * m->ps[last].ow : m->cs[last].oh * m->cs[last].ow;
  mm_global_avg_pool_cn_backward(m->gh, m->pooled[last] ? m->gp[last] : m->ga[last], n, c->ch[last], lhw);
  for (int b = last; b >= 0; b--) {
    if (m->pooled[b]) {
      mm_max_pool2d_relu_backward(&m->ps[b], m->arg[b], m->p[b], m->gp[b], m->ga[b]);
    } else {
      int64_t na = n * c->ch[b] * m->cs[b].oh * m->cs[b].ow;
      mm_relu_backward(m->a[b], m->ga[b], m->ga[b], na);
    }
    const float *xin = b == 0 ? m->img : (m->pooled[b - 1] ? m->p[b - 1] : m->a[b - 1]);
    float *gxin = b == 0 ? NULL : (m->pooled[b - 1] ? m->gp[b - 1] : m->ga[b - 1]);
    /* the forward of this batch left the im2col of xin at col + colofs[b] */
    mm_conv2d_cn_backward(&m->cs[b], xin, b == 0, M->params[c->p_cw[b]].w, m->ga[b], gxin, M->params[c->p_cw[b]].g,
                          M->params[c->p_cb[b]].g, w->col + m->colofs[b], 1);
  }
}
