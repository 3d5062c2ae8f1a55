/* png.c - fast path for common PNGs: our own inflate + unfilter + RGB8 with
 * the alpha-over-white rule, in one pass over memory. See png.h for the
 * contract: accept only what stb_image 2.27 accepts (and decode it to the same
 * pixels), decline everything else so that decode.c's general stb path runs.
 *
 * Why the acceptance set is a subset of stb's:
 *  - chunks: IHDR first (13 bytes, depth 8, colour 0/2/4/6, compression 0,
 *    filter 0, no interlace, 1..MM_IMAGE_MAX_SIDE per side, stb's 2^30 size
 *    limit), then only IDAT and ancillary chunks other than tRNS (stb skips
 *    those), then IEND; every chunk before IEND lies wholly inside the data.
 *  - zlib: stb's header checks (mod 31, no preset dictionary, method 8);
 *    blocks of type 0/1/2; dynamic code tables decline on over-subscribed
 *    lengths exactly where stb's zbuild_huffman fails, and on HLIT > 286 or
 *    HDIST > 30 (which stb would take); the code-length rules are stb's; a
 *    code that is not in the table, length symbols 286/287, distance symbols
 *    30/31 and distances past the start of the output decline.
 *  - the stream must inflate to exactly h * (1 + w * channels) bytes (stb:
 *    "not enough pixels" otherwise) with filter bytes 0..4, and its 4-byte
 *    Adler-32 trailer must be present: then stb's inflater, which refuses to
 *    decode a symbol at the end of the data with fewer than 16 bits left,
 *    always has those 32 bits in hand. (stb does not check the Adler-32
 *    value, so neither do we: checking it would refuse files stb decodes.)
 * Everything else declines, with no message: the general path reports it.
 *
 * A hand-tuned decoder, one file of about 950 lines (more than the ~600 of
 * the others) on purpose: the inflater's hot loop (inflate_body, about 120
 * lines: one symbol decode, literal or match copy per turn) is always_inline
 * into a portable and a BMI2 instance, and splitting the file or the loop
 * would cost that inlining; the unfilter and row converters feed the same pass.
 */
#include "png.h"

#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "../core/cpu.h"
#include "image.h"

/* ---- bit reader (LSB first) ------------------------------------------------------ */

typedef struct {
  const uint8_t *in, *end;
  uint64_t bits; /* bits at positions >= cnt are 0 or the stream's next bits */
  unsigned cnt;
  unsigned over; /* zero bytes fed after the end of the data */
} br;

static inline uint64_t load_le64(const uint8_t *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
#else
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
#endif
}

/* afterwards cnt >= 56 */
static inline void refill(br *b) {
  if (b->end - b->in >= 8) {
    b->bits |= load_le64(b->in) << b->cnt; /* cnt <= 63 always */
    b->in += (63 - b->cnt) >> 3;
    b->cnt |= 56;
  } else {
    while (b->cnt <= 55) {
      if (b->in < b->end)
        b->bits |= (uint64_t)*b->in++ << b->cnt;
      else
        b->over++;
      b->cnt += 8;
    }
  }
}

/* needs end - in >= 8 */
static inline void refill_fast(br *b) {
  b->bits |= load_le64(b->in) << b->cnt;
  b->in += (63 - b->cnt) >> 3;
  b->cnt |= 56;
}

static inline void drop(br *b, unsigned n) {
  b->bits >>= n;
  b->cnt -= n;
}

/* ---- Huffman tables ------------------------------------------------------------------
 * entry: bits 0..5 (<= 28) = code bits to consume in all (the codeword and then the
 * extra bits of a length or distance; for a subtable pointer: its index
 * bits), bits 8..11 = the codeword's length, bits 16..31 = the payload (a
 * literal byte, a length or distance base, a repeat count, the raw symbol in
 * raw tables, or a subtable start), and flags: */
#define SUBT 0x1000u /* subtable pointer, or BAD */
#define BAD 0x2000u  /* no such code (always with SUBT, so one test sends it off the fast path) */
#define LITF 0x4000u /* litlen: a literal byte; clen: a repeat (16, 17, 18) */
#define EOBF 0x8000u /* litlen: end of block; clen: repeat the previous length (16) */
#define INVALID (SUBT | BAD)
#define REPF LITF
#define PREVF EOBF

#define LIT_TB 10
#define LIT_CAP ((1 << LIT_TB) + 288 * (1 << (15 - LIT_TB)))
#define DIST_TB 8
#define DIST_CAP ((1 << DIST_TB) + 32 * (1 << (15 - DIST_TB)))
#define CLEN_TB 7
#define CLEN_CAP (1 << CLEN_TB)

/* what a symbol decodes to: an entry without its code lengths */
#define LE(s) (((uint32_t)(s) << 16) | LITF)
#define LE4(s) LE(s), LE((s) + 1), LE((s) + 2), LE((s) + 3)
#define LE16(s) LE4(s), LE4((s) + 4), LE4((s) + 8), LE4((s) + 12)
#define LE64(s) LE16(s), LE16((s) + 16), LE16((s) + 32), LE16((s) + 48)
#define XE(base, extra) (((uint32_t)(base) << 16) | (extra))
static const uint32_t lit_sym[288] = {
    LE64(0),        LE64(64),       LE64(128),      LE64(192),       EOBF,           XE(3, 0),        XE(4, 0),
    XE(5, 0),       XE(6, 0),       XE(7, 0),       XE(8, 0),        XE(9, 0),       XE(10, 0),       XE(11, 1),
    XE(13, 1),      XE(15, 1),      XE(17, 1),      XE(19, 2),       XE(23, 2),      XE(27, 2),       XE(31, 2),
    XE(35, 3),      XE(43, 3),      XE(51, 3),      XE(59, 3),       XE(67, 4),      XE(83, 4),       XE(99, 4),
    XE(115, 4),     XE(131, 5),     XE(163, 5),     XE(195, 5),      XE(227, 5),     XE(258, 0),      INVALID,
    INVALID}; /* 286 and 287 do not occur in valid data */
