/* utf8.c - decoding (maximal-subpart replacement), case folding, classes. */
#include "utf8.h"

size_t mm_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  if (n == 0) return 0;
  unsigned c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t need;
  uint32_t v;
  unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
    v = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    v = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;      /* no overlongs */
    else if (c == 0xED) hi = 0x9F; /* no surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    v = c & 0x07;
    if (c == 0xF0) lo = 0x90;      /* no overlongs */
    else if (c == 0xF4) hi = 0x8F; /* <= U+10FFFF */
  } else {
    /* continuation byte, C0/C1 (overlong) or F5..FF: one subpart */
    *cp = MM_UTF8_REPLACEMENT;
    return 1;
  }
  size_t i = 1;
  for (; i <= need; i++) {
    if (i >= n) break; /* cut short by the end of the buffer */
    unsigned b = s[i];
    unsigned l = (i == 1) ? lo : 0x80, h = (i == 1) ? hi : 0xBF;
    if (b < l || b > h) break;
    v = (v << 6) | (b & 0x3F);
  }
  if (i <= need) { /* ill-formed: the maximal subpart is s[0 .. i) */
    *cp = MM_UTF8_REPLACEMENT;
    return i;
  }
  *cp = v;
  return need + 1;
}

size_t mm_utf8_encode(uint32_t cp, unsigned char *o) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = MM_UTF8_REPLACEMENT;
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | (cp >> 6));
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | (cp >> 12));
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | (cp >> 18));
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* upper at even code points, lower = upper + 1 */
static int even_upper(uint32_t c, uint32_t a, uint32_t b) { return c >= a && c <= b && ((c - a) % 2 == 0); }

/* Latin Extended-B (U+0180..U+024F): the regular parts */
static uint32_t fold_latin_b(uint32_t c) {
  switch (c) {
  case 0x1C4: case 0x1C5: return 0x1C6;
  case 0x1C7: case 0x1C8: return 0x1C9;
  case 0x1CA: case 0x1CB: return 0x1CC;
  case 0x1F1: case 0x1F2: return 0x1F3;
  case 0x181: return 0x253;
  case 0x186: return 0x254;
  case 0x189: return 0x256;
  case 0x18A: return 0x257;
  case 0x18E: return 0x1DD;
  case 0x18F: return 0x259;
  case 0x190: return 0x25B;
  case 0x193: return 0x260;
  case 0x194: return 0x263;
  case 0x196: return 0x269;
  case 0x197: return 0x268;
  case 0x19C: return 0x26F;
  case 0x19D: return 0x272;
  case 0x19F: return 0x275;
  case 0x1A9: return 0x283;
  case 0x1AE: return 0x288;
  case 0x1B1: return 0x28A;
  case 0x1B2: return 0x28B;
  case 0x1B7: return 0x292;
  case 0x1F6: return 0x195;
  case 0x1F7: return 0x1BF;
  case 0x220: return 0x19E;
  default: break;
  }
  if (c >= 0x1CD && c <= 0x1DC) return (c % 2 == 1) ? c + 1 : c;
  if (even_upper(c, 0x182, 0x185) || even_upper(c, 0x1A0, 0x1A5) || even_upper(c, 0x1DE, 0x1EF) ||
      even_upper(c, 0x1F4, 0x1F5) || even_upper(c, 0x1F8, 0x21F) || even_upper(c, 0x222, 0x233) ||
      even_upper(c, 0x246, 0x24F))
    return c + 1;
  if (c == 0x187 || c == 0x18B || c == 0x191 || c == 0x198 || c == 0x1A7 || c == 0x1AC || c == 0x1AF ||
      c == 0x1B3 || c == 0x1B5 || c == 0x1B8 || c == 0x1BC)
    return c + 1;
  return c;
}

/* Greek and Coptic (U+0370..U+03FF) */
static uint32_t fold_greek(uint32_t c) {
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 37;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 63;
  if ((c >= 0x391 && c <= 0x3A1) || (c >= 0x3A3 && c <= 0x3AB)) return c + 32;
  if (c == 0x3C2) return 0x3C3; /* final sigma */
  if (even_upper(c, 0x3D8, 0x3EF)) return c + 1;
  if (c == 0x3F4) return 0x3B8;
  if (c == 0x3F7 || c == 0x3FA) return c + 1;
  return c;
}

