/* prep.c - RGB8 / float images into network input: [0,1] floats, mean/std
 * normalisation, crop (random or centred) with padding, horizontal flip. */
#include <math.h>

#include "image.h"

const float mm_imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
const float mm_imagenet_std[3] = {0.229f, 0.224f, 0.225f};

void mm_image_to_chw(const uint8_t *src, int w, int h, float *dst) {
  int64_t hw = (int64_t)w * h;
  for (int64_t i = 0; i < hw; i++)
    for (int c = 0; c < 3; c++) dst[c * hw + i] = src[i * 3 + c] * (1.0f / 255.0f);
}

int mm_image_normalize(float *x, int64_t n, int channels, int64_t hw, const float *mean, const float *std, mm_err *e) {
  for (int c = 0; c < channels; c++) {
    if (!(std[c] > 0) || !isfinite(std[c]))
      return mm_errorf(e, MM_EINVAL, "normalize: std[%d] = %g must be a finite number > 0", c + 1, (double)std[c]);
    if (!isfinite(mean[c]))
      return mm_errorf(e, MM_EINVAL, "normalize: mean[%d] = %g must be finite", c + 1, (double)mean[c]);
  }
  for (int c = 0; c < channels; c++) {
    float m = mean[c], inv = 1.0f / std[c];
    for (int64_t k = 0; k < n; k++) {
      float *p = x + (k * channels + c) * hw;
      for (int64_t i = 0; i < hw; i++) p[i] = (p[i] - m) * inv;
    }
  }
  return MM_OK;
}

int mm_image_prep_check(const mm_image_prep *p, int in_h, int in_w, mm_err *e) {
  if (in_h < 1 || in_w < 1) return mm_errorf(e, MM_EINVAL, "image size %dx%d must be positive", in_h, in_w);
  if (p->out_h < 1 || p->out_w < 1)
    return mm_errorf(e, MM_EINVAL, "crop size %dx%d must be positive", p->out_h, p->out_w);
  if (p->pad < 0 || p->pad > MM_IMAGE_MAX_SIDE) return mm_errorf(e, MM_EINVAL, "pad %d out of range", p->pad);
  if ((int64_t)p->out_h > (int64_t)in_h + 2 * p->pad || (int64_t)p->out_w > (int64_t)in_w + 2 * p->pad)
    return mm_errorf(e, MM_EINVAL, "crop %dx%d larger than the image %dx%d plus padding %d", p->out_h, p->out_w,
                     in_h, in_w, p->pad);
  if ((p->mean == NULL) != (p->std == NULL)) return mm_errorf(e, MM_EINVAL, "give both mean and std or neither");
  if (p->std)
    for (int c = 0; c < 3; c++)
      if (!(p->std[c] > 0) || !isfinite(p->std[c]) || !isfinite(p->mean[c]))
        return mm_errorf(e, MM_EINVAL, "std[%d] = %g must be finite and > 0 (mean %g)", c + 1, (double)p->std[c],
                         (double)p->mean[c]);
  return MM_OK;
}

/* window offsets (in padded coordinates) and flip for one sample */
static void draw_window(const mm_image_prep *p, int in_h, int in_w, mm_rng *rng, int *y0, int *x0, int *flip) {
  int sy = in_h + 2 * p->pad - p->out_h, sx = in_w + 2 * p->pad - p->out_w;
  if (p->random_crop) {
    *y0 = (int)mm_rng_below(rng, (uint64_t)sy + 1);
    *x0 = (int)mm_rng_below(rng, (uint64_t)sx + 1);
  } else {
    *y0 = sy / 2;
    *x0 = sx / 2;
  }
  *flip = p->flip ? (int)(mm_rng_u64(rng) >> 63) : 0;
}