static const uint32_t dist_sym[32] = {
    XE(1, 0),      XE(2, 0),      XE(3, 0),      XE(4, 0),      XE(5, 1),       XE(7, 1),       XE(9, 2),
    XE(13, 2),     XE(17, 3),     XE(25, 3),     XE(33, 4),     XE(49, 4),      XE(65, 5),      XE(97, 5),
    XE(129, 6),    XE(193, 6),    XE(257, 7),    XE(385, 7),    XE(513, 8),     XE(769, 8),     XE(1025, 9),
    XE(1537, 9),   XE(2049, 10),  XE(3073, 10),  XE(4097, 11),  XE(6145, 11),   XE(8193, 12),   XE(12289, 12),
    XE(16385, 13), XE(24577, 13), INVALID,       INVALID}; /* 30 and 31 do not occur in valid data */
static const uint32_t clen_sym[19] = {XE(0, 0),  XE(1, 0),  XE(2, 0),  XE(3, 0),  XE(4, 0),
                                      XE(5, 0),  XE(6, 0),  XE(7, 0),  XE(8, 0),  XE(9, 0),
                                      XE(10, 0), XE(11, 0), XE(12, 0), XE(13, 0), XE(14, 0),
                                      XE(15, 0), XE(3, 2) | REPF | PREVF, XE(3, 3) | REPF, XE(11, 7) | REPF};

/* the low 8 bits of the index, reversed */
#define R2(n) n, n + 2 * 64, n + 1 * 64, n + 3 * 64
#define R4(n) R2(n), R2(n + 2 * 16), R2(n + 1 * 16), R2(n + 3 * 16)
#define R6(n) R4(n), R4(n + 2 * 4), R4(n + 1 * 4), R4(n + 3 * 4)
static const uint8_t rev8[256] = {R6(0), R6(2), R6(1), R6(3)};

/* c (< 2^10) with its 10 bits reversed */
static inline unsigned rev10(unsigned c) { return ((unsigned)rev8[c & 255] << 2) | ((unsigned)rev8[c >> 8] >> 6); }

static inline unsigned rev_bits(unsigned c, unsigned n) { /* the low n (1..15) bits of c, reversed */
  c = ((c & 0x5555u) << 1) | ((c >> 1) & 0x5555u);
  c = ((c & 0x3333u) << 2) | ((c >> 2) & 0x3333u);
  c = ((c & 0x0f0fu) << 4) | ((c >> 4) & 0x0f0fu);
  c = ((c & 0x00ffu) << 8) | ((c >> 8) & 0x00ffu);
  return c >> (16 - n);
}

static inline void fill32(uint32_t *t, uint32_t v, unsigned n) {
  for (unsigned i = 0; i < n; i++) t[i] = v;
}

/* Canonical Huffman table from code lengths (0..15). Returns 0, or -1 for an
 * over-subscribed set (stb's zbuild_huffman refuses exactly those); an
 * incomplete set is allowed (its unused codes decode as INVALID).
 * Codes of up to tb (<= 10) bits: symbols in (length, symbol) order, each
 * written once at its bit-reversed codeword; the table doubles (memcpy)
 * whenever the length grows, which replicates the shorter codes. Longer codes
 * go to subtables of 2^(maxlen - tb) entries. sym: what each symbol decodes
 * to (see lit_sym); NULL: the raw symbol. cnt[l]: the number of symbols of
 * length l; rank[s]: the number of symbols before s with its length (< 320
 * for length 0; any such value will do). */
static int build_ranked(uint32_t *tab, unsigned tb, unsigned cap, const uint8_t *lens, const uint16_t *rank,
                        const unsigned *cnt, unsigned n, const uint32_t *sym) {
  unsigned count[16], offs[16], next[16];
  uint16_t sorted[320 + 320]; /* symbols of length 0 go to [320, ...): no branch in the placing loop */
  if (n > 320) return -1;
  memcpy(count, cnt, sizeof count);
  count[0] = 0;
  int left = 1;
  for (unsigned l = 1; l < 16; l++) {
    left = (left << 1) - (int)count[l];
    if (left < 0) return -1;
  }
  /* not over-subscribed: the canonical codes of each length l are < 2^l */
  unsigned code = 0, maxlen = 0, minlen = 0;
  offs[1] = 0;
  for (unsigned l = 1; l < 16; l++) {
    code = (code + count[l - 1]) << 1;
    next[l] = code;
    if (count[l]) {
      maxlen = l;
      if (!minlen) minlen = l;
    }
    if (l < 15) offs[l + 1] = offs[l] + count[l];
  }
  unsigned size = 1u << tb;
  if (!maxlen) { /* no codes at all */
    fill32(tab, INVALID, size);
    return 0;
  }
  offs[0] = 320; /* which lengths are 0 is data: a branch on it mispredicts often */
  for (unsigned s = 0; s < n; s++) sorted[offs[lens[s]] + rank[s]] = (uint16_t)s;
  for (unsigned l = 1; l < 16; l++) offs[l] += count[l];
  /* offs[l] is now the end of length l in sorted; its start is offs[l] - count[l] */
  unsigned end = 1u << (minlen < tb ? minlen : tb);
  fill32(tab, INVALID, end);
  for (unsigned l = minlen; l <= tb && l <= maxlen; l++) {
    while (end < (1u << l)) {
      memcpy(tab + end, tab, end * sizeof *tab);
      end <<= 1;
    }
    unsigned k = offs[l] - count[l], stop = offs[l], step = 1u << (10 - l), c = next[l] * step;
    if (sym) {
      for (; k < stop; k++, c += step) tab[rev10(c)] = sym[sorted[k]] + l * 0x101u;
    } else {
      for (; k < stop; k++, c += step) tab[rev10(c)] = ((uint32_t)sorted[k] << 16) + l * 0x101u;
    }
  }
  while (end < size) {
    memcpy(tab + end, tab, end * sizeof *tab);
    end <<= 1;
  }
  if (maxlen <= tb) return 0;
  unsigned subbits = maxlen - tb, used = size;
  for (unsigned l = tb + 1; l <= maxlen; l++) {
    for (unsigned k = offs[l] - count[l]; k < offs[l]; k++) {
      unsigned s = sorted[k];
      unsigned rc = rev_bits(next[l]++, l), p = rc & (size - 1);
      if (tab[p] == INVALID) {
        if (used + (1u << subbits) > cap) return -1; /* cannot happen within the caps; be safe */
        tab[p] = (used << 16) | SUBT | subbits;
        fill32(tab + used, INVALID, 1u << subbits);
        used += 1u << subbits;
      } else if ((tab[p] & (SUBT | BAD)) != SUBT) {
        return -1; /* a short code is a prefix of this one: cannot happen after the checks above */
      }
      unsigned base = tab[p] >> 16, rr = rc >> tb, ll = l - tb;
      uint32_t ent = (sym ? sym[s] : (uint32_t)s << 16) + ll * 0x101u;
      for (unsigned j = rr; j < (1u << subbits); j += 1u << ll) tab[base + j] = ent;
    }
  }
  return 0;
}

