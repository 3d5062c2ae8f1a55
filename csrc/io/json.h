/* json.h - a small strict JSON reader (RFC 8259) for files mmfuse reads in C
 * (TensorFlow.js model.json).
 *
 * The whole text is parsed into a tree of mm_json values held in one block
 * of memory owned by the document. Strict: no comments, no trailing commas,
 * no NaN/Infinity, no leading zeros, strings must be valid UTF-8 without
 * raw control characters, escapes are checked (\u surrogates must pair),
 * duplicate keys in an object are an error, nothing but white space may
 * follow the top value. Limits keep a forged file from costing more than
 * its size: nesting at most MM_JSON_MAX_DEPTH, text at most
 * MM_JSON_MAX_BYTES; the tree takes at most a few times the text's bytes.
 * Numbers are doubles (finite; an integer accessor checks exactness).
 * A string may not contain U+0000 (values are C strings).
 * Errors name the document, the line and the column.
 */
#ifndef MM_JSON_H
#define MM_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

#define MM_JSON_MAX_DEPTH 64
#define MM_JSON_MAX_BYTES ((size_t)256 << 20)

typedef enum { MM_JSON_NULL = 0, MM_JSON_BOOL, MM_JSON_NUMBER, MM_JSON_STRING, MM_JSON_ARRAY, MM_JSON_OBJECT } mm_json_type;

typedef struct mm_json {
  int type;                 /* mm_json_type */
  int boolean;              /* MM_JSON_BOOL: 0 or 1 */
  int64_t n;                /* ARRAY / OBJECT: number of items; STRING: bytes */
  double num;               /* NUMBER */
  const char *str;          /* STRING: NUL-terminated UTF-8 */
  const char *key;          /* an item of an OBJECT: its key (else NULL) */
  const struct mm_json *kids; /* ARRAY / OBJECT: the n items, in file order */
} mm_json;

typedef struct mm_json_doc {
  const mm_json *root;
  void *mem; /* owned: the nodes and the strings */
} mm_json_doc;

/* Parse text[0..len). name is used in error messages ("model.json:1:734:
 * ..."). On error doc is empty (nothing to free). */
int mm_json_parse(const char *text, size_t len, const char *name, mm_json_doc *doc, mm_err *e);
void mm_json_free(mm_json_doc *doc);

/* member `key` of an object, NULL when v is not an object or has no such key */
const mm_json *mm_json_get(const mm_json *v, const char *key);
/* the type's name: "null", "a boolean", "a number", "a string", "an array", "an object" */
const char *mm_json_type_name(int type);
/* 1 when v is a number that is an integer in [lo, hi] (stored in *out) */
int mm_json_int(const mm_json *v, int64_t lo, int64_t hi, int64_t *out);

#endif
