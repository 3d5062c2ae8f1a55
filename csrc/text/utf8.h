/* utf8.h - UTF-8 decoding with a fixed replacement rule, simple case folding
 * and the character classes the tokenizer splits on.
 *
 * Decoding rule (the Unicode "maximal subpart" practice, Unicode 15 §3.9,
 * Table 3-7): at each position a well-formed sequence is decoded; overlong
 * forms, surrogates (U+D800..DFFF) and values above U+10FFFF are ill-formed.
 * An ill-formed sequence is replaced by ONE U+FFFD per maximal subpart: the
 * lead byte plus the continuation bytes that could still have started a valid
 * sequence; a lone continuation byte or a byte F5..FF is one subpart. A
 * sequence cut short by the end of the buffer is one subpart. The decoder never
 * reads at or past s + n, and NUL bytes are ordinary code points (U+0000).
 */
#ifndef MM_UTF8_H
#define MM_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define MM_UTF8_REPLACEMENT 0xFFFDu

/* Decode the code point at s[0 .. n) (n >= 1). Stores the code point (or
 * U+FFFD) in *cp and returns the number of bytes consumed (1..4, never > n).
 * Returns 0 only when n == 0. */
size_t mm_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Encode cp (<= 0x10FFFF, not a surrogate; otherwise U+FFFD is written) into
 * out (room for 4 bytes); returns the byte count 1..4. */
size_t mm_utf8_encode(uint32_t cp, unsigned char *out);

/* Simple case folding, one code point to one code point (no ß -> ss):
 * ASCII A-Z; Latin-1 U+00C0..00DE except U+00D7; Latin Extended-A and the
 * regular parts of Latin Extended-B; Latin Extended Additional (U+1E00..1EFF,
 * U+1E9E -> U+00DF); Greek (incl. accented capitals, final sigma U+03C2 ->
 * U+03C3, U+03D8..03EF); Cyrillic U+0400..052F; Armenian; fullwidth Latin
 * U+FF21..FF3A. Any other code point is returned unchanged. U+0130 (capital I
 * with dot) folds to plain 'i'. */
uint32_t mm_utf8_fold(uint32_t cp);

/* Character classes used by the tokenizer (see tokenize.h for the rules). */
enum {
  MM_CC_SPACE = 0, /* separators: White_Space, NUL, C0/C1 controls, format chars
                      (U+200B, U+2060, U+FEFF, ...) */
  MM_CC_PUNCT,     /* ASCII punctuation/symbols, Latin-1 punctuation, General
                      Punctuation U+2010..205E, Supplemental Punctuation,
                      CJK punctuation, fullwidth punctuation, currency signs */
  MM_CC_EMOJI,     /* Extended_Pictographic-like ranges: U+1F000..1FAFF,
                      U+2600..27BF, U+2300..23FF, U+2B00..2BFF, arrows, ... */
  MM_CC_EMOJI_MOD, /* joins to a preceding emoji: VS15/VS16 (U+FE0E/FE0F),
                      U+20E3 keycap, tags U+E0020..E007F */
  MM_CC_ZWJ,       /* U+200D ZWJ and U+200C ZWNJ */
  MM_CC_REGIONAL,  /* regional indicators U+1F1E6..1F1FF (paired into flags) */
  MM_CC_IDEO,      /* Han ideographs (CJK Unified + extensions, compatibility):
                      each one is a token of its own */
  MM_CC_WORD       /* everything else: letters, digits, marks, other scripts,
                      U+FFFD */
};
int mm_utf8_class(uint32_t cp);

#endif
