/* decode.c - image files to RGB8: stb_image decode, colour rule, resize.
 *
 * This is the ONE file that compiles stb_image and stb_image_resize. Both
 * are built static (STB_IMAGE_STATIC, STBIR static by default), so no stb
 * symbol leaves core.so and a second copy of stb in the process cannot
 * clash with ours. stb's own warnings are silenced here only.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../io/file.h"
#include "image.h"
#include "png.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wshift-negative-value"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wcast-qual"
#endif

/* stb 2.27 leaves parts of its buffers unwritten on some corrupt inputs (a
 * truncated uncompressed TGA keeps the rows it could not read; found by
 * fuzz_png_fast, which saw the same bytes decode to different pixels) and
 * would hand heap garbage out as pixels. Every stb allocation is zeroed, so
 * such inputs decode the same way every time and leak nothing. */
static void *stbi_zrealloc(void *p, size_t oldsz, size_t newsz) {
  unsigned char *q = realloc(p, newsz);
  if (q && newsz > oldsz) memset(q + oldsz, 0, newsz - oldsz);
  return q;
}
#define STBI_MALLOC(sz) calloc(1, (sz))
#define STBI_REALLOC_SIZED(p, oldsz, newsz) stbi_zrealloc((p), (oldsz), (newsz))
#define STBI_FREE(p) free(p)

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO         /* files are read by io/file.c */
/* only the formats mmfuse documents (PNG, JPEG, BMP, GIF, TGA): stb 2.27's PNM
 * header reader overflows an int on a long number (UB; found by fuzz_png_fast),
 * and PSD / HDR / PIC would be more such corners nobody asked for */
#define STBI_NO_PNM
#define STBI_NO_PSD
#define STBI_NO_HDR
#define STBI_NO_PIC
/* STBI_MAX_DIMENSIONS stays at stb's default (2^24): stbi_info then reports a
 * huge declared size, and mm_image_info rejects it (> MM_IMAGE_MAX_SIDE) with
 * a message that says so, before stbi_load allocates anything. */
#include <stb/stb_image.h>

#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_STATIC
#include <stb/stb_image_resize.h>

#if defined(__GNUC__)
#pragma GCC diagnostic pop
/* stb_image 2.27 declares stbi_set_unpremultiply_on_load_thread but defines it
 * under another name; GCC reports that at the end of the file, so this one
 * warning stays off for the rest of this file. */
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

const char *const mm_fit_names[] = {"stretch", "crop", NULL};

static const char *nm(const char *name) { return name ? name : "<bytes>"; }

const char *mm_image_status_name(int status) {
  if (status >= 0 && status < MM_FILE_STATUS_COUNT) return mm_file_status_names[status];
  if (status == MM_IMAGE_UNDECODABLE) return "undecodable";
  if (status == MM_IMAGE_TOO_MANY_PIXELS) return "too many pixels";
  return "?";
}

void mm_image_free(mm_image *img) {
  if (!img) return;
  free(img->px);
  img->px = NULL;
  img->w = img->h = 0;
}

/* A whole image file through io/file.c (regular files only, max_bytes
 * checked before reading): into buf when it fits, else a malloc'd *heap. A
 * zero-byte file is an error here: no image has no bytes. */
static int read_image_file(const char *path, int64_t max_bytes, uint8_t *buf, size_t cap, uint8_t **data,
                           uint8_t **heap, size_t *len, int *status, mm_err *e) {
  int rc = mm_file_read(path, max_bytes > 0 ? max_bytes : MM_IMAGE_MAX_BYTES, buf, cap, data, heap, len, status, e);
  if (rc) return rc;
  if (*len == 0) {
    free(*heap);
    *heap = NULL;
    if (status) *status = MM_IMAGE_UNDECODABLE;
    return mm_errorf(e, MM_EFORMAT, "%s: empty file (0 bytes)", path);
  }
  return MM_OK;
}

int mm_image_read_file(const char *path, int64_t max_bytes, uint8_t **buf, size_t *len, mm_err *e) {
  uint8_t *data;
  *buf = NULL;
  return read_image_file(path, max_bytes, NULL, 0, &data, buf, len, NULL, e);
}

/* stb_image 2.27 (Debian 12) trusts the symbol counts of a JPEG Huffman table
 * (DHT): a table declaring more than 256 codes overflows its 257-entry arrays
 * (fixed upstream in 2.28). Walk every marker segment of a JPEG - also those
 * between progressive scans - and refuse such a table before stb sees it. */