/* Greek Extended (U+1F00..U+1FFF): the regular capitals */
static uint32_t fold_greek_ext(uint32_t c) {
  uint32_t lo = c & 0xF;
  uint32_t row = c & 0xFFF0;
  if (lo >= 8 && (row == 0x1F00 || row == 0x1F10 || row == 0x1F20 || row == 0x1F30 || row == 0x1F40 ||
                  row == 0x1F60)) {
    if ((row == 0x1F10 || row == 0x1F40) && lo >= 0xE) return c;
    return c - 8;
  }
  if (row == 0x1F50 && lo >= 8 && (lo % 2 == 1)) return c - 8;
  return c;
}

uint32_t mm_utf8_fold(uint32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if (c < 0x100) return (c >= 0xC0 && c <= 0xDE && c != 0xD7) ? c + 32 : c;
  if (c < 0x180) { /* Latin Extended-A */
    if (c == 0x130) return 'i';
    if (c == 0x178) return 0xFF;
    if (c == 0x17F) return c;
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return (c % 2 == 0) ? c + 1 : c;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c % 2 == 1) ? c + 1 : c;
    return c;
  }
  if (c < 0x250) return fold_latin_b(c);
  if (c >= 0x370 && c < 0x400) return fold_greek(c);
  if (c >= 0x400 && c < 0x530) { /* Cyrillic + supplement */
    if (c <= 0x40F) return c + 0x50;
    if (c <= 0x42F) return c + 0x20;
    if (even_upper(c, 0x460, 0x481) || even_upper(c, 0x48A, 0x4BF) || even_upper(c, 0x4D0, 0x52F)) return c + 1;
    if (c == 0x4C0) return 0x4CF;
    if (c >= 0x4C1 && c <= 0x4CE) return (c % 2 == 1) ? c + 1 : c;
    return c;
  }
  if (c >= 0x531 && c <= 0x556) return c + 0x30; /* Armenian */
  if (c >= 0x1E00 && c <= 0x1EFF) {             /* Latin Extended Additional */
    if (c == 0x1E9E) return 0xDF;
    if (even_upper(c, 0x1E00, 0x1E95) || even_upper(c, 0x1EA0, 0x1EFF)) return c + 1;
    return c;
  }
  if (c >= 0x1F00 && c <= 0x1FFF) return fold_greek_ext(c);
  if (c >= 0xFF21 && c <= 0xFF3A) return c + 32; /* fullwidth Latin */
  return c;
}

static int in(uint32_t c, uint32_t a, uint32_t b) { return c >= a && c <= b; }