static int build(uint32_t *tab, unsigned tb, unsigned cap, const uint8_t *lens, unsigned n, const uint32_t *sym) {
  unsigned count[16] = {0};
  uint16_t rank[320];
  if (n > 320) return -1;
  for (unsigned i = 0; i < n; i++) rank[i] = (uint16_t)count[lens[i]]++;
  return build_ranked(tab, tb, cap, lens, rank, count, n, sym);
}

/* raw tables; needs b->cnt >= 15; returns the symbol or -1 */
/* e: the first-level entry of tab (tb index bits) for the next code. Returns
 * the code's entry, from its subtable when e points to one (the tb bits are
 * then dropped), or an entry with SUBT set when there is no such code. */
static inline uint32_t resolve(br *b, const uint32_t *tab, unsigned tb, uint32_t e) {
  if (e & SUBT) {
    if (e & BAD) return e;
    drop(b, tb);
    e = tab[(e >> 16) + (b->bits & ((1u << (e & 31u)) - 1))];
  }
  return e;
}

static inline int decode(br *b, const uint32_t *tab, unsigned tb) {
  uint32_t e = resolve(b, tab, tb, tab[b->bits & ((1u << tb) - 1)]);
  if (e & SUBT) return -1;
  drop(b, e & 63u);
  return (int)(e >> 16);
}

/* the extra bits of a length / distance entry e, plus its base */
static inline size_t entry_value(const br *b, uint32_t e) {
  return (e >> 16) + (size_t)((b->bits & ((1ull << (e & 63u)) - 1)) >> ((e >> 8) & 15u));
}

static const uint16_t len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
                                       193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
static const uint8_t clen_order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

typedef struct {
  uint32_t lit[LIT_CAP];
  uint32_t dist[DIST_CAP];
  uint32_t clen[CLEN_CAP];
  uint8_t lens[288 + 32 + 16]; /* + 16: repeats are stored 16 bytes at a time */
  uint16_t rank[288 + 32 + 16]; /* see build_ranked */
} tables;

/* bytes of the bit buffer that are real data and not yet consumed; -1 if
 * fed zeros were consumed */
static long real_buffered(const br *b) { return (long)(b->cnt >> 3) - (long)b->over; }

/* raw: raw symbols in the tables (for walk_finds_dist0), and take HLIT up to
 * 288 and HDIST up to 32, as stb does */
static int dynamic_tables(br *bp, tables *t, int raw) {
  br b = *bp; /* a local copy: the byte stores below cannot alias it */
  refill(&b);
  unsigned hlit = (unsigned)(b.bits & 31) + 257, hdist = (unsigned)((b.bits >> 5) & 31) + 1,
           hclen = (unsigned)((b.bits >> 10) & 15) + 4;
  drop(&b, 14);
  if (!raw && (hlit > 286 || hdist > 30)) return -1;
  uint8_t cl[19] = {0};
  for (unsigned i = 0; i < hclen; i++) {
    if (b.cnt < 3) refill(&b);
    cl[clen_order[i]] = (uint8_t)(b.bits & 7);
    drop(&b, 3);
  }
  if (build(t->clen, CLEN_TB, CLEN_CAP, cl, 19, clen_sym)) return -1;
  unsigned ntot = hlit + hdist, n = 0;
  uint8_t *lens = t->lens;
  uint16_t *rank = t->rank;
  unsigned cnt[32] = {0}; /* the lengths' counts: [0, 16) litlen, [16, 32) distance */
  const uint32_t *ct = t->clen;
  while (n < ntot) {
    if (b.end - b.in >= 8) { /* a code and its extra bits take <= 14 bits */
      refill_fast(&b);
    } else {
      refill(&b);
      if (b.over >= 8) return -1;
    }
    uint32_t e = ct[b.bits & (CLEN_CAP - 1)];
    if (e & SUBT) return -1; /* the code-length code has <= 7 bits: no subtables */
    unsigned v = (unsigned)entry_value(&b, e);
    drop(&b, e & 63u);
    if (!(e & REPF)) {
      rank[n] = (uint16_t)cnt[(n >= hlit ? 16 : 0) + v]++;
      lens[n++] = (uint8_t)v;
      continue;
    }
    uint8_t fill = 0;
    if (e & PREVF) {
      if (n == 0) return -1;
      fill = lens[n - 1];
    }
    if (ntot - n < v) return -1;
    uint64_t f8 = fill * 0x0101010101010101ull; /* v <= 138, n + v <= 320: stays inside lens */
    for (unsigned k = 0; k < v; k += 16) {
      memcpy(lens + n + k, &f8, 8);
      memcpy(lens + n + k + 8, &f8, 8);
    }
    if (fill) {
      for (unsigned k = n; k < n + v; k++) rank[k] = (uint16_t)cnt[(k >= hlit ? 16 : 0) + fill]++;
    } else { /* length 0: rank 0 will do */
      for (unsigned k = 0; k < v; k += 16) memset(rank + n + k, 0, 32);
    }
    n += v;
  }
  if (build_ranked(t->lit, LIT_TB, LIT_CAP, lens, rank, cnt, hlit, raw ? NULL : lit_sym)) return -1;
  if (build_ranked(t->dist, DIST_TB, DIST_CAP, lens + hlit, rank + hlit, cnt + 16, hdist, raw ? NULL : dist_sym))
    return -1;
  *bp = b;
  return 0;
}