static int jpeg_check_dht(const uint8_t *b, size_t len, const char *name, mm_err *e) {
  /* stb reads the start-of-image marker like every other: any run of 0xFF
   * fill bytes, then 0xD8 (found by fuzzing: leading fill bytes hid a JPEG
   * from this check) */
  if (len < 4 || b[0] != 0xFF) return MM_OK;
  size_t i = 1;
  while (i < len && b[i] == 0xFF) i++;
  if (i >= len || b[i] != 0xD8) return MM_OK; /* not a JPEG */
  i++;
  while (i + 4 <= len) {
    if (b[i] != 0xFF) { /* entropy-coded data: skip to the next real marker */
      i++;
      continue;
    }
    uint8_t m = b[i + 1];
    if (m == 0x00 || m == 0xFF || (m >= 0xD0 && m <= 0xD7) || m == 0x01) { /* stuffing, fill, RSTn, TEM */
      i += (m == 0xFF) ? 1 : 2;
      continue;
    }
    if (m == 0xD9) break; /* EOI */
    size_t seg = ((size_t)b[i + 2] << 8) | b[i + 3];
    if (seg < 2) return mm_errorf(e, MM_EFORMAT, "%s: corrupt JPEG: marker segment length %zu", nm(name), seg);
    size_t end = i + 2 + seg;
    if (end > len) end = len; /* truncated: stb reports it */
    if (m == 0xC4) {
      /* as stb reads it: tables while the declared length lasts, even when
       * the last one runs past the segment (stb then fails, but only after
       * building that table) */
      size_t p = i + 4;
      long rest = (long)seg - 2;
      while (rest > 0 && p + 17 <= len) {
        size_t n = 0;
        for (int k = 0; k < 16; k++) n += b[p + 1 + k];
        if (n > 256)
          return mm_errorf(e, MM_EFORMAT, "%s: corrupt JPEG: Huffman table declares %zu codes (at most 256)",
                           nm(name), n);
        p += 17 + n;
        rest -= 17 + (long)n;
      }
      if (rest != 0) return mm_errorf(e, MM_EFORMAT, "%s: corrupt JPEG: bad Huffman table segment", nm(name));
      i = p;
      continue;
    }
    i = end;
  }
  return MM_OK;
}


int mm_image_info(const void *bytes, size_t len, const char *name, int *w, int *h, int *comp, mm_err *e) {
  int iw = 0, ih = 0, ic = 0;
  if (!bytes || len == 0) return mm_errorf(e, MM_EFORMAT, "%s: empty image data (0 bytes)", nm(name));
  if (len > (size_t)INT_MAX) return mm_errorf(e, MM_EFORMAT, "%s: image data too large (%zu bytes)", nm(name), len);
  /* PNG: stb refuses w*h*channels > 2^30 in its header check, and its
   * failure reason is then overwritten by the other formats it tries; read
   * the IHDR size ourselves so a huge PNG gets the right message. */
  const uint8_t *b = bytes;
  if (len >= 24 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(b + 12, "IHDR", 4) == 0) {
    uint32_t pw = ((uint32_t)b[16] << 24) | ((uint32_t)b[17] << 16) | ((uint32_t)b[18] << 8) | b[19];
    uint32_t ph = ((uint32_t)b[20] << 24) | ((uint32_t)b[21] << 16) | ((uint32_t)b[22] << 8) | b[23];
    if (pw > MM_IMAGE_MAX_SIDE || ph > MM_IMAGE_MAX_SIDE || pw == 0 || ph == 0)
      return mm_errorf(e, MM_EFORMAT, "%s: image dimensions %ux%u out of range (1..%d per side)", nm(name),
                       (unsigned)pw, (unsigned)ph, MM_IMAGE_MAX_SIDE);
  }
  int rc = jpeg_check_dht(b, len, name, e); /* before stb parses any JPEG header */
  if (rc) return rc;
  if (!stbi_info_from_memory(bytes, (int)len, &iw, &ih, &ic)) {
    const char *why = stbi_failure_reason();
    if (why && strstr(why, "large"))
      return mm_errorf(e, MM_EFORMAT, "%s: image dimensions too large (more than %d pixels per side)", nm(name),
                       MM_IMAGE_MAX_SIDE);
    return mm_errorf(e, MM_EFORMAT, "%s: not a supported image (PNG, JPEG, BMP, GIF, TGA) or corrupt header%s%s",
                     nm(name), why ? ": " : "", why ? why : "");
  }
  if (iw < 1 || ih < 1 || iw > MM_IMAGE_MAX_SIDE || ih > MM_IMAGE_MAX_SIDE)
    return mm_errorf(e, MM_EFORMAT, "%s: image dimensions %dx%d out of range (1..%d per side)", nm(name), iw, ih,
                     MM_IMAGE_MAX_SIDE);
  if (ic < 1 || ic > 4) return mm_errorf(e, MM_EFORMAT, "%s: unsupported channel count %d", nm(name), ic);
  if (w) *w = iw;
  if (h) *h = ih;
  if ((int64_t)iw * ih > MM_IMAGE_MAX_PIXELS)
    return mm_errorf(e, MM_EFORMAT, "%s: image of %dx%d = %lld pixels, more than the limit of %lld: refused before decoding",
                     nm(name), iw, ih, (long long)iw * ih, (long long)MM_IMAGE_MAX_PIXELS);
  if (comp) *comp = ic;
  return MM_OK;
}

