/* tokenize.c - UTF-8 tokenizer (rules in tokenize.h). */
#include "tokenize.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"

const char *const mm_mention_names[] = {"off", "user", "keep", NULL};
const char *const mm_tokenizer_names[] = {"plain", "posts", NULL};

mm_tokenize_opts mm_tokenize_defaults(void) {
  mm_tokenize_opts o = {1, 0, {0, 0, 0, 0, 0, 0, 0}};
  return o;
}

int mm_tokenize_preset(const char *name, mm_tokenize_opts *o) {
  if (!name) return -1;
  if (!strcmp(name, "plain")) {
    *o = mm_tokenize_defaults();
    return 0;
  }
  if (!strcmp(name, "posts")) {
    *o = mm_tokenize_defaults();
    o->post = (mm_post_opts){.urls = 1, .mentions = MM_MENTION_USER, .rt = 1, .hashtags = 1, .emoticons = 1,
                             .tones = 1, .elongation = 1};
    return 0;
  }
  return -1;
}

/* longest first where one is a prefix of another (":-)" before ":-") */
const char *const mm_emoticons[] = {
    ":-)", ":)", ":-(", ":(", ":-D", ":D", ";-)", ";)", ":-P", ":P", ":-p", ":p", ":'(", ":'-(", ":-/", ":/",
    ":-|", ":|", ":-O", ":O", ":-o", ":o", ":-*", ":*", ":]", ":[", ":3", "=)", "=(", "=D", "</3", "<3", "^_^",
    "^^", "-_-", "xD", "XD", "T_T", "D:", NULL};

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
  int run;       /* how many times in a row `last` was appended */
  const mm_tokenize_opts *o;
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
    z->run = 0;
  }
  if (reserve_bytes(t, 5, z->e)) return MM_ENOMEM; /* 4 + room for the NUL */
  t->buflen += mm_utf8_encode(cp, (unsigned char *)t->buf + t->buflen);
  z->run = z->run && cp == z->last ? z->run + 1 : 1;
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

/* a whole token from bytes (closes the open one first) */
static int put_token(scan *z, const char *w, size_t n) {
  if (close_tok(z)) return MM_ENOMEM;
  size_t p = 0;
  while (p < n) {
    uint32_t cp;
    p += mm_utf8_decode((const unsigned char *)w + p, n - p, &cp);
    if (put_cp(z, cp)) return MM_ENOMEM;
  }
  return close_tok(z);
}

