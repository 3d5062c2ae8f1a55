/* tokenize.c - UTF-8 tokenizer (rules in tokenize.h). */
#include "tokenize.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"

mm_tokenize_opts mm_tokenize_defaults(void) {
  mm_tokenize_opts o = {1, 0};
  return o;
}

void mm_tokens_init(mm_tokens *t) { memset(t, 0, sizeof *t); }

void mm_tokens_clear(mm_tokens *t) {
  t->n = 0;
  t->buflen = 0;
}

void mm_tokens_free(mm_tokens *t) {
  free(t->buf);
  free(t->off);
  free(t->len);
  mm_tokens_init(t);
}

static int reserve_bytes(mm_tokens *t, size_t extra, mm_err *e) {
  if (t->buflen + extra <= t->bufcap) return MM_OK;
  size_t cap = t->bufcap ? t->bufcap : 256;
  while (cap < t->buflen + extra) {
    if (cap > ((size_t)-1) / 2) return mm_errorf(e, MM_ENOMEM, "tokenize: text too large");
    cap *= 2;
  }
  char *b = realloc(t->buf, cap);
  if (!b) return mm_errorf(e, MM_ENOMEM, "tokenize: out of memory (%zu bytes)", cap);
  t->buf = b;
  t->bufcap = cap;
  return MM_OK;
}

static int reserve_tokens(mm_tokens *t, mm_err *e) {
  if (t->n < t->cap) return MM_OK;
  int64_t cap = t->cap ? t->cap * 2 : 32;
  size_t *o = realloc(t->off, (size_t)cap * sizeof *o);
  if (!o) return mm_errorf(e, MM_ENOMEM, "tokenize: out of memory (%lld tokens)", (long long)cap);
  t->off = o;
  size_t *l = realloc(t->len, (size_t)cap * sizeof *l);
  if (!l) return mm_errorf(e, MM_ENOMEM, "tokenize: out of memory (%lld tokens)", (long long)cap);
  t->len = l;
  t->cap = cap;
  return MM_OK;
}

int mm_tokens_push(mm_tokens *t, const char *s, size_t n, mm_err *e) {
  if (reserve_tokens(t, e) || reserve_bytes(t, n + 1, e)) return e ? e->code : MM_ENOMEM;
  if (n) memcpy(t->buf + t->buflen, s, n);
  t->off[t->n] = t->buflen;
  t->len[t->n] = n;
  t->buf[t->buflen + n] = 0;
  t->buflen += n + 1;
  t->n++;
  return MM_OK;
}

/* -- the scanner ------------------------------------------------------------ */

typedef struct scan {
  const unsigned char *s;
  size_t n;
  mm_tokens *out;
  size_t start; /* byte offset in out->buf of the open token */
  int open;     /* a token is being written */
  uint32_t last; /* last code point appended to the open word */
  mm_err *e;
} scan;

static uint32_t peek(const scan *z, size_t pos, size_t *k) {
  uint32_t cp = 0;
  size_t kk = mm_utf8_decode(z->s + pos, z->n - pos, &cp);
  if (k) *k = kk;
  return cp;
}

static int put_cp(scan *z, uint32_t cp) {
  mm_tokens *t = z->out;
  if (!z->open) {
    if (reserve_tokens(t, z->e)) return MM_ENOMEM;
    z->start = t->buflen;
    z->open = 1;
  }
  if (reserve_bytes(t, 5, z->e)) return MM_ENOMEM; /* 4 + room for the NUL */
  t->buflen += mm_utf8_encode(cp, (unsigned char *)t->buf + t->buflen);
  z->last = cp;
  return MM_OK;
}

static int close_tok(scan *z) {
  if (!z->open) return MM_OK;
  mm_tokens *t = z->out;
  z->open = 0;
  size_t n = t->buflen - z->start;
  if (n == 0) return MM_OK;
  if (reserve_bytes(t, 1, z->e) || reserve_tokens(t, z->e)) return MM_ENOMEM;
  t->buf[t->buflen++] = 0;
  t->off[t->n] = z->start;
  t->len[t->n] = n;
  t->n++;
  return MM_OK;
}

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }

/* one emoji element at pos: end offset, or 0 when there is none. Appends its
 * code points (without variation selectors) when emit is set. */