/* n-channel (1..4) pixels -> RGB, alpha over white */
static void to_rgb(const uint8_t *src, int n, int64_t npix, uint8_t *dst) {
  for (int64_t i = 0; i < npix; i++) {
    const uint8_t *s = src + i * n;
    uint8_t *d = dst + i * 3;
    unsigned r, g, b, a = 255;
    if (n <= 2) {
      r = g = b = s[0];
      if (n == 2) a = s[1];
    } else {
      r = s[0];
      g = s[1];
      b = s[2];
      if (n == 4) a = s[3];
    }
    if (a != 255) {
      unsigned bg = 255u * (255u - a);
      r = (r * a + bg + 127u) / 255u;
      g = (g * a + bg + 127u) / 255u;
      b = (b * a + bg + 127u) / 255u;
    }
    d[0] = (uint8_t)r;
    d[1] = (uint8_t)g;
    d[2] = (uint8_t)b;
  }
}

int mm_image_resize_rgb8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, mm_err *e) {
  if (sw < 1 || sh < 1 || dw < 1 || dh < 1 || dw > MM_IMAGE_MAX_SIDE || dh > MM_IMAGE_MAX_SIDE)
    return mm_errorf(e, MM_EINVAL, "resize: sizes must be in 1..%d (from %dx%d to %dx%d)", MM_IMAGE_MAX_SIDE, sw, sh,
                     dw, dh);
  if (sw == dw && sh == dh) {
    memcpy(dst, src, (size_t)sw * (size_t)sh * 3);
    return MM_OK;
  }
  if (!stbir_resize_uint8(src, sw, sh, 0, dst, dw, dh, 0, 3))
    return mm_errorf(e, MM_ENOMEM, "resize: out of memory (from %dx%d to %dx%d)", sw, sh, dw, dh);
  return MM_OK;
}

/* RGB8 (sw x sh) -> dst (dw x dh) as `fit` says */
static int fit_into(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, int fit, const char *name,
                    mm_err *e) {
  if (fit == MM_FIT_CROP) {
    /* the centred source window with the target's aspect ratio */
    int cw = sw, ch = sh;
    if ((int64_t)sw * dh > (int64_t)sh * dw) { /* source wider than target */
      cw = (int)(((int64_t)sh * dw + dh / 2) / dh);
      if (cw < 1) cw = 1;
    } else {
      ch = (int)(((int64_t)sw * dh + dw / 2) / dw);
      if (ch < 1) ch = 1;
    }
    int x0 = (sw - cw) / 2, y0 = (sh - ch) / 2;
    const uint8_t *s = src + ((size_t)y0 * (size_t)sw + (size_t)x0) * 3;
    if (cw == dw && ch == dh) {
      for (int y = 0; y < dh; y++) memcpy(dst + (size_t)y * dw * 3, s + (size_t)y * sw * 3, (size_t)dw * 3);
      return MM_OK;
    }
    if (!stbir_resize_uint8(s, cw, ch, sw * 3, dst, dw, dh, 0, 3))
      return mm_errorf(e, MM_ENOMEM, "%s: out of memory resizing %dx%d to %dx%d", nm(name), sw, sh, dw, dh);
    return MM_OK;
  }
  if (fit != MM_FIT_STRETCH) return mm_errorf(e, MM_EINVAL, "%s: unknown fit mode %d", nm(name), fit);
  int rc = mm_image_resize_rgb8(src, sw, sh, dst, dw, dh, e);
  if (rc) mm_err_prefix(e, "%s: ", nm(name));
  return rc;
}