int mm_utf8_class(uint32_t c) {
  if (c < 0x80) {
    if (c <= 0x20 || c == 0x7F) return MM_CC_SPACE;
    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) return MM_CC_WORD;
    return MM_CC_PUNCT;
  }
  if (c < 0xA0) return MM_CC_SPACE; /* C1 controls, U+0085 */
  if (c < 0x100) {
    if (c == 0xA0 || c == 0xAD) return MM_CC_SPACE; /* NBSP, soft hyphen */
    if (c == 0xA9 || c == 0xAE) return MM_CC_EMOJI; /* (c) (r) */
    if (c == 0xAA || c == 0xB5 || c == 0xBA || c == 0xB2 || c == 0xB3 || c == 0xB9 || in(c, 0xBC, 0xBE))
      return MM_CC_WORD;
    if (c <= 0xBF || c == 0xD7 || c == 0xF7) return MM_CC_PUNCT;
    return MM_CC_WORD;
  }
  if (c < 0x2000) {
    if (c == 0x37E || c == 0x387 || in(c, 0x55A, 0x55F) || c == 0x589 || c == 0x5BE || c == 0x5C0 ||
        c == 0x5C3 || c == 0x5C6 || c == 0x5F3 || c == 0x5F4 || in(c, 0x609, 0x60D) || c == 0x61B ||
        in(c, 0x61D, 0x61F) || in(c, 0x66A, 0x66D) || c == 0x6D4 || in(c, 0x964, 0x965) || c == 0xE5A ||
        c == 0xE5B || in(c, 0x10FB, 0x10FB) || in(c, 0x1360, 0x1368) || in(c, 0x166E, 0x166E) ||
        in(c, 0x16EB, 0x16ED) || in(c, 0x1800, 0x180A))
      return MM_CC_PUNCT;
    if (c == 0x1680 || c == 0x180E) return MM_CC_SPACE;
    return MM_CC_WORD;
  }
  if (c < 0x3000) {
    if (in(c, 0x2000, 0x200B) || in(c, 0x2028, 0x202F) || in(c, 0x205F, 0x206F)) return MM_CC_SPACE;
    if (c == 0x200C || c == 0x200D) return MM_CC_ZWJ; /* ZWNJ / ZWJ: kept between word characters */
    if (c == 0x200E || c == 0x200F) return MM_CC_SPACE;
    if (c == 0x203C || c == 0x2049) return MM_CC_EMOJI; /* double exclamation, ?! */
    if (in(c, 0x2010, 0x205E)) return MM_CC_PUNCT;
    if (in(c, 0x20A0, 0x20CF)) return MM_CC_PUNCT; /* currency */
    if (c == 0x20E3) return MM_CC_EMOJI_MOD;
    if (c == 0x2122 || c == 0x2139 || c == 0x24C2 || c == 0x2934 || c == 0x2935) return MM_CC_EMOJI;
    if (in(c, 0x2190, 0x21FF)) return MM_CC_EMOJI; /* arrows */
    if (in(c, 0x2300, 0x23FF)) return MM_CC_EMOJI; /* misc technical */
    if (in(c, 0x25A0, 0x25FF)) return MM_CC_EMOJI; /* geometric shapes */
    if (in(c, 0x2600, 0x27BF)) return MM_CC_EMOJI; /* misc symbols, dingbats */
    if (in(c, 0x2B00, 0x2BFF)) return MM_CC_EMOJI;
    if (in(c, 0x2E00, 0x2E7F)) return MM_CC_PUNCT; /* supplemental punctuation */
    if (in(c, 0x2E80, 0x2FDF)) return MM_CC_IDEO;  /* radicals */
    if (in(c, 0x2FF0, 0x2FFF)) return MM_CC_PUNCT;
    return MM_CC_WORD;
  }
  if (c < 0x10000) {
    if (c == 0x3000) return MM_CC_SPACE;
    if (c == 0x3030 || c == 0x303D || c == 0x3297 || c == 0x3299) return MM_CC_EMOJI;
    if (in(c, 0x3001, 0x3003) || in(c, 0x3008, 0x3011) || in(c, 0x3014, 0x301F) || c == 0x30FB) return MM_CC_PUNCT;
    if (c == 0x3005 || c == 0x3007 || in(c, 0x3021, 0x3029) || in(c, 0x3038, 0x303B)) return MM_CC_IDEO;
    if (in(c, 0x3400, 0x4DBF) || in(c, 0x4E00, 0x9FFF) || in(c, 0xF900, 0xFAFF)) return MM_CC_IDEO;
    if (in(c, 0xFE00, 0xFE0F)) return MM_CC_EMOJI_MOD; /* variation selectors */
    if (in(c, 0xFE10, 0xFE19) || in(c, 0xFE30, 0xFE4F) || in(c, 0xFE50, 0xFE6B)) return MM_CC_PUNCT;
    if (c == 0xFEFF) return MM_CC_SPACE;
    if (in(c, 0xFF01, 0xFF0F) || in(c, 0xFF1A, 0xFF20) || in(c, 0xFF3B, 0xFF40) || in(c, 0xFF5B, 0xFF65))
      return MM_CC_PUNCT;
    if (in(c, 0xFFF0, 0xFFFC)) return MM_CC_SPACE;
    if (c == 0xFFFE || c == 0xFFFF) return MM_CC_SPACE;
    return MM_CC_WORD;
  }
  if (in(c, 0x1F1E6, 0x1F1FF)) return MM_CC_REGIONAL;
  if (in(c, 0x1F3FB, 0x1F3FF)) return MM_CC_EMOJI_MOD; /* skin tones */
  if (in(c, 0x1F000, 0x1FAFF)) return MM_CC_EMOJI;
  if (in(c, 0x20000, 0x3FFFF)) return MM_CC_IDEO;
  if (in(c, 0xE0020, 0xE007F)) return MM_CC_EMOJI_MOD; /* tags */
  if (in(c, 0xE0000, 0xE0FFF)) return MM_CC_SPACE;     /* other tags, VS supplement */
  if (in(c, 0xF0000, 0x10FFFF)) return MM_CC_WORD;    /* private use */
  return MM_CC_WORD;
}
