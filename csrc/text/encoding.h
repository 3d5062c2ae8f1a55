/* encoding.h - the bytes of a text file of unknown encoding to UTF-8.
 *
 * Real folders of posts mix encodings (tweets saved as UTF-8 next to tweets
 * saved as GBK / GB18030, a few in a single-byte code page). A text is
 * decoded by the first encoding of a list that accepts all of its bytes:
 *   "utf-8"    well-formed UTF-8 (no overlong forms, no surrogates, nothing
 *              above U+10FFFF, no truncated sequence), kept as it is; a
 *              leading byte order mark (EF BB BF) is dropped;
 *   "gb18030"  GB18030 (a superset of GBK and GB2312), converted by the C
 *              library's iconv (glibc: "GB18030"); any byte sequence iconv
 *              rejects, or a sequence cut short at the end, is a refusal;
 *   "latin-1"  ISO 8859-1: every byte is the code point of its value, so it
 *              never refuses (a last resort that keeps the text readable).
 * The result is always well-formed UTF-8, so invalid UTF-8 never reaches the
 * tokenizer. The default order is utf-8, gb18030, latin-1: a valid UTF-8
 * text of non-ASCII bytes is rarely also valid GB18030 by accident the other
 * way round, while almost any GB18030 text fails the UTF-8 check.
 */
#ifndef MM_TEXT_ENCODING_H
#define MM_TEXT_ENCODING_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

typedef enum { MM_ENC_UTF8 = 0, MM_ENC_GB18030, MM_ENC_LATIN1, MM_ENC_COUNT } mm_encoding;
/* "utf-8", "gb18030", "latin-1" (by mm_encoding) */
extern const char *const mm_encoding_names[];

/* 1 when s[0 .. n) is well-formed UTF-8 (the rules above), else 0. */
int mm_utf8_valid(const uint8_t *s, size_t n);

/* Decode in[0 .. len) with the first of encs[0 .. nenc) that accepts it.
 * On success *out is a malloc'd, NUL-terminated UTF-8 string of *outlen
 * bytes (the caller frees it), *used the encoding that decoded it and *bom 1
 * when a UTF-8 byte order mark was dropped. When none of the encodings
 * accepts the bytes, *used is -1 and the call fails with MM_EFORMAT
 * ("<name>: not valid utf-8, gb18030"). MM_EINVAL on an unknown encoding,
 * MM_EIO when iconv cannot convert from GB18030 at all. */
int mm_text_decode(const uint8_t *in, size_t len, const int *encs, int nenc, const char *name, char **out,
                   size_t *outlen, int *used, int *bom, mm_err *e);

#endif