/* stb_image 2.27 computes `idata + offset` on a NULL buffer when a PNG's
 * first IDAT chunk is empty (undefined behaviour, found by fuzz_image). An
 * empty IDAT carries no data, so such chunks are dropped from a copy before
 * stb decodes it. Returns NULL (no copy needed) or the copy; *copy_len set. */
static uint8_t *png_without_empty_idat(const uint8_t *b, size_t len, size_t *copy_len) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (len < 8 || memcmp(b, sig, 8) != 0) return NULL;
  /* stb needs only a chunk's 8-byte header to act on it: an empty IDAT whose
   * CRC is cut off counts too (found by fuzz_png_fast) */
  int found = 0;
  for (size_t p = 8; p + 8 <= len;) {
    uint32_t n = ((uint32_t)b[p] << 24) | ((uint32_t)b[p + 1] << 16) | ((uint32_t)b[p + 2] << 8) | b[p + 3];
    if (n == 0 && memcmp(b + p + 4, "IDAT", 4) == 0) found = 1;
    if ((uint64_t)n + 12 > len - p) break;
    p += (size_t)n + 12;
  }
  if (!found) return NULL;
  uint8_t *out = malloc(len);
  if (!out) return NULL;
  memcpy(out, b, 8);
  size_t o = 8, p = 8;
  while (p + 8 <= len) {
    uint32_t n = ((uint32_t)b[p] << 24) | ((uint32_t)b[p + 1] << 16) | ((uint32_t)b[p + 2] << 8) | b[p + 3];
    int empty_idat = n == 0 && memcmp(b + p + 4, "IDAT", 4) == 0;
    if ((uint64_t)n + 12 > len - p) { /* truncated chunk: copied as is (stb reports it); an empty IDAT dropped */
      if (empty_idat) p = len;
      break;
    }
    if (!empty_idat) {
      memcpy(out + o, b + p, (size_t)n + 12);
      o += (size_t)n + 12;
    }
    p += (size_t)n + 12;
  }
  memcpy(out + o, b + p, len - p);
  *copy_len = o + (len - p);
  return out;
}

/* the general path: stb_image with the guards above, to a malloc'd RGB8
 * buffer at native size */
int mm_image_decode_general(const void *bytes, size_t len, const char *name, uint8_t **px, int *w, int *h,
                            mm_err *e) {
  int iw, ih, ic;
  int rc = mm_image_info(bytes, len, name, &iw, &ih, &ic, e);
  if (rc) return rc;
  if (mm_png_idat_past_end(bytes, len))
    return mm_errorf(e, MM_EFORMAT, "%s: corrupt or truncated image: an IDAT chunk runs past the end of the data",
                     nm(name));
  if (mm_png_stb_reads_uninit(bytes, len))
    return mm_errorf(e, MM_EFORMAT, "%s: corrupt or truncated image: invalid deflate distance code", nm(name));
  int n = 0;
  size_t clean_len = 0;
  uint8_t *clean = png_without_empty_idat(bytes, len, &clean_len);
  uint8_t *raw = clean ? stbi_load_from_memory(clean, (int)clean_len, &iw, &ih, &n, 0)
                       : stbi_load_from_memory(bytes, (int)len, &iw, &ih, &n, 0);
  free(clean);
  if (!raw) {
    const char *why = stbi_failure_reason();
    if (!why || !*why) why = "no pixel data"; /* stb's GIF reader can fail without a reason */
    return mm_errorf(e, MM_EFORMAT, "%s: corrupt or truncated image: %s", nm(name), why);
  }
  if (iw < 1 || ih < 1 || iw > MM_IMAGE_MAX_SIDE || ih > MM_IMAGE_MAX_SIDE || n < 1 || n > 4) {
    stbi_image_free(raw);
    return mm_errorf(e, MM_EFORMAT, "%s: decoded image %dx%d with %d channels is out of range", nm(name), iw, ih, n);
  }
  int64_t npix = (int64_t)iw * ih;
  uint8_t *rgb;
  if (n == 3) {
    rgb = raw; /* stb allocates with malloc (STBI_MALLOC default) */
  } else {
    rgb = malloc((size_t)npix * 3);
    if (!rgb) {
      stbi_image_free(raw);
      return mm_errorf(e, MM_ENOMEM, "%s: out of memory (%dx%d image)", nm(name), iw, ih);
    }
    to_rgb(raw, n, npix, rgb);
    stbi_image_free(raw);
  }
  *px = rgb;
  *w = iw;
  *h = ih;
  return MM_OK;
}

