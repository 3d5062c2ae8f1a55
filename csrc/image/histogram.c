/* histogram.c - the HSV colour histogram: a hand-crafted affective-image
 * feature (hue/saturation/value counts, L1-normalised), no training. */
#include <math.h>
#include <string.h>

#include "image.h"

static int check_bins(int hb, int sb, int vb, int64_t npix, mm_err *e) {
  if (hb < 1 || hb > 64 || sb < 1 || sb > 64 || vb < 1 || vb > 64)
    return mm_errorf(e, MM_EINVAL, "histogram: bins %dx%dx%d must each be in 1..64", hb, sb, vb);
  if (npix < 1) return mm_errorf(e, MM_EINVAL, "histogram: image has no pixels");
  return MM_OK;
}

static inline int bin_of(float v, int n) {
  int i = (int)(v * (float)n);
  return i < 0 ? 0 : (i >= n ? n - 1 : i);
}

/* r, g, b in [0, 1] -> flat bin index */
static inline int64_t hsv_bin(float r, float g, float b, int hb, int sb, int vb) {
  float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), d = mx - mn;
  float h = 0.0f; /* in units of 60 degrees, [0, 6) */
  if (d > 0.0f) {
    if (mx == r)
      h = (g - b) / d;
    else if (mx == g)
      h = 2.0f + (b - r) / d;
    else
      h = 4.0f + (r - g) / d;
    if (h < 0.0f) h += 6.0f;
  }
  float s = mx > 0.0f ? d / mx : 0.0f;
  int ih = bin_of(h / 6.0f, hb), is = bin_of(s, sb), iv = bin_of(mx, vb);
  return ((int64_t)ih * sb + is) * vb + iv;
}

static void l1(float *out, int64_t nb, int64_t npix) {
  float inv = 1.0f / (float)npix;
  for (int64_t i = 0; i < nb; i++) out[i] *= inv;
}

int mm_image_hsv_histogram_rgb8(const uint8_t *rgb, int64_t npix, int hb, int sb, int vb, float *out, mm_err *e) {
  int rc = check_bins(hb, sb, vb, npix, e);
  if (rc) return rc;
  int64_t nb = (int64_t)hb * sb * vb;
  memset(out, 0, (size_t)nb * sizeof *out);
  const float k = 1.0f / 255.0f;
  for (int64_t i = 0; i < npix; i++) {
    const uint8_t *p = rgb + i * 3;
    out[hsv_bin(p[0] * k, p[1] * k, p[2] * k, hb, sb, vb)] += 1.0f;
  }
  l1(out, nb, npix);
  return MM_OK;
}

static inline float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

static int histogram_chw(const float *chw, int64_t hw, int hb, int sb, int vb, float *out, mm_err *e) {
  int rc = check_bins(hb, sb, vb, hw, e);
  if (rc) return rc;
  for (int64_t i = 0; i < 3 * hw; i++)
    if (isnan(chw[i]))
      return mm_errorf(e, MM_ENUM, "histogram: image contains NaN at channel %d, pixel %lld", (int)(i / hw) + 1,
                       (long long)(i % hw) + 1);
  int64_t nb = (int64_t)hb * sb * vb;
  memset(out, 0, (size_t)nb * sizeof *out);
  for (int64_t i = 0; i < hw; i++)
    out[hsv_bin(clamp01(chw[i]), clamp01(chw[hw + i]), clamp01(chw[2 * hw + i]), hb, sb, vb)] += 1.0f;
  l1(out, nb, hw);
  return MM_OK;
}

int mm_image_hsv_histogram_chw(const float *chw, int64_t n, int64_t hw, int hb, int sb, int vb, float *out, mm_err *e) {
  int64_t nb = (int64_t)hb * sb * vb;
  for (int64_t k = 0; k < n; k++) {
    int rc = histogram_chw(chw + k * 3 * hw, hw, hb, sb, vb, out + k * nb, e);
    if (rc) return n > 1 ? mm_err_prefix(e, "image %lld: ", (long long)k + 1) : rc;
  }
  return MM_OK;
}