static size_t emoji_element(scan *z, size_t pos, int emit, int *err) {
  if (pos >= z->n) return 0;
  size_t k;
  uint32_t cp = peek(z, pos, &k);
  int cls = mm_utf8_class(cp);
  if (cls != MM_CC_EMOJI && cls != MM_CC_REGIONAL) return 0;
  if (emit && put_cp(z, cp)) *err = 1;
  pos += k;
  if (cls == MM_CC_REGIONAL && pos < z->n) {
    uint32_t c2 = peek(z, pos, &k);
    if (mm_utf8_class(c2) == MM_CC_REGIONAL) {
      if (emit && put_cp(z, c2)) *err = 1;
      pos += k;
    }
  }
  while (pos < z->n) {
    uint32_t m = peek(z, pos, &k);
    if (mm_utf8_class(m) != MM_CC_EMOJI_MOD) break;
    if (emit && m != 0xFE0E && m != 0xFE0F && put_cp(z, m)) *err = 1;
    pos += k;
  }
  return pos;
}

/* keycap at pos ([0-9#*] (FE0F)? 20E3): end offset or 0 */
static size_t keycap(const scan *z, size_t pos) {
  uint32_t c = z->s[pos];
  if (!(is_digit(c) || c == '#' || c == '*')) return 0;
  size_t p = pos + 1, k;
  if (p < z->n && peek(z, p, &k) == 0xFE0F) p += k;
  if (p < z->n && peek(z, p, &k) == 0x20E3) return p + k;
  return 0;
}

int mm_tokenize_buffer(const char *str, size_t n, const mm_tokenize_opts *opts, mm_tokens *out, mm_err *e) {
  mm_tokenize_opts o = opts ? *opts : mm_tokenize_defaults();
  if (n == 0) return MM_OK;
  scan z = {(const unsigned char *)str, n, out, 0, 0, 0, e};
  size_t pos = 0;
  int err = 0;
  while (pos < n && !err) {
    size_t k;
    uint32_t cp = peek(&z, pos, &k);
    size_t kc = keycap(&z, pos);
    if (kc) {
      err = close_tok(&z) || put_cp(&z, cp) || put_cp(&z, 0x20E3) || close_tok(&z);
      pos = kc;
      continue;
    }
    int cls = mm_utf8_class(cp);
    size_t next = pos + k;
    switch (cls) {
    case MM_CC_WORD:
      err = put_cp(&z, o.lowercase ? mm_utf8_fold(cp) : cp);
      break;
    case MM_CC_IDEO:
      err = close_tok(&z) || put_cp(&z, cp) || close_tok(&z);
      break;
    case MM_CC_PUNCT: {
      if (z.open && next < n) {
        uint32_t nc = peek(&z, next, NULL);
        if ((cp == '\'' || cp == 0x2019) && mm_utf8_class(nc) == MM_CC_WORD) {
          err = put_cp(&z, '\'');
          break;
        }
        if ((cp == '.' || cp == ',') && is_digit(z.last) && is_digit(nc)) {
          err = put_cp(&z, cp);
          break;
        }
      }
      err = close_tok(&z);
      if (!err && o.keep_punct) err = put_cp(&z, cp) || close_tok(&z);
      break;
    }
    case MM_CC_SPACE:
      err = close_tok(&z);
      break;
    case MM_CC_ZWJ:
      if (z.open && next < n && mm_utf8_class(peek(&z, next, NULL)) == MM_CC_WORD) err = put_cp(&z, cp);
      break;
    case MM_CC_EMOJI_MOD:
      break; /* stray modifier: removed */
    case MM_CC_EMOJI:
    case MM_CC_REGIONAL: {
      err = close_tok(&z);
      if (err) break;
      size_t p = emoji_element(&z, pos, 1, &err);
      while (!err && p < n) {
        size_t kz;
        if (peek(&z, p, &kz) != 0x200D) break;
        int dummy = 0;
        if (!emoji_element(&z, p + kz, 0, &dummy)) break;
        err = put_cp(&z, 0x200D);
        if (!err) p = emoji_element(&z, p + kz, 1, &err);
      }
      if (!err) err = close_tok(&z);
      next = p;
      break;
    }
    default:
      err = close_tok(&z);
      break;
    }
    pos = next;
  }
  if (!err) err = close_tok(&z);
  if (err) {
    /* drop a half-written token; the list stays consistent */
    z.open = 0;
    return e ? (e->code ? e->code : MM_ENOMEM) : MM_ENOMEM;
  }
  return MM_OK;
}
