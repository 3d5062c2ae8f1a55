/* image.h - decode, resize, normalise, augment and describe images.
 *
 * Pixels at rest are uint8 RGB, HWC, row-major (an mm_image, or a slot of a
 * larger block: a dataset keeps N images of one fixed size as N*H*W*3 bytes).
 * Pixels fed to a network are float32 CHW; mm_image_prep writes one sample
 * (crop / flip / normalise) straight into a slot of an NCHW batch buffer.
 *
 * Decoding is stb_image (PNG, JPEG, BMP, GIF (first frame), TGA; stb also
 * reads PSD, PNM, PIC and HDR, which we accept as they come). Colour rule:
 *   grey           -> R = G = B = grey
 *   grey + alpha,
 *   RGBA           -> composited over WHITE: c' = (c*a + 255*(255-a) + 127) / 255
 * so transparent pixels (emoji backgrounds) become white, not black.
 * Every image side must be in 1..MM_IMAGE_MAX_SIDE and the picture at most
 * MM_IMAGE_MAX_PIXELS; the header is checked with stbi_info_from_memory
 * before any pixel buffer is allocated. Files are read through io/file.h:
 * only regular files, at most max_bytes (MM_IMAGE_MAX_BYTES by default).
 *
 * Errors: every function that can fail fills an mm_err whose message starts
 * with the `name` it was given (a path, or e.g. "<bytes>") and returns
 * MM_EIO (cannot read), MM_EFORMAT (corrupt / unsupported / too big),
 * MM_EINVAL (bad argument) or MM_ENOMEM.
 */
#ifndef MM_IMAGE_H
#define MM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/rng.h"
#include "../io/file.h"

#define MM_IMAGE_MAX_SIDE 8192
/* At most this many pixels (w * h) are decoded: a small file declaring a
 * huge picture is refused from its header, before any pixel buffer exists
 * (2^25, 32 Mi pixels: 96 MiB as RGB; e.g. 6,000 x 5,000). */
#define MM_IMAGE_MAX_PIXELS ((int64_t)1 << 25)
/* The default cap on an image FILE's size (32 MiB): a larger file is refused
 * before a byte of it is read (io/file.h). Callers pass their own cap
 * (max_bytes > 0) or 0 for this one. */
#define MM_IMAGE_MAX_BYTES ((int64_t)32 << 20)

/* Why an image could not be had: io/file.h's MM_FILE_* (missing, not a
 * regular file, too large, unreadable) or one of these. */
enum { MM_IMAGE_UNDECODABLE = MM_FILE_STATUS_COUNT, /* not an image, corrupt, truncated, empty */
       MM_IMAGE_TOO_MANY_PIXELS,                    /* more than MM_IMAGE_MAX_PIXELS */
       MM_IMAGE_STATUS_COUNT };
/* "missing", "not a regular file", "too large", "unreadable", "undecodable",
 * "too many pixels" ("ok" for MM_FILE_OK, "?" out of range) */
const char *mm_image_status_name(int status);

/* An owned RGB8 image: px holds h*w*3 bytes, HWC. Zero-initialise before use. */
typedef struct mm_image {
  int w, h;
  uint8_t *px;
} mm_image;

void mm_image_free(mm_image *img); /* frees px, zeroes the struct; NULL-safe */

/* How to bring an image to out_w x out_h:
 *  MM_FIT_STRETCH: resize the whole image (aspect ratio not kept);
 *  MM_FIT_CROP:    scale so the image covers out_w x out_h (shorter side
 *                  fits), then take the centre (torchvision Resize+CenterCrop). */
enum { MM_FIT_STRETCH = 0, MM_FIT_CROP = 1 };
/* their names, by value ("stretch", "crop"), NULL-terminated */
extern const char *const mm_fit_names[];

/* Read width/height/channel count from the header only (no pixel decode).
 * Fails (MM_EFORMAT) on unknown formats, sides outside 1..MAX_SIDE and
 * more than MM_IMAGE_MAX_PIXELS pixels (w and h are then set to the declared
 * size, so a caller can tell this refusal from a corrupt header). */
int mm_image_info(const void *bytes, size_t len, const char *name, int *w, int *h, int *comp, mm_err *e);

/* Decode bytes to RGB8. out_w/out_h <= 0: keep the decoded size; otherwise
 * the result is out_w x out_h, resized as `fit` says. `name` is used in
 * messages only (NULL -> "<bytes>"). img must be zeroed (px == NULL). */
int mm_image_decode(const void *bytes, size_t len, const char *name, int out_w, int out_h, int fit, mm_image *img,
                    mm_err *e);

/* Decode into a caller-owned buffer of out_h*out_w*3 bytes (a dataset slot).
 * out_w, out_h must be >= 1. */
int mm_image_decode_into(const void *bytes, size_t len, const char *name, int out_w, int out_h, int fit,
                         uint8_t *dst, mm_err *e);

/* Read an image file whole into a malloc'd buffer (caller frees): a regular
 * file of at most max_bytes (<= 0: MM_IMAGE_MAX_BYTES), refused unread
 * otherwise (io/file.h); a zero-byte file is an error (MM_EFORMAT "empty
 * file"). */
int mm_image_read_file(const char *path, int64_t max_bytes, uint8_t **buf, size_t *len, mm_err *e);

/* mm_image_read_file + mm_image_decode_into, naming `path`. status (may be
 * NULL) receives MM_FILE_OK or why it failed (MM_FILE_* / MM_IMAGE_*). */
int mm_image_load_into(const char *path, int64_t max_bytes, int out_w, int out_h, int fit, uint8_t *dst, int *status,
                       mm_err *e);