void mm_image_prep_rgb8_affine(const mm_image_prep *p, float scale[3], float shift[3]) {
  for (int c = 0; c < 3; c++) {
    scale[c] = 1.0f / 255.0f;
    shift[c] = 0.0f;
    if (p->std) { /* (x/255 - m)/s = x*(1/(255 s)) - m/s */
      scale[c] = 1.0f / (255.0f * p->std[c]);
      shift[c] = -p->mean[c] / p->std[c];
    }
  }
}

void mm_image_prep_rgb8(const mm_image_prep *p, const uint8_t *src, int in_h, int in_w, mm_rng *rng, float *dst) {
  int y0, x0, flip;
  float sc[3], sh[3];
  mm_image_prep_rgb8_affine(p, sc, sh);
  draw_window(p, in_h, in_w, rng, &y0, &x0, &flip);
  int64_t ohw = (int64_t)p->out_h * p->out_w;
  if (!flip && y0 == p->pad && x0 == p->pad && p->out_h == in_h && p->out_w == in_w) {
    /* the whole image, unflipped (evaluation at the stored size): one pass
     * over the pixels, the same arithmetic as the general loop below */
    float *d0 = dst, *d1 = dst + ohw, *d2 = dst + 2 * ohw;
    for (int64_t i = 0; i < ohw; i++, src += 3) {
      d0[i] = src[0] * sc[0] + sh[0];
      d1[i] = src[1] * sc[1] + sh[1];
      d2[i] = src[2] * sc[2] + sh[2];
    }
    return;
  }
  for (int c = 0; c < 3; c++) {
    float scale = sc[c], shift = sh[c];
    float *d = dst + c * ohw;
    for (int y = 0; y < p->out_h; y++) {
      int sy = y0 + y - p->pad;
      float *row = d + (int64_t)y * p->out_w;
      if (sy < 0 || sy >= in_h) {
        for (int x = 0; x < p->out_w; x++) row[x] = 0.0f;
        continue;
      }
      const uint8_t *srow = src + (int64_t)sy * in_w * 3 + c;
      for (int x = 0; x < p->out_w; x++) {
        int sx = x0 + (flip ? p->out_w - 1 - x : x) - p->pad;
        row[x] = (sx < 0 || sx >= in_w) ? 0.0f : srow[(int64_t)sx * 3] * scale + shift;
      }
    }
  }
}

static void prep_chw(const mm_image_prep *p, const float *src, int channels, int in_h, int in_w, mm_rng *rng,
                     float *dst) {
  int y0, x0, flip;
  draw_window(p, in_h, in_w, rng, &y0, &x0, &flip);
  int64_t ohw = (int64_t)p->out_h * p->out_w, ihw = (int64_t)in_h * in_w;
  for (int c = 0; c < channels; c++) {
    float scale = 1.0f, shift = 0.0f;
    if (p->std && c < 3) {
      scale = 1.0f / p->std[c];
      shift = -p->mean[c] / p->std[c];
    }
    float *d = dst + c * ohw;
    const float *s = src + c * ihw;
    for (int y = 0; y < p->out_h; y++) {
      int sy = y0 + y - p->pad;
      float *row = d + (int64_t)y * p->out_w;
      if (sy < 0 || sy >= in_h) {
        for (int x = 0; x < p->out_w; x++) row[x] = 0.0f;
        continue;
      }
      const float *srow = s + (int64_t)sy * in_w;
      for (int x = 0; x < p->out_w; x++) {
        int sx = x0 + (flip ? p->out_w - 1 - x : x) - p->pad;
        row[x] = (sx < 0 || sx >= in_w) ? 0.0f : srow[sx] * scale + shift;
      }
    }
  }
}

void mm_image_prep_chw(const mm_image_prep *p, const float *src, int64_t n, int channels, int in_h, int in_w,
                       mm_rng *rng, float *dst) {
  int64_t in = (int64_t)channels * in_h * in_w, out = (int64_t)channels * p->out_h * p->out_w;
  for (int64_t k = 0; k < n; k++) prep_chw(p, src + k * in, channels, in_h, in_w, rng, dst + k * out);
}
