/* encoding.c - text bytes of unknown encoding to UTF-8 (see encoding.h). */
#include "encoding.h"

#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const mm_encoding_names[] = {"utf-8", "gb18030", "latin-1"};
_Static_assert(sizeof mm_encoding_names / sizeof *mm_encoding_names == MM_ENC_COUNT, "a name per encoding");

int mm_utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t k;
    uint8_t lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) k = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
      k = 3;
      if (c == 0xE0) lo = 0xA0;      /* no overlong forms */
      else if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
      k = 4;
      if (c == 0xF0) lo = 0x90;      /* no overlong forms */
      else if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else
      return 0; /* a continuation byte, C0, C1 or F5..FF as a lead */
    if (n - i < k) return 0;
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (size_t j = 2; j < k; j++)
      if ((s[i + j] & 0xC0) != 0x80) return 0;
    i += k;
  }
  return 1;
}

static int oom(mm_err *e, const char *name) { return mm_errorf(e, MM_ENOMEM, "%s: out of memory decoding the text", name); }

static int copy_utf8(const uint8_t *in, size_t len, char **out, size_t *outlen, int *bom, const char *name, mm_err *e) {
  if (len >= 3 && in[0] == 0xEF && in[1] == 0xBB && in[2] == 0xBF) {
    in += 3, len -= 3;
    *bom = 1;
  }
  char *o = malloc(len + 1);
  if (!o) return oom(e, name);
  memcpy(o, in, len);
  o[len] = 0;
  *out = o;
  *outlen = len;
  return MM_OK;
}

static int latin1(const uint8_t *in, size_t len, char **out, size_t *outlen, const char *name, mm_err *e) {
  char *o = malloc(2 * len + 1);
  if (!o) return oom(e, name);
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (in[i] < 0x80) o[n++] = (char)in[i];
    else {
      o[n++] = (char)(0xC0 | (in[i] >> 6));
      o[n++] = (char)(0x80 | (in[i] & 0x3F));
    }
  }
  o[n] = 0;
  *out = o;
  *outlen = n;
  return MM_OK;
}

/* GB18030 -> UTF-8 with iconv. Returns MM_OK, 1 when the bytes are not
 * GB18030, or an error code. A GB18030 character takes 1, 2 or 4 bytes and
 * becomes at most 4 UTF-8 bytes: 4 * len + 1 always holds the result. */
static int gb18030(const uint8_t *in, size_t len, char **out, size_t *outlen, const char *name, mm_err *e) {
  iconv_t cd = iconv_open("UTF-8", "GB18030");
  if (cd == (iconv_t)-1)
    return mm_errorf(e, MM_EIO, "%s: iconv cannot convert from GB18030: %s", name, strerror(errno));
  size_t cap = 4 * len + 1;
  char *o = malloc(cap);
  if (!o) {
    iconv_close(cd);
    return oom(e, name);
  }
  char *src = (char *)(uintptr_t)in, *dst = o;
  size_t left = len, room = cap - 1;
  size_t r = iconv(cd, &src, &left, &dst, &room);
  int bad = r == (size_t)-1 || left != 0;
  if (!bad) { /* flush any shift state (none for GB18030, but it is the protocol) */
    r = iconv(cd, NULL, NULL, &dst, &room);
    bad = r == (size_t)-1;
  }
  iconv_close(cd);
  if (bad) {
    free(o);
    return 1;
  }
  size_t n = (size_t)(dst - o);
  /* glibc's output is well-formed UTF-8; checked anyway, since nothing
   * invalid may reach the tokenizer whatever the C library does */
  if (!mm_utf8_valid((const uint8_t *)o, n)) {
    free(o);
    return 1;
  }
  o[n] = 0;
  *out = o;
  *outlen = n;
  return MM_OK;
}

int mm_text_decode(const uint8_t *in, size_t len, const int *encs, int nenc, const char *name, char **out,
                   size_t *outlen, int *used, int *bom, mm_err *e) {
  *out = NULL;
  *outlen = 0;
  *used = -1;
  *bom = 0;
  if (!name) name = "<text>";
  if (!in && len) return mm_errorf(e, MM_EINVAL, "%s: no bytes", name);
  if (nenc < 1) return mm_errorf(e, MM_EINVAL, "%s: no encoding to decode with", name);
  for (int k = 0; k < nenc; k++)
    if (encs[k] < 0 || encs[k] >= MM_ENC_COUNT) return mm_errorf(e, MM_EINVAL, "%s: unknown encoding %d", name, encs[k]);
  static const uint8_t none[1] = {0};
  if (!in) in = none;
  for (int k = 0; k < nenc; k++) {
    int rc;
    switch (encs[k]) {
    case MM_ENC_UTF8:
      if (!mm_utf8_valid(in, len)) continue;
      rc = copy_utf8(in, len, out, outlen, bom, name, e);
      break;
    case MM_ENC_GB18030:
      rc = gb18030(in, len, out, outlen, name, e);
      if (rc == 1) continue;
      break;
    default: rc = latin1(in, len, out, outlen, name, e); break;
    }
    if (!rc) *used = encs[k];
    return rc;
  }
  char tried[64] = "";
  size_t at = 0;
  for (int k = 0; k < nenc && at < sizeof tried; k++)
    at += (size_t)snprintf(tried + at, sizeof tried - at, "%s%s", k ? ", " : "", mm_encoding_names[encs[k]]);
  return mm_errorf(e, MM_EFORMAT, "%s: not valid %s", name, tried);
}