/* Decode at native size. The common PNG (png.c) first; anything it declines
 * goes through the general path. When dst != NULL and the image is exactly
 * dw x dh, the fast path may write the pixels into dst and leave *px NULL. */
static int decode_native(const void *bytes, size_t len, const char *name, uint8_t *dst, int dw, int dh, uint8_t **px,
                         int *w, int *h, mm_err *e) {
  *px = NULL;
  if (bytes && mm_png_decode_rgb8(bytes, len, dst, dw, dh, px, w, h) == MM_PNG_OK) return MM_OK;
  return mm_image_decode_general(bytes, len, name, px, w, h, e);
}

int mm_image_decode_into(const void *bytes, size_t len, const char *name, int out_w, int out_h, int fit,
                         uint8_t *dst, mm_err *e) {
  if (out_w < 1 || out_h < 1 || out_w > MM_IMAGE_MAX_SIDE || out_h > MM_IMAGE_MAX_SIDE)
    return mm_errorf(e, MM_EINVAL, "%s: output size %dx%d out of range (1..%d)", nm(name), out_w, out_h,
                     MM_IMAGE_MAX_SIDE);
  uint8_t *px;
  int w, h;
  int rc = decode_native(bytes, len, name, dst, out_w, out_h, &px, &w, &h, e);
  if (rc) return rc;
  if (!px) return MM_OK; /* written into dst at its size: what fit_into would give */
  rc = fit_into(px, w, h, dst, out_w, out_h, fit, name, e);
  free(px);
  return rc;
}

int mm_image_decode(const void *bytes, size_t len, const char *name, int out_w, int out_h, int fit, mm_image *img,
                    mm_err *e) {
  img->px = NULL;
  img->w = img->h = 0;
  if ((out_w > 0) != (out_h > 0))
    return mm_errorf(e, MM_EINVAL, "%s: give both output width and height or neither (%dx%d)", nm(name), out_w,
                     out_h);
  if (out_w > MM_IMAGE_MAX_SIDE || out_h > MM_IMAGE_MAX_SIDE)
    return mm_errorf(e, MM_EINVAL, "%s: output size %dx%d out of range (1..%d)", nm(name), out_w, out_h,
                     MM_IMAGE_MAX_SIDE);
  uint8_t *px;
  int w, h;
  int rc = decode_native(bytes, len, name, NULL, 0, 0, &px, &w, &h, e);
  if (rc) return rc;
  if (out_w <= 0 || (out_w == w && out_h == h)) {
    img->px = px;
    img->w = w;
    img->h = h;
    return MM_OK;
  }
  uint8_t *dst = malloc((size_t)out_w * (size_t)out_h * 3);
  if (!dst) {
    free(px);
    return mm_errorf(e, MM_ENOMEM, "%s: out of memory", nm(name));
  }
  rc = fit_into(px, w, h, dst, out_w, out_h, fit, name, e);
  free(px);
  if (rc) {
    free(dst);
    return rc;
  }
  img->px = dst;
  img->w = out_w;
  img->h = out_h;
  return MM_OK;
}

int mm_image_load_into(const char *path, int64_t max_bytes, int out_w, int out_h, int fit, uint8_t *dst, int *status,
                       mm_err *e) {
  uint8_t stack[16384], *data, *heap;
  size_t len;
  if (status) *status = MM_FILE_OK;
  int rc = read_image_file(path, max_bytes, stack, sizeof stack, &data, &heap, &len, status, e);
  if (rc) return rc;
  int w = 0, h = 0; /* mm_image_info sets them also when it refuses too many pixels */
  rc = mm_image_info(data, len, path, &w, &h, NULL, e);
  if (!rc) rc = mm_image_decode_into(data, len, path, out_w, out_h, fit, dst, e);
  if (rc && status) *status = (int64_t)w * h > MM_IMAGE_MAX_PIXELS ? MM_IMAGE_TOO_MANY_PIXELS : MM_IMAGE_UNDECODABLE;
  free(heap);
  return rc;
}
