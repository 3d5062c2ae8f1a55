/* tokenize.h - the mmfuse text tokenizer (UTF-8 in, lowercased tokens out).
 *
 * Rules, applied left to right over the decoded code points (utf8.h):
 *  1. Invalid UTF-8 becomes U+FFFD (maximal-subpart rule, utf8.h); U+FFFD is a
 *     word character, so "ab\xFFcd" is the single token "ab\uFFFDcd".
 *  2. Separators (MM_CC_SPACE: Unicode White_Space, NUL, controls, zero-width
 *     format characters) end a token and are dropped.
 *  3. Punctuation (MM_CC_PUNCT) ends a token and is dropped (or, with
 *     opts.keep_punct, becomes a one-code-point token) - with two exceptions
 *     that stay inside a word: an apostrophe (U+0027 or U+2019, written as
 *     U+0027) between two word characters ("don't"), and '.' or ',' between
 *     two ASCII digits ("3.14", "1,000").
 *  4. Emoji: one token per emoji sequence: an emoji code point followed by any
 *     number of modifiers (VS15/VS16, skin tones U+1F3FB..1F3FF, keycap
 *     U+20E3, tag characters U+E0020..E007F), then, repeatedly, ZWJ + another
 *     such element (so a ZWJ family is one token); two regional indicators form
 *     one flag token; [0-9#*] (+ U+FE0F) + U+20E3 is one keycap token.
 *     Variation selectors U+FE0E/U+FE0F are removed from emoji tokens, so the
 *     text and emoji presentations ("❤" and "❤️") are one
 *     token. A modifier that follows no emoji is removed (it neither ends nor
 *     starts a token); a ZWJ or ZWNJ (U+200C) between two word characters
 *     stays in the word (Indic and Persian scripts), elsewhere it is removed.
 *  5. CJK: each Han ideograph (MM_CC_IDEO) is a token by itself (Chinese and
 *     Japanese do not separate words with spaces; word n-grams over characters
 *     then play the role of words). Kana, Hangul, Thai and all other scripts
 *     are word characters: a run of them is one token.
 *  6. Word characters are case-folded (mm_utf8_fold) when opts.lowercase is
 *     set. No Unicode normalisation (NFC) is applied: "e\u0301" != "\u00e9".
 * Tokens are valid UTF-8, never empty, and contain no NUL byte.
 */
#ifndef MM_TOKENIZE_H
#define MM_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

typedef struct mm_tokenize_opts {
  int lowercase;  /* 1 (default): case-fold word characters */
  int keep_punct; /* 0 (default): drop punctuation; 1: one token per mark */
} mm_tokenize_opts;

/* lowercase = 1, keep_punct = 0 */
mm_tokenize_opts mm_tokenize_defaults(void);

/* A growable list of tokens. Token i is the NUL-terminated string at
 * buf + off[i] of byte length len[i]. */
typedef struct mm_tokens {
  char *buf;
  size_t buflen, bufcap;
  size_t *off;
  size_t *len;
  int64_t n, cap;
} mm_tokens;

void mm_tokens_init(mm_tokens *t);
void mm_tokens_clear(mm_tokens *t); /* n = 0, keeps the memory */
void mm_tokens_free(mm_tokens *t);
/* append one token (copied); MM_ENOMEM on failure */
int mm_tokens_push(mm_tokens *t, const char *s, size_t n, mm_err *e);

/* Tokenize s[0 .. n) (not NUL-terminated; may contain NUL bytes; s may be
 * NULL when n == 0) and APPEND the tokens to out. opts may be NULL (defaults).
 * Reads only s[0 .. n). Returns MM_OK or MM_ENOMEM (e filled; e may be NULL).
 * This is also the libFuzzer entry point:
 *   mm_tokens t; mm_tokens_init(&t);
 *   mm_tokenize_buffer(data, size, NULL, &t, NULL); mm_tokens_free(&t); */
int mm_tokenize_buffer(const char *s, size_t n, const mm_tokenize_opts *opts, mm_tokens *out, mm_err *e);

#endif
