/* png.h - a fast path for the common PNG: 8-bit grey / grey+alpha / RGB / RGBA,
 * not interlaced, no tRNS / PLTE, decoded straight to RGB8 (alpha over white,
 * the colour rule of image.h).
 *
 * It accepts only files that stb_image 2.27 also decodes, and then gives the
 * same pixels; on anything else (another format, depth, colour type,
 * interlacing, an unknown or misplaced chunk, a zlib stream that is corrupt
 * or truncated (its 4-byte Adler-32 trailer must be there; like stb, we do not
 * check its value), a size other than the image's)
 * it declines (MM_PNG_DECLINE) without touching errors, and the caller runs
 * the general stb path, which reports the problem. The zlib stream
 * is inflated by our own table-driven decoder (no stdio, no global state).
 */
#ifndef MM_PNG_H
#define MM_PNG_H

#include <stddef.h>
#include <stdint.h>

enum { MM_PNG_OK = 0, MM_PNG_DECLINE = 1, MM_PNG_NOMEM = 2 };

/* Decode `bytes` to RGB8 HWC. If dst != NULL and the image is exactly
 * dst_w x dst_h, the pixels are written into dst (dst_w*dst_h*3 bytes) and
 * *out is left NULL; otherwise *out receives a malloc'd w*h*3 buffer.
 * *w, *h receive the image size. Returns MM_PNG_OK, MM_PNG_DECLINE or
 * MM_PNG_NOMEM (the caller should then fall back too, or report it). */
int mm_png_decode_rgb8(const uint8_t *bytes, size_t len, uint8_t *dst, int dst_w, int dst_h, uint8_t **out, int *w,
                       int *h);

/* 1 if `bytes` is a PNG whose zlib stream makes stb_image 2.27 copy
 * uninitialised memory into the image (a length/distance pair with the
 * invalid distance symbol 30 or 31, which stb reads as distance 0). The
 * general path refuses such files. */
int mm_png_stb_reads_uninit(const uint8_t *bytes, size_t len);

/* 1 if `bytes` is a PNG in which stb_image would meet an IDAT chunk whose
 * declared length runs past the end of the data: stb first grows its buffer
 * to that length (up to 4 GB) and then fails ("outofdata"). The general path
 * refuses such files before stb allocates anything. */
int mm_png_idat_past_end(const uint8_t *bytes, size_t len);

/* The general path alone (stb_image, with the guards of decode.c), for the
 * differential fuzzer: decode to a malloc'd RGB8 buffer at native size.
 * Defined in decode.c. Returns MM_OK or an error code (e filled). */
struct mm_err;
int mm_image_decode_general(const void *bytes, size_t len, const char *name, uint8_t **px, int *w, int *h,
                            struct mm_err *e);

#endif