static int lower_ascii(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* how many bytes at pos match p, ASCII letters compared without case */
static size_t match_ci(const scan *z, size_t pos, const char *p) {
  size_t i = 0;
  while (p[i] && pos + i < z->n && lower_ascii(z->s[pos + i]) == p[i]) i++;
  return i;
}

static int starts_with(const scan *z, size_t pos, const char *p, size_t len) {
  return pos + len <= z->n && memcmp(z->s + pos, p, len) == 0;
}

#define ELLIPSIS "\xE2\x80\xA6" /* U+2026 */

/* a URL at pos (rules in tokenize.h): its end offset, or 0 */
static size_t url_at(const scan *z, size_t pos) {
  int found = 0;
  size_t p = pos;
  static const char *const schemes[] = {"https://", "http://"};
  for (int i = 0; i < 2 && !found; i++) {
    size_t m = match_ci(z, pos, schemes[i]);
    if (m == strlen(schemes[i])) found = 1, p = pos + m;
    else if (m >= 3 && starts_with(z, pos + m, ELLIPSIS, 3)) return pos + m + 3; /* "htt…" */
  }
  if (!found && match_ci(z, pos, "www.") == 4 && pos + 4 < z->n) {
    uint32_t c = peek(z, pos + 4, NULL);
    if (mm_utf8_class(c) == MM_CC_WORD) found = 1, p = pos + 4;
  }
  if (!found) return 0;
  while (p < z->n) {
    size_t k;
    if (mm_utf8_class(peek(z, p, &k)) == MM_CC_SPACE) break;
    p += k;
  }
  return p;
}

/* the end of a run of word characters and '_' (and ideographs with ideo)
 * from pos; pos when there is none */
static size_t name_run(const scan *z, size_t pos, int ideo) {
  size_t p = pos;
  while (p < z->n) {
    size_t k;
    uint32_t c = peek(z, p, &k);
    int cls = mm_utf8_class(c);
    if (!(cls == MM_CC_WORD || c == '_' || (ideo && cls == MM_CC_IDEO))) break;
    p += k;
  }
  return p;
}

/* append s[a .. b) to the open token, case-folded as words are */
static int put_folded(scan *z, size_t a, size_t b) {
  while (a < b) {
    size_t k;
    uint32_t c = peek(z, a, &k);
    if (put_cp(z, z->o->lowercase ? mm_utf8_fold(c) : c)) return MM_ENOMEM;
    a += k;
  }
  return MM_OK;
}

/* is the code point at pos (or the end) one that may follow an emoticon? */
static int ends_word(const scan *z, size_t pos) {
  if (pos >= z->n) return 1;
  return mm_utf8_class(peek(z, pos, NULL)) != MM_CC_WORD;
}

/* an emoticon at pos: its end offset and (in *which) its index, or 0 */
static size_t emoticon_at(const scan *z, size_t pos, int *which) {
  uint8_t c0 = z->s[pos];
  if (c0 == 0 || !strchr(":;=<^-xXTD", c0)) return 0; /* the first characters of mm_emoticons */
  for (int i = 0; mm_emoticons[i]; i++) {
    const char *em = mm_emoticons[i];
    size_t len = strlen(em);
    if ((uint8_t)em[0] != c0 || !starts_with(z, pos, em, len)) continue;
    int letter = mm_utf8_class((uint8_t)em[0]) == MM_CC_WORD;
    if (letter && z->open) continue;
    size_t end = pos + len;
    while (end < z->n && z->s[end] == (uint8_t)em[len - 1]) end++; /* ":)))" */
    if (!ends_word(z, end)) continue;
    if (em[len - 1] == '/' && end < z->n && z->s[end] == '/') continue; /* "://" */
    *which = i;
    return end;
  }
  return 0;
}

/* the post options at pos (tokenize.h): the end of what they consumed, or 0 */
static size_t post_token(scan *z, size_t pos, int *err) {
  const mm_post_opts *po = &z->o->post;
  uint8_t c = z->s[pos];
  size_t end;
  if (!z->open && po->urls && (c == 'h' || c == 'H' || c == 'w' || c == 'W') && (end = url_at(z, pos))) {
    *err = put_token(z, "<url>", 5);
    return end;
  }
  if (!z->open && po->mentions && c == '@' && (end = name_run(z, pos + 1, 0)) > pos + 1) {
    if (po->mentions == MM_MENTION_USER) *err = put_token(z, "<user>", 6);
    else *err = put_cp(z, '@') || put_folded(z, pos + 1, end) || close_tok(z);
    return end;
  }
  if (!z->open && po->rt && c == 'R' && starts_with(z, pos, "RT", 2) && ends_word(z, pos + 2)) {
    *err = put_token(z, "<rt>", 4);
    return pos + 2;
  }
  if (!z->open && po->hashtags && c == '#' && (end = name_run(z, pos + 1, 1)) > pos + 1) {
    *err = put_folded(z, pos + 1, end) || close_tok(z) || put_cp(z, '#') || put_folded(z, pos + 1, end) ||
           close_tok(z);
    return end;
  }
  int which;
  if (po->emoticons && (end = emoticon_at(z, pos, &which))) {
    const char *em = mm_emoticons[which];
    *err = close_tok(z);
    for (size_t i = 0; !*err && em[i]; i++) /* without the nose */
      if (!(em[i] == '-' && i > 0 && em[i + 1])) *err = put_cp(z, (uint8_t)em[i]);
    if (!*err) *err = close_tok(z);
    return end;
  }
  return 0;
}

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
    int tone = m >= 0x1F3FB && m <= 0x1F3FF;
    if (emit && m != 0xFE0E && m != 0xFE0F && !(tone && z->o->post.tones) && put_cp(z, m)) *err = 1;
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
  scan z = {(const unsigned char *)str, n, out, 0, 0, 0, 0, &o, e};
  const mm_post_opts *po = &o.post;
  int posts = po->urls || po->mentions || po->rt || po->hashtags || po->emoticons;
  size_t pos = 0;
  int err = 0;
  while (pos < n && !err) {
    size_t k;
    if (posts) {
      size_t end = post_token(&z, pos, &err);
      if (end) {
        pos = end;
        continue;
      }
    }
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
    case MM_CC_WORD: {
      uint32_t w = o.lowercase ? mm_utf8_fold(cp) : cp;
      if (po->elongation && z.open && z.run >= 2 && w == z.last && !is_digit(w)) break; /* "soooo" -> "soo" */
      err = put_cp(&z, w);
      break;
    }
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
