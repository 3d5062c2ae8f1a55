/* safetensors.h - the safetensors container: 8-byte little-endian header
 * length N, N bytes of JSON header (padded with spaces to a multiple of 8),
 * then the raw tensor bytes. The JSON itself is written and parsed by the
 * caller (the model's Lua face uses lua-cjson); this file does the bytes:
 * bounds, atomic writes.
 */
#ifndef MM_SAFETENSORS_H
#define MM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

#define MM_ST_MAX_HEADER (100u * 1024u * 1024u)

/* Write header (padded) + the n data chunks atomically (temp file in the
 * same folder, fsync, rename). */
int mm_st_write(const char *path, const char *header, size_t hlen, const void *const *chunks, const size_t *lens,
                int n, mm_err *e);

/* A file read into memory: header points into buf, data follows it. */
typedef struct mm_st_file {
  uint8_t *buf;
  size_t size;
  const char *header;
  size_t hlen;
  const uint8_t *data;
  size_t dlen;
} mm_st_file;

/* Check the framing of an in-memory file (fuzzing, embedded models): on
 * success f->header/f->data point into buf (f->buf stays NULL: nothing to free). */
int mm_st_parse(const uint8_t *buf, size_t len, const char *name, mm_st_file *f, mm_err *e);

/* Read and check the framing (length fits in the file, header starts with
 * '{'). Errors name the file. */
int mm_st_read(const char *path, mm_st_file *f, mm_err *e);
void mm_st_free(mm_st_file *f);

#endif