static int fixed_tables(tables *t, int raw) {
  unsigned i = 0;
  for (; i < 144; i++) t->lens[i] = 8;
  for (; i < 256; i++) t->lens[i] = 9;
  for (; i < 280; i++) t->lens[i] = 7;
  for (; i < 288; i++) t->lens[i] = 8;
  for (i = 0; i < 32; i++) t->lens[288 + i] = 5;
  if (build(t->lit, LIT_TB, LIT_CAP, t->lens, 288, raw ? NULL : lit_sym)) return -1;
  return build(t->dist, DIST_TB, DIST_CAP, t->lens + 288, 32, raw ? NULL : dist_sym);
}

/* out has room for outlen + 32 bytes (wide match copies may write up to 31
 * bytes past the match end, never past outlen + 32). Returns 0 when the zlib
 * stream inflates to exactly outlen bytes and its 4-byte trailer is there. */
static inline __attribute__((always_inline)) int inflate_body(const uint8_t *src, size_t n, uint8_t *out,
                                                              size_t outlen, tables *t) {
  if (n < 2 + 4) return -1;
  unsigned cmf = src[0], flg = src[1];
  if ((cmf * 256 + flg) % 31 != 0 || (flg & 32) || (cmf & 15) != 8) return -1;
  br b = {src + 2, src + n, 0, 0, 0};
  size_t o = 0;
  int final;
  do {
    refill(&b);
    if (b.over >= 8) return -1;
    final = (int)(b.bits & 1);
    unsigned type = (unsigned)((b.bits >> 1) & 3);
    drop(&b, 3);
    if (type == 0) {
      drop(&b, b.cnt & 7);
      long rb = real_buffered(&b);
      if (rb < 0) return -1;
      const uint8_t *p = b.in - rb;
      if (b.end - p < 4) return -1;
      unsigned len = p[0] | ((unsigned)p[1] << 8), nlen = p[2] | ((unsigned)p[3] << 8);
      if (nlen != (len ^ 0xffffu)) return -1;
      p += 4;
      if ((size_t)(b.end - p) < len || outlen - o < len) return -1;
      memcpy(out + o, p, len);
      o += len;
      b.in = p + len;
      b.bits = 0;
      b.cnt = 0;
      b.over = 0;
      continue;
    }
    if (type == 3) return -1;
    if (type == 1) {
      if (fixed_tables(t, 0)) return -1;
    } else { /* on a copy: b's address never escapes, so it can live in registers */
      br bt = b;
      if (dynamic_tables(&bt, t, 0)) return -1;
      b = bt;
    }
    const uint32_t *lt = t->lit, *dt = t->dist;
    for (;;) {
      uint32_t e;
      if (b.end - b.in >= 16 && outlen - o >= 3) {
        /* fast step: two refills cannot run out of input, three literals
         * cannot run out of output; a literal in the first-level table
         * needs <= LIT_TB bits, so after one refill (>= 56 bits) three can
         * be decoded before refilling */
        refill_fast(&b);
        e = lt[b.bits & ((1u << LIT_TB) - 1)];
        if (e & LITF) {
          drop(&b, e & 63u);
          out[o++] = (uint8_t)(e >> 16);
          e = lt[b.bits & ((1u << LIT_TB) - 1)];
          if (e & LITF) {
            drop(&b, e & 63u);
            out[o++] = (uint8_t)(e >> 16);
            e = lt[b.bits & ((1u << LIT_TB) - 1)];
            if (e & LITF) {
              drop(&b, e & 63u);
              out[o++] = (uint8_t)(e >> 16);
              continue;
            }
          }
          refill_fast(&b); /* the low bits (and so e) stay as they are */
        }
      } else {
        refill(&b);
        if (b.over >= 8) return -1;
        e = lt[b.bits & ((1u << LIT_TB) - 1)];
      }
      /* cnt >= 56 here: a length code with its extra bits (<= 20) and a
       * distance code with its extra bits (<= 28) */
      e = resolve(&b, lt, LIT_TB, e);
      if (e & SUBT) return -1;
      if (e & LITF) {
        drop(&b, e & 63u);
        if (o >= outlen) return -1;
        out[o++] = (uint8_t)(e >> 16);
        continue;
      }
      if (e & EOBF) {
        drop(&b, e & 63u);
        break;
      }
      size_t len = entry_value(&b, e);
      drop(&b, e & 63u);
      e = resolve(&b, dt, DIST_TB, dt[b.bits & ((1u << DIST_TB) - 1)]);
      if (e & SUBT) return -1;
      size_t dist = entry_value(&b, e);
      drop(&b, e & 63u);
      if (dist > o || len > outlen - o) return -1;
      uint8_t *q = out + o;
      const uint8_t *r = q - dist;
      o += len;
      if (dist >= 16) { /* 16 bytes at a time, at least 32: may write up to 31 bytes past q + len */
        memcpy(q, r, 16);
        memcpy(q + 16, r + 16, 16);
        for (size_t k = 32; k < len; k += 16) memcpy(q + k, r + k, 16);
      } else if (dist >= 8) {
        for (size_t k = 0; k < len; k += 8) memcpy(q + k, r + k, 8);
      } else if (dist == 1) {
        uint64_t v = *r * 0x0101010101010101ull;
        for (size_t k = 0; k < len; k += 16) {
          memcpy(q + k, &v, 8);
          memcpy(q + k + 8, &v, 8);
        }
      } else {
        for (size_t k = 0; k < len; k++) q[k] = r[k];
      }
    }
  } while (!final);
  if (o != outlen) return -1;
  drop(&b, b.cnt & 7);
  long rb = real_buffered(&b);
  if (rb < 0) return -1;
  if (b.end - (b.in - rb) < 4) return -1; /* the Adler-32 trailer */
  return 0;
}