/* n images into pix (n slots of out_h*out_w*3 bytes, as a dataset keeps
 * them), decoded over mm_parallel_for's threads (decode_many.c). src[i] is a
 * path (a file of at most max_bytes; <= 0: MM_IMAGE_MAX_BYTES), or with
 * bytes != 0 the encoded image of len[i] bytes; NULL: no image (its slot is
 * left as it is). Each thread decodes a contiguous range of rows in order and
 * stops at its first failure, so the failure reported is the first failing
 * row, as one thread would find it: *row receives its index and e its message
 * (naming the file, or "<bytes>"). */
int mm_image_decode_many(const char *const *src, const size_t *len, int64_t n, int bytes, int out_w, int out_h,
                         int fit, int64_t max_bytes, uint8_t *pix, int64_t *row, mm_err *e);

/* One image that could not be had: its row, why (MM_FILE_* / MM_IMAGE_*) and
 * the message naming the file. */
typedef struct mm_image_failure {
  int64_t row;
  int status;
  mm_err e;
} mm_image_failure;

/* mm_image_decode_many that goes on past failures: every row is tried; the
 * slot of a row that fails is left as it is, and the failures are returned
 * in row order in *fails (malloc'd, *nfails of them; NULL when none; the
 * caller frees). Only running out of memory fails the call. */
int mm_image_decode_each(const char *const *src, const size_t *len, int64_t n, int bytes, int out_w, int out_h,
                         int fit, int64_t max_bytes, uint8_t *pix, mm_image_failure **fails, int64_t *nfails,
                         mm_err *e);

/* Resize RGB8 src (sw x sh) into dst (dw x dh), both HWC (stb_image_resize,
 * linear colour space, its default filters). */
int mm_image_resize_rgb8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, mm_err *e);

/* RGB8 HWC (h x w) -> float CHW in [0, 1] (x / 255). dst has 3*h*w floats. */
void mm_image_to_chw(const uint8_t *src, int w, int h, float *dst);

/* In place, for n images CHW one after the other:
 * x[c, :] = (x[c, :] - mean[c]) / std[c] for c < channels.
 * Fails (MM_EINVAL) if a std is not > 0 or a value is not finite. */
int mm_image_normalize(float *x, int64_t n, int channels, int64_t hw, const float *mean, const float *std, mm_err *e);

/* ImageNet statistics (torchvision's): mean {0.485,0.456,0.406}, std {0.229,0.224,0.225} */
extern const float mm_imagenet_mean[3];
extern const float mm_imagenet_std[3];

/* ---- one sample into a batch slot ------------------------------------------------
 * From an input of in_h x in_w, take an out_h x out_w window of the image
 * padded by `pad` pixels on each side:
 *   random_crop != 0: window offset drawn uniformly from rng in
 *                     [0, in + 2*pad - out] per axis (training);
 *   random_crop == 0: window centred (evaluation);
 *   flip != 0:        mirror horizontally with probability 1/2 (rng).
 * Padding pixels are 0 in the output (after normalisation: the mean colour;
 * without normalisation: black).
 * Requires out <= in + 2*pad per axis. rng may be NULL only when
 * random_crop == 0 and flip == 0. mean/std NULL: no normalisation (values
 * stay in [0, 1]). The draws per sample are: y offset, x offset (only if
 * random_crop), then the flip coin (only if flip) — same seed, same batch. */
typedef struct mm_image_prep {
  int out_h, out_w;
  int pad;
  int random_crop;
  int flip;
  const float *mean; /* 3 floats or NULL */
  const float *std;  /* 3 floats or NULL */
} mm_image_prep;

/* Check a prep against an input size (out sizes >= 1, pad >= 0, the window
 * fits, std > 0). Call once per batch; the writers below trust it. */
int mm_image_prep_check(const mm_image_prep *p, int in_h, int in_w, mm_err *e);

/* The value mm_image_prep_rgb8 gives a byte b of channel c: b * scale[c] + shift[c]
 * (a float multiply, then an add). */
void mm_image_prep_rgb8_affine(const mm_image_prep *p, float scale[3], float shift[3]);

/* src: RGB8 HWC (in_h x in_w); dst: 3 x out_h x out_w floats (a batch slot). */
void mm_image_prep_rgb8(const mm_image_prep *p, const uint8_t *src, int in_h, int in_w, mm_rng *rng, float *dst);

/* src: n images float CHW (channels x in_h x in_w) already in [0,1] or
 * normalised (mean/std applied again if given); dst: n x channels x out_h x
 * out_w. The images draw from rng in order. */
void mm_image_prep_chw(const mm_image_prep *p, const float *src, int64_t n, int channels, int in_h, int in_w,
                       mm_rng *rng, float *dst);

/* ---- hand-crafted features: HSV colour histogram ---------------------------------
 * Joint histogram over (hue, saturation, value) with hb x sb x vb bins,
 * bin index (ih * sb + is) * vb + iv, each pixel adds 1, then L1-normalised
 * (sums to 1). Hue in [0, 360) split evenly (hue of a grey pixel = 0);
 * S and V in [0, 1] split evenly, 1.0 in the last bin. Bins each in 1..64.
 * out has hb*sb*vb floats. */
int mm_image_hsv_histogram_rgb8(const uint8_t *rgb, int64_t npix, int hb, int sb, int vb, float *out, mm_err *e);
/* the bins when none are given: 8 hues x 4 saturations x 4 values */
#define MM_HSV_BINS_H 8
#define MM_HSV_BINS_S 4
#define MM_HSV_BINS_V 4
/* same from n images float CHW (3 x hw) in [0, 1] into out [n, hb*sb*vb];
 * values are clamped to [0, 1]; NaN is an error (naming the image when n > 1) */
int mm_image_hsv_histogram_chw(const float *chw, int64_t n, int64_t hw, int hb, int sb, int vb, float *out, mm_err *e);

#endif
