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
 *
 * Post options (mm_post_opts; all off by default, as the rules above; all on
 * in the "posts" preset, for social-media text). Each is tried, in this
 * order, where a token may start (no word is open) before the rules above:
 *  - urls: "http://", "https://" (any letter case) or "www." + a word
 *    character starts a URL that runs to the next separator; it becomes the
 *    token "<url>". A URL cut short with "…" (U+2026) right after at least
 *    "htt" of "http(s)://" ("htt…", "http:/…") is a URL too.
 *  - mentions: '@' + a run of word characters and '_' becomes "<user>"
 *    (MM_MENTION_USER) or "@name" (MM_MENTION_KEEP, case-folded as words).
 *  - rt: "RT" in capitals standing alone (followed by the end, a separator or
 *    punctuation) becomes "<rt>", the retweet marker.
 *  - hashtags: '#' + a run of word characters, ideographs and '_' gives two
 *    tokens: the word ("legday") and the tag ("#legday"), case-folded.
 *  - emoticons: the ASCII emoticons of mm_emoticons (":)", ":-(", ":D", "<3",
 *    ";)", ":P", "xD", "^_^", ...) are tokens, written without their nose
 *    ("-"), a repeated last character absorbed (":)))" -> ":)"). One that
 *    starts with a letter ("xD", "T_T", "D:") must start a token; every one
 *    must be followed by the end or a non-word character (":Dog" is no
 *    emoticon, "12:30" neither).
 *  - tones: the skin-tone modifiers U+1F3FB..1F3FF are removed from emoji
 *    tokens, so every skin tone of an emoji is one token.
 *  - elongation: in a word, a run of 3 or more of the same letter keeps 2
 *    ("soooo" -> "soo", "cooool" -> "cool"); digits are never shortened.
 */
#ifndef MM_TOKENIZE_H
#define MM_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

enum { MM_MENTION_OFF = 0, MM_MENTION_USER, MM_MENTION_KEEP, MM_MENTION_COUNT };
/* "off", "user", "keep" (by MM_MENTION_*) */
extern const char *const mm_mention_names[];

/* the post options (above): each 0 (off) or 1 (on); mentions MM_MENTION_* */
typedef struct mm_post_opts {
  int urls, mentions, rt, hashtags, emoticons, tones, elongation;
} mm_post_opts;

typedef struct mm_tokenize_opts {
  int lowercase;  /* 1 (default): case-fold word characters */
  int keep_punct; /* 0 (default): drop punctuation; 1: one token per mark */
  mm_post_opts post;
} mm_tokenize_opts;

/* lowercase = 1, keep_punct = 0, every post option off ("plain") */
mm_tokenize_opts mm_tokenize_defaults(void);

/* The presets by name: "plain" (mm_tokenize_defaults) and "posts" (plain +
 * every post option on, mentions MM_MENTION_USER). Returns 0 and fills *o,
 * or -1 for an unknown name. */
extern const char *const mm_tokenizer_names[]; /* "plain", "posts", NULL */
int mm_tokenize_preset(const char *name, mm_tokenize_opts *o);

/* The emoticons the emoticons option knows, as written in the text (with a
 * nose where it has one), NULL-terminated. */
extern const char *const mm_emoticons[];

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