static int inflate_zlib(const uint8_t *src, size_t n, uint8_t *out, size_t outlen, tables *t) {
  return inflate_body(src, n, out, outlen, t);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* the same with BMI2's shifts (shrx / shlx: one cycle, no flags), which
 * shorten the decode loop's chain of dependent operations */
#define HAVE_INFLATE_BMI2 1
__attribute__((target("bmi2"))) static int inflate_zlib_bmi2(const uint8_t *src, size_t n, uint8_t *out,
                                                             size_t outlen, tables *t) {
  return inflate_body(src, n, out, outlen, t);
}
#endif

/* ---- unfilter + colour ---------------------------------------------------------------- */

static inline int paeth(int a, int b, int c) {
  int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

#if defined(__SSE2__)
/* Sub / Avg / Paeth for 3- or 4-byte pixels, one pixel per step in 16-bit
 * lanes (SSE2 is part of x86-64). prev NULL: first row (zeros above). */
static inline __m128i px_load(const uint8_t *p, unsigned bpp) {
  uint32_t v = 0;
  memcpy(&v, p, bpp);
  return _mm_unpacklo_epi8(_mm_cvtsi32_si128((int)v), _mm_setzero_si128());
}

static inline void px_store(uint8_t *p, __m128i v, unsigned bpp) {
  uint32_t o = (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(v, v));
  memcpy(p, &o, bpp);
}

static inline __m128i abs16(__m128i v) { return _mm_max_epi16(v, _mm_sub_epi16(_mm_setzero_si128(), v)); }

static inline void unfilter_px(uint8_t *cur, const uint8_t *prev, size_t len, unsigned bpp, unsigned f) {
  const __m128i lo = _mm_set1_epi16(0xff), zero = _mm_setzero_si128();
  __m128i a = zero, c = zero;
  for (size_t i = 0; i < len; i += bpp) {
    __m128i x = px_load(cur + i, bpp), b = prev ? px_load(prev + i, bpp) : zero, pred;
    if (f == 1) {
      pred = a;
    } else if (f == 3) {
      pred = _mm_srli_epi16(_mm_add_epi16(a, b), 1);
    } else { /* paeth: p = a + b - c; |p-a| = |b-c|, |p-b| = |a-c|, |p-c| = |b-c + a-c|.
              * What does not depend on a (the pixel just done) is computed
              * first, and x + a, x + b, x + c are selected rather than the
              * predictor: a shorter chain from one pixel to the next. */
      __m128i bc = _mm_sub_epi16(b, c), pa = abs16(bc);
      __m128i xb = _mm_and_si128(_mm_add_epi16(x, b), lo), xc = _mm_and_si128(_mm_add_epi16(x, c), lo);
      __m128i ac = _mm_sub_epi16(a, c), pb = abs16(ac), pc = abs16(_mm_add_epi16(bc, ac));
      __m128i not_a = _mm_or_si128(_mm_cmpgt_epi16(pa, pb), _mm_cmpgt_epi16(pa, pc)); /* else a */
      __m128i use_c = _mm_cmpgt_epi16(pb, pc);                                       /* else b */
      __m128i xbc = _mm_or_si128(_mm_andnot_si128(use_c, xb), _mm_and_si128(use_c, xc));
      __m128i xa = _mm_and_si128(_mm_add_epi16(x, a), lo);
      a = _mm_or_si128(_mm_andnot_si128(not_a, xa), _mm_and_si128(not_a, xbc));
      px_store(cur + i, a, bpp);
      c = b;
      continue;
    }
    a = _mm_and_si128(_mm_add_epi16(x, pred), lo);
    px_store(cur + i, a, bpp);
    c = b;
  }
}
#endif

/* in place; prev NULL for the first row */
static int unfilter(uint8_t *cur, const uint8_t *prev, size_t len, unsigned bpp, unsigned f) {
  size_t i;
  if (f > 4) return -1;
  if (f == 0 || (f == 2 && !prev)) return 0;
  if (f == 2) {
    i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= len; i += 16)
      _mm_storeu_si128((__m128i *)(cur + i), _mm_add_epi8(_mm_loadu_si128((const __m128i *)(cur + i)),
                                                          _mm_loadu_si128((const __m128i *)(prev + i))));
#endif
    for (; i < len; i++) cur[i] = (uint8_t)(cur[i] + prev[i]);
    return 0;
  }
#if defined(__SSE2__)
  if (f == 1 && bpp == 4) { /* a running byte-wise sum of 4-byte pixels */
    __m128i a = _mm_setzero_si128();
    for (i = 0; i < len; i += 4) {
      uint32_t v;
      memcpy(&v, cur + i, 4);
      a = _mm_add_epi8(_mm_cvtsi32_si128((int)v), a);
      v = (uint32_t)_mm_cvtsi128_si32(a);
      memcpy(cur + i, &v, 4);
    }
    return 0;
  }
  if (bpp == 4) {
    unfilter_px(cur, prev, len, 4, f);
    return 0;
  }
  if (bpp == 3) {
    unfilter_px(cur, prev, len, 3, f);
    return 0;
  }
#endif
  switch (f) {
  case 1:
    for (i = bpp; i < len; i++) cur[i] = (uint8_t)(cur[i] + cur[i - bpp]);
    return 0;
  case 3:
    if (prev) {
      for (i = 0; i < bpp; i++) cur[i] = (uint8_t)(cur[i] + (prev[i] >> 1));
      for (; i < len; i++) cur[i] = (uint8_t)(cur[i] + ((cur[i - bpp] + prev[i]) >> 1));
    } else {
      for (i = bpp; i < len; i++) cur[i] = (uint8_t)(cur[i] + (cur[i - bpp] >> 1));
    }
    return 0;
  default: /* 4 */
    if (prev) {
      for (i = 0; i < bpp; i++) cur[i] = (uint8_t)(cur[i] + prev[i]);
      for (; i < len; i++) cur[i] = (uint8_t)(cur[i] + paeth(cur[i - bpp], prev[i], prev[i - bpp]));
    } else { /* paeth(a, 0, 0) = a */
      for (i = bpp; i < len; i++) cur[i] = (uint8_t)(cur[i] + cur[i - bpp]);
    }
    return 0;
  }
}

static inline uint8_t over_white(unsigned c, unsigned a) { return (uint8_t)((c * a + 255u * (255u - a) + 127u) / 255u); }

#if defined(__SSE2__)
/* RGBA -> RGB over white, 4 pixels per step. With u = a * (255 - c),
 * over_white(c, a) = 255 - floor((u + 127) / 255), and for x <= 65535,
 * floor(x / 255) == (x * 0x8081) >> 23 (the 16-bit high product, >> 7).
 * Returns the 4 pixels as two 6-byte groups in the low bytes of each 64-bit
 * half. */
static inline __m128i rgba4_over_white(const uint8_t *s) {
  const __m128i zero = _mm_setzero_si128(), ones = _mm_set1_epi8(-1), c127 = _mm_set1_epi16(127),
                m8081 = _mm_set1_epi16((short)0x8081);
  __m128i v = _mm_loadu_si128((const __m128i *)s), vi = _mm_xor_si128(v, ones);
  __m128i alo = _mm_unpacklo_epi8(v, zero), ahi = _mm_unpackhi_epi8(v, zero);
  alo = _mm_shufflehi_epi16(_mm_shufflelo_epi16(alo, 0xFF), 0xFF);
  ahi = _mm_shufflehi_epi16(_mm_shufflelo_epi16(ahi, 0xFF), 0xFF);
  __m128i ulo = _mm_add_epi16(_mm_mullo_epi16(_mm_unpacklo_epi8(vi, zero), alo), c127);
  __m128i uhi = _mm_add_epi16(_mm_mullo_epi16(_mm_unpackhi_epi8(vi, zero), ahi), c127);
  ulo = _mm_srli_epi16(_mm_mulhi_epu16(ulo, m8081), 7);
  uhi = _mm_srli_epi16(_mm_mulhi_epu16(uhi, m8081), 7);
  __m128i o = _mm_xor_si128(_mm_packus_epi16(ulo, uhi), ones);
  const __m128i m0 = _mm_set1_epi64x(0xffffff), m1 = _mm_set1_epi64x(0xffffff00000000);
  return _mm_or_si128(_mm_and_si128(o, m0), _mm_srli_epi64(_mm_and_si128(o, m1), 8));
}

/* a whole row of w pixels; writes up to 2 bytes past the row's 3 * w bytes
 * unless exact */
static void rgba_row_sse2(const uint8_t *s, int w, uint8_t *d, int exact) {
  int x = 0;
  for (; x + 4 <= w - (exact ? 4 : 0); x += 4) {
    __m128i o = rgba4_over_white(s + 4 * x);
    _mm_storel_epi64((__m128i *)(d + 3 * x), o);
    _mm_storel_epi64((__m128i *)(d + 3 * x + 6), _mm_srli_si128(o, 8));
  }
  for (; x < w; x += 4) { /* the last (up to 4) pixels */
    uint8_t sb[16] = {0}, db[16];
    int k = w - x < 4 ? w - x : 4;
    memcpy(sb, s + 4 * x, (size_t)k * 4);
    __m128i o = rgba4_over_white(sb);
    _mm_storel_epi64((__m128i *)db, o);
    _mm_storel_epi64((__m128i *)(db + 6), _mm_srli_si128(o, 8));
    memcpy(d + 3 * x, db, (size_t)k * 3);
  }
}
#endif

/* exact: write nothing past the row's 3 * w bytes (else up to 2 may be) */
static void row_to_rgb(const uint8_t *s, unsigned n, int w, uint8_t *d, int exact) {
#if defined(__SSE2__)
  if (n == 4) {
    rgba_row_sse2(s, w, d, exact);
    return;
  }
#else
  (void)exact;
#endif
  switch (n) {
  case 1:
    for (int x = 0; x < w; x++, d += 3) d[0] = d[1] = d[2] = s[x];
    break;
  case 2:
    for (int x = 0; x < w; x++, s += 2, d += 3) d[0] = d[1] = d[2] = s[1] == 255 ? s[0] : over_white(s[0], s[1]);
    break;
  case 3:
    memcpy(d, s, (size_t)w * 3);
    break;
  default:
    for (int x = 0; x < w; x++, s += 4, d += 3) {
      unsigned a = s[3];
      if (a == 255) {
        d[0] = s[0];
        d[1] = s[1];
        d[2] = s[2];
      } else if (a == 0) { /* over_white(c, 0) = 255 */
        d[0] = d[1] = d[2] = 255;
      } else {
        d[0] = over_white(s[0], a);
        d[1] = over_white(s[1], a);
        d[2] = over_white(s[2], a);
      }
    }
  }
}

/* ---- the chunk walk ------------------------------------------------------------------ */

static uint32_t be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* the signature and IHDR of a PNG this path takes: its size and channel
 * count; 0 when accepted */
static int read_ihdr(const uint8_t *b, size_t len, uint32_t *w, uint32_t *h, unsigned *n) {
  if (len < 8 + 25 || memcmp(b, png_sig, 8) != 0) return -1;
  if (len > 0x7fffffff) return -1; /* stb takes an int length */
  const uint8_t *p = b + 8;
  if (be32(p) != 13 || memcmp(p + 4, "IHDR", 4) != 0) return -1;
  *w = be32(p + 8), *h = be32(p + 12);
  unsigned depth = p[16], color = p[17];
  if (*w < 1 || *h < 1 || *w > MM_IMAGE_MAX_SIDE || *h > MM_IMAGE_MAX_SIDE) return -1;
  if ((int64_t)*w * *h > MM_IMAGE_MAX_PIXELS) return -1; /* the general path refuses it, saying why */
  if (depth != 8 || (color != 0 && color != 2 && color != 4 && color != 6) || p[18] || p[19] || p[20]) return -1;
  *n = (color & 2 ? 3u : 1u) + (color & 4 ? 1u : 0u);
  if ((1u << 30) / *w / *n < *h) return -1; /* stb's "too large" */
  return 0;
}

/* the chunks from p (after IHDR) to IEND: the first non-empty IDAT's data,
 * the IDAT bytes in all, their count; 0 when the chunk list is one this path
 * takes */
static int find_idat(const uint8_t *p, const uint8_t *end, const uint8_t **first, size_t *total, int *count) {
  *first = NULL, *total = 0, *count = 0;
  for (const uint8_t *q = p; (size_t)(end - q) >= 8;) {
    uint32_t clen = be32(q);
    const uint8_t *type = q + 4;
    if (memcmp(type, "IEND", 4) == 0) return *first ? 0 : -1;
    if (clen > 0x7fffffffu || (uint64_t)clen + 12 > (uint64_t)(end - q)) return -1;
    if (memcmp(type, "IDAT", 4) == 0) {
      if (clen) {
        if (!*first) *first = q + 8;
        (*count)++;
        *total += clen;
      }
    } else if (!(type[0] & 0x20) || memcmp(type, "tRNS", 4) == 0) {
      return -1; /* critical (PLTE, a second IHDR, CgBI, unknown) or tRNS */
    }
    q += (size_t)clen + 12;
  }
  return -1; /* no IEND */
}

/* the IDAT data of the chunks from p (checked by find_idat), one after the other into g */
static void gather_idat(const uint8_t *p, uint8_t *g) {
  size_t o = 0;
  for (const uint8_t *q = p;;) {
    uint32_t clen = be32(q);
    if (memcmp(q + 4, "IEND", 4) == 0) break;
    if (memcmp(q + 4, "IDAT", 4) == 0) {
      memcpy(g + o, q + 8, clen);
      o += clen;
    }
    q += (size_t)clen + 12;
  }
}

/* the zlib stream z inflated into raw (rawlen bytes), then every row
 * unfiltered into RGB8 (dst when it has the image's size, else a new buffer
 * in *out) */
static int inflate_to_rgb8(const uint8_t *z, size_t zlen, uint8_t *raw, uint32_t w, uint32_t h, unsigned n,
                           uint8_t *dst, int dst_w, int dst_h, uint8_t **out) {
  size_t stride = 1 + (size_t)w * n, rawlen = stride * h;
  tables *t = malloc(sizeof *t);
  if (!t) return MM_PNG_NOMEM;
#if defined(HAVE_INFLATE_BMI2)
  int bad = mm_isa_bmi2() ? inflate_zlib_bmi2(z, zlen, raw, rawlen, t) : inflate_zlib(z, zlen, raw, rawlen, t);
#else
  int bad = inflate_zlib(z, zlen, raw, rawlen, t);
#endif
  free(t);
  if (bad) return MM_PNG_DECLINE;
  for (uint32_t y = 0; y < h; y++)
    if (raw[y * stride] > 4) return MM_PNG_DECLINE;
  uint8_t *rgb = dst;
  if (!dst || dst_w != (int)w || dst_h != (int)h) {
    rgb = malloc((size_t)w * h * 3);
    if (!rgb) return MM_PNG_NOMEM;
    *out = rgb;
  }
  for (uint32_t y = 0; y < h; y++) {
    uint8_t *cur = raw + y * stride + 1;
    (void)unfilter(cur, y ? cur - stride : NULL, stride - 1, n, raw[y * stride]);
    row_to_rgb(cur, n, (int)w, rgb + (size_t)y * w * 3, y == h - 1);
  }
  return MM_PNG_OK;
}

#define STACK_IDAT 8192
#define STACK_RAW 16384

int mm_png_decode_rgb8(const uint8_t *b, size_t len, uint8_t *dst, int dst_w, int dst_h, uint8_t **out, int *pw,
                       int *ph) {
  *out = NULL;
  uint32_t w, h;
  unsigned n;
  const uint8_t *first_idat;
  size_t idat_total;
  int nidat;
  if (read_ihdr(b, len, &w, &h, &n)) return MM_PNG_DECLINE;
  const uint8_t *p = b + 8 + 25; /* the chunks after IHDR */
  if (find_idat(p, b + len, &first_idat, &idat_total, &nidat)) return MM_PNG_DECLINE;
  uint8_t idat_stack[STACK_IDAT], *idat_heap = NULL;
  const uint8_t *z = first_idat;
  if (nidat > 1) { /* gather */
    uint8_t *g = idat_total <= STACK_IDAT ? idat_stack : (idat_heap = malloc(idat_total));
    if (!g) return MM_PNG_NOMEM;
    gather_idat(p, g);
    z = g;
  }
  size_t rawlen = (1 + (size_t)w * n) * h;
  uint8_t raw_stack[STACK_RAW], *raw_heap = NULL, *raw = raw_stack;
  if (rawlen + 32 > STACK_RAW) raw = raw_heap = malloc(rawlen + 32);
  int rc = raw ? inflate_to_rgb8(z, idat_total, raw, w, h, n, dst, dst_w, dst_h, out) : MM_PNG_NOMEM;
  free(raw_heap);
  free(idat_heap);
  if (rc == MM_PNG_OK) *pw = (int)w, *ph = (int)h;
  return rc;
}

/* ---- guard for the general path ------------------------------------------------------
 * stb_image 2.27 takes the distance symbols 30 and 31 (invalid in deflate) as
 * distance 0 and then copies bytes from the output to the same place: the
 * image gets uninitialised heap memory (found by spec/image_png_spec.lua's
 * mutations; the pixels differ from run to run). Walk the zlib stream the way
 * stb reads it, without writing anything, and report such a copy. */
static int walk_finds_dist0(const uint8_t *src, size_t n, int header, tables *t) {
  if (header) {
    if (n < 2) return 0;
    unsigned cmf = src[0], flg = src[1];
    if ((cmf * 256 + flg) % 31 != 0 || (flg & 32) || (cmf & 15) != 8) return 0;
    src += 2;
    n -= 2;
  }
  br b = {src, src + n, 0, 0, 0};
  uint64_t o = 0;
  int final;
  do {
    refill(&b);
    if (b.over >= 8) return 0;
    final = (int)(b.bits & 1);
    unsigned type = (unsigned)((b.bits >> 1) & 3);
    drop(&b, 3);
    if (type == 0) {
      drop(&b, b.cnt & 7);
      long rb = real_buffered(&b);
      if (rb < 0) return 0;
      const uint8_t *p = b.in - rb;
      if (b.end - p < 4) return 0;
      unsigned len = p[0] | ((unsigned)p[1] << 8), nlen = p[2] | ((unsigned)p[3] << 8);
      if (nlen != (len ^ 0xffffu)) return 0;
      p += 4;
      if ((size_t)(b.end - p) < len) return 0;
      o += len;
      b.in = p + len;
      b.bits = 0;
      b.cnt = 0;
      b.over = 0;
      continue;
    }
    if (type == 3) return 0;
    if (type == 1 ? fixed_tables(t, 1) : dynamic_tables(&b, t, 1)) return 0;
    for (;;) {
      refill(&b);
      if (b.over >= 8) return 0;
      int s = decode(&b, t->lit, LIT_TB);
      if (s < 0) return 0;
      if (s < 256) {
        o++;
        continue;
      }
      if (s == 256) break;
      s -= 257;
      size_t len = 0; /* symbols 286, 287: stb's tables give length 0 */
      if (s < 29) {
        unsigned le = len_extra[s];
        len = len_base[s] + (size_t)(b.bits & ((1u << le) - 1));
        drop(&b, le);
      }
      int d = decode(&b, t->dist, DIST_TB);
      if (d < 0) return 0;
      if (d >= 30) {
        if (len > 0) return 1;
        continue;
      }
      unsigned de = dist_extra[d];
      size_t dist = dist_base[d] + (size_t)(b.bits & ((1u << de) - 1));
      drop(&b, de);
      if (dist > o) return 0;
      o += len;
    }
  } while (!final);
  return 0;
}

int mm_png_stb_reads_uninit(const uint8_t *b, size_t len) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (len < 8 || memcmp(b, sig, 8) != 0) return 0;
  const uint8_t *end = b + len;
  size_t total = 0;
  int iphone = 0;
  for (const uint8_t *q = b + 8; (size_t)(end - q) >= 8;) { /* the IDAT bytes stb would gather */
    uint32_t clen = be32(q);
    if (memcmp(q + 4, "IEND", 4) == 0) break;
    if ((uint64_t)clen + 8 > (uint64_t)(end - q)) break; /* stb fails reading it */
    if (memcmp(q + 4, "CgBI", 4) == 0) iphone = 1;
    if (memcmp(q + 4, "IDAT", 4) == 0) total += clen;
    if ((uint64_t)clen + 12 > (uint64_t)(end - q)) break;
    q += (size_t)clen + 12;
  }
  if (total == 0) return 0;
  uint8_t *z = malloc(total);
  tables *t = malloc(sizeof *t);
  int found = 0;
  if (z && t) {
    size_t o = 0;
    for (const uint8_t *q = b + 8; (size_t)(end - q) >= 8 && o < total;) {
      uint32_t clen = be32(q);
      if (memcmp(q + 4, "IEND", 4) == 0) break;
      if ((uint64_t)clen + 8 > (uint64_t)(end - q)) break; /* as in the first pass */
      if (memcmp(q + 4, "IDAT", 4) == 0) {
        if (clen > total - o) break; /* cannot happen: the same walk as above */
        memcpy(z + o, q + 8, clen);
        o += clen;
      }
      if ((uint64_t)clen + 12 > (uint64_t)(end - q)) break;
      q += (size_t)clen + 12;
    }
    found = walk_finds_dist0(z, o, !iphone, t);
  }
  free(z);
  free(t);
  return found;
}

int mm_png_idat_past_end(const uint8_t *b, size_t len) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (len < 8 || memcmp(b, sig, 8) != 0) return 0;
  const uint8_t *end = b + len;
  for (const uint8_t *q = b + 8; (size_t)(end - q) >= 8;) { /* stb's chunk walk */
    uint32_t clen = be32(q);
    if (memcmp(q + 4, "IEND", 4) == 0) return 0;
    if ((uint64_t)clen + 8 > (uint64_t)(end - q)) return memcmp(q + 4, "IDAT", 4) == 0;
    if ((uint64_t)clen + 12 > (uint64_t)(end - q)) return 0;
    q += (size_t)clen + 12;
  }
  return 0;
}
