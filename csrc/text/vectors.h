/* vectors.h - pretrained word vectors, streamed from a file into rows of a
 * [rows, d] tensor for the words of a vocabulary.
 *
 * Formats:
 *   MM_VEC_GLOVE     "word v1 .. vd" per line, no header; d from line 1.
 *   MM_VEC_W2V_TEXT  word2vec text: header "count d", then "word v1 .. vd".
 *   MM_VEC_VEC       fastText .vec: same as word2vec text (lines may end with
 *                    a space); an alias kept for clarity.
 *   MM_VEC_W2V_BIN   word2vec binary: header "count d\n", then per word
 *                    "word " + d little-endian float32 (+ optional '\n').
 *   MM_VEC_AUTO      binary if the path ends in ".bin" or the bytes after the
 *                    header contain control bytes (< 0x09, or 0x0E..0x1F);
 *                    else word2vec text if line 1 is exactly two integers;
 *                    else GloVe.
 * The file is read line by line (getline) or record by record; it is never
 * held in memory as a whole. A word containing spaces (some GloVe files) is
 * the text before the last d fields.
 *
 * Matching: a file word fills the row of the vocabulary word equal to it; if
 * no exact entry exists, the file word is case-folded (mm_utf8_fold) and fills
 * the folded entry unless an exact match fills it (first exact match wins;
 * among folded matches the first wins). <unk> is never filled. Rows of words
 * not found are left untouched.
 *
 * Errors (MM_EIO / MM_EFORMAT, message "path:line: ..." or "path: record k
 * (byte offset o): ..."): missing file, empty file, bad header, a line with a
 * number of values != d, a value that is not a finite number, fewer or more
 * records than the header declares, a truncated binary record, bytes other
 * than blanks after the last binary record (a text file read as binary), a
 * word longer than 64 KiB, a line longer than 16 MiB, d outside 1 .. 100000.
 */
#ifndef MM_VECTORS_H
#define MM_VECTORS_H

#include <stdint.h>

#include "../core/error.h"
#include "../core/tensor.h"
#include "vocab.h"

typedef enum { MM_VEC_AUTO = 0, MM_VEC_GLOVE, MM_VEC_W2V_TEXT, MM_VEC_W2V_BIN, MM_VEC_VEC } mm_vec_format;

/* the formats' names, by value: "auto", "glove", "word2vec", "word2vec-bin",
 * "vec"; NULL-terminated */
extern const char *const mm_vec_format_names[];
/* the format of a name; -1 if unknown */
int mm_vec_format_parse(const char *name);
const char *mm_vec_format_name(mm_vec_format f);

typedef struct mm_vec_stats {
  mm_vec_format format; /* the format actually read (auto resolved) */
  int64_t dim;          /* d of the file */
  int64_t file_words;   /* records read */
  int64_t found;        /* vocabulary words (excluding <unk>) whose row was filled */
  int64_t total;        /* vocabulary words excluding <unk> */
} mm_vec_stats;

/* Read d of a file without reading the vectors (header, or line 1 for GloVe). */
int mm_vectors_probe(const char *path, mm_vec_format fmt, mm_vec_stats *st, mm_err *e);

/* Stream the file and fill out's rows. out must be a 2-D tensor with
 * shape[0] >= mm_vocab_size(v) and shape[1] == the file's d (EINVAL naming
 * both shapes otherwise). If found_mask is not NULL it receives 1 for each
 * filled row (mm_vocab_size(v) entries). */
int mm_vectors_load(const char *path, mm_vec_format fmt, const mm_vocab *v, mm_tensor *out, uint8_t *found_mask,
                    mm_vec_stats *st, mm_err *e);

#endif
