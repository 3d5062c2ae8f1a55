/* json.c - strict JSON reader (see json.h).
 *
 * Two passes over the text with the same recursive-descent code: the first
 * checks the grammar and counts the nodes, the string bytes and the items of
 * every container (in the order the containers open); the second allocates
 * one block for all of it and fills the tree, giving each container its
 * items as one contiguous run of nodes. */
#include "json.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *s;
  size_t len, pos;
  const char *name;
  mm_err *e;
  int build;
  /* first pass */
  int64_t nodes, sbytes;
  int64_t *counts; /* items of each container, in opening order */
  int64_t ncont, capcont;
  /* second pass */
  mm_json *pool;
  int64_t used;
  char *strs;
  int64_t sused;
  int64_t ci; /* next container */
} parser;

static int fail(parser *p, const char *what) {
  int64_t line = 1, col = 1;
  for (size_t i = 0; i < p->pos && i < p->len; i++) {
    if (p->s[i] == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  return mm_errorf(p->e, MM_EFORMAT, "%s:%lld:%lld: invalid JSON: %s", p->name, (long long)line, (long long)col, what);
}

static void skip_ws(parser *p) {
  while (p->pos < p->len) {
    char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

static int literal(parser *p, const char *word) {
  size_t n = strlen(word);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) return fail(p, "unexpected character");
  p->pos += n;
  return MM_OK;
}

static int hex4(parser *p, unsigned *out) {
  if (p->len - p->pos < 4) return fail(p, "truncated \\u escape");
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p->s[p->pos + (size_t)i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return fail(p, "bad hex digit in \\u escape");
    v = v * 16 + (unsigned)d;
  }
  p->pos += 4;
  *out = v;
  return MM_OK;
}

/* bytes of a valid UTF-8 sequence at s[0..n), 0 when invalid (overlong,
 * surrogate, above U+10FFFF, truncated) */
static int utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  int len;
  unsigned min, cp;
  if ((c & 0xE0) == 0xC0) len = 2, min = 0x80, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0) len = 3, min = 0x800, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0) len = 4, min = 0x10000, cp = c & 0x07;
  else return 0;
  if (n < (size_t)len) return 0;
  for (int i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

static char *put_utf8(char *d, unsigned cp) {
  if (cp < 0x80) {
    *d++ = (char)cp;
  } else if (cp < 0x800) {
    *d++ = (char)(0xC0 | (cp >> 6));
    *d++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *d++ = (char)(0xE0 | (cp >> 12));
    *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *d++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *d++ = (char)(0xF0 | (cp >> 18));
    *d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
    *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *d++ = (char)(0x80 | (cp & 0x3F));
  }
  return d;
}

/* a string at p->pos (the opening quote); in the second pass its decoded
 * bytes go to p->strs and *out / *outn point at them */
static int string(parser *p, const char **out, int64_t *outn) {
  p->pos++; /* '"' */
  char *d = p->build ? p->strs + p->sused : NULL;
  int64_t n = 0;
  for (;;) {
    if (p->pos >= p->len) return fail(p, "unterminated string");
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c == '"') {
      p->pos++;
      break;
    }
    if (c < 0x20) return fail(p, "control character in a string");
    if (c == '\\') {
      p->pos++;
      if (p->pos >= p->len) return fail(p, "unterminated string");
      char x = p->s[p->pos++];
      unsigned cp;
      switch (x) {
      case '"': cp = '"'; break;
      case '\\': cp = '\\'; break;
      case '/': cp = '/'; break;
      case 'b': cp = '\b'; break;
      case 'f': cp = '\f'; break;
      case 'n': cp = '\n'; break;
      case 'r': cp = '\r'; break;
      case 't': cp = '\t'; break;
      case 'u': {
        if (hex4(p, &cp)) return p->e->code;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(p, "unpaired low surrogate in \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          unsigned lo;
          if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return fail(p, "unpaired high surrogate in \\u escape");
          p->pos += 2;
          if (hex4(p, &lo)) return p->e->code;
          if (lo < 0xDC00 || lo > 0xDFFF) return fail(p, "unpaired high surrogate in \\u escape");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0) return fail(p, "\\u0000 in a string is not supported");
        break;
      }
      default:
        p->pos--;
        return fail(p, "bad escape in a string");
      }
      int bytes = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      if (d) d = put_utf8(d, cp);
      n += bytes;
      continue;
    }
    int L = utf8_len((const unsigned char *)p->s + p->pos, p->len - p->pos);
    if (!L) return fail(p, "invalid UTF-8 in a string");
    if (d) {
      memcpy(d, p->s + p->pos, (size_t)L);
      d += L;
    }
    p->pos += (size_t)L;
    n += L;
  }
  if (p->build) {
    *d = '\0';
    *out = p->strs + p->sused;
    *outn = n;
    p->sused += n + 1;
  } else {
    p->sbytes += n + 1;
  }
  return MM_OK;
}

static int number(parser *p, double *out) {
  size_t a = p->pos;
  const char *s = p->s;
#define DIGIT(i) ((i) < p->len && s[i] >= '0' && s[i] <= '9')
  size_t i = a;
  if (i < p->len && s[i] == '-') i++;
  if (!DIGIT(i)) return fail(p, "bad number");
  if (s[i] == '0') {
    i++;
    if (DIGIT(i)) return fail(p, "leading zero in a number");
  } else {
    while (DIGIT(i)) i++;
  }
  if (i < p->len && s[i] == '.') {
    i++;
    if (!DIGIT(i)) return fail(p, "bad fraction in a number");
    while (DIGIT(i)) i++;
  }
  if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
    if (!DIGIT(i)) return fail(p, "bad exponent in a number");
    while (DIGIT(i)) i++;
  }
#undef DIGIT
  char buf[128];
  size_t n = i - a;
  if (n >= sizeof buf) return fail(p, "number longer than 127 characters");
  memcpy(buf, s + a, n);
  buf[n] = '\0';
  /* strtod reads the locale's decimal point: as Lua does, retry with it */
  char *end;
  double v = strtod(buf, &end);
  if (*end == '.') {
    const char *dp = localeconv()->decimal_point;
    char *q = strchr(buf, '.');
    if (dp && dp[0] && !dp[1] && q) *q = dp[0];
    v = strtod(buf, &end);
  }
  if (*end != '\0') return fail(p, "bad number");
  if (!isfinite(v)) return fail(p, "number out of range");
  p->pos = i;
  *out = v;
  return MM_OK;
}

static int cmp_key(const void *a, const void *b) {
  return strcmp((*(const mm_json *const *)a)->key, (*(const mm_json *const *)b)->key);
}

/* duplicate keys among the n items of an object */
static int dup_keys(parser *p, const mm_json *kids, int64_t n) {
  if (n < 2) return MM_OK;
  const char *dup = NULL;
  if (n <= 16) {
    for (int64_t i = 0; i < n && !dup; i++)
      for (int64_t j = i + 1; j < n && !dup; j++)
        if (strcmp(kids[i].key, kids[j].key) == 0) dup = kids[i].key;
  } else {
    const mm_json **idx = malloc((size_t)n * sizeof *idx);
    if (!idx) return mm_errorf(p->e, MM_ENOMEM, "%s: out of memory", p->name);
    for (int64_t i = 0; i < n; i++) idx[i] = &kids[i];
    qsort(idx, (size_t)n, sizeof *idx, cmp_key);
    for (int64_t i = 1; i < n && !dup; i++)
      if (strcmp(idx[i - 1]->key, idx[i]->key) == 0) dup = idx[i]->key;
    free(idx);
  }
  if (dup) {
    char what[160];
    snprintf(what, sizeof what, "duplicate key \"%.100s\" in an object", dup);
    return fail(p, what);
  }
  return MM_OK;
}

static int value(parser *p, mm_json *v, int depth);

/* an array or an object at p->pos */
static int container(parser *p, mm_json *v, int depth, int obj) {
  if (depth >= MM_JSON_MAX_DEPTH) return fail(p, "nested deeper than 64 levels");
  p->pos++;
  int64_t idx = 0, cnt = 0;
  mm_json *kids = NULL;
  if (p->build) {
    idx = p->ci++;
    kids = p->pool + p->used;
    p->used += p->counts[idx];
    v->type = obj ? MM_JSON_OBJECT : MM_JSON_ARRAY;
    v->n = p->counts[idx];
    v->kids = kids;
  } else {
    if (p->ncont == p->capcont) {
      int64_t nc = p->capcont ? 2 * p->capcont : 64;
      int64_t *c = realloc(p->counts, (size_t)nc * sizeof *c);
      if (!c) return mm_errorf(p->e, MM_ENOMEM, "%s: out of memory", p->name);
      p->counts = c;
      p->capcont = nc;
    }
    idx = p->ncont++;
  }
  skip_ws(p);
  char close = obj ? '}' : ']';
  if (p->pos < p->len && p->s[p->pos] == close) {
    p->pos++;
  } else {
    for (;;) {
      mm_json *kid = kids ? kids + cnt : NULL;
      skip_ws(p);
      if (obj) {
        if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "expected a string key");
        const char *k = NULL;
        int64_t kn = 0;
        if (string(p, &k, &kn)) return p->e->code;
        if (kid) kid->key = k;
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') return fail(p, "expected ':' after a key");
        p->pos++;
      }
      if (value(p, kid, depth + 1)) return p->e->code;
      cnt++;
      skip_ws(p);
      if (p->pos >= p->len) return fail(p, obj ? "unterminated object" : "unterminated array");
      char c = p->s[p->pos++];
      if (c == close) break;
      if (c != ',') {
        p->pos--;
        return fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
      }
    }
  }
  if (!p->build) {
    p->counts[idx] = cnt;
    p->nodes += cnt;
  } else if (obj && dup_keys(p, kids, cnt)) {
    return p->e->code;
  }
  return MM_OK;
}

static int value(parser *p, mm_json *v, int depth) {
  skip_ws(p);
  if (p->pos >= p->len) return fail(p, "unexpected end of text");
  char c = p->s[p->pos];
  mm_json tmp;
  if (!v) v = &tmp;
  switch (c) {
  case '{': return container(p, v, depth, 1);
  case '[': return container(p, v, depth, 0);
  case '"': {
    const char *s = NULL;
    int64_t n = 0;
    if (string(p, &s, &n)) return p->e->code;
    v->type = MM_JSON_STRING;
    v->str = s;
    v->n = n;
    return MM_OK;
  }
  case 't':
    v->type = MM_JSON_BOOL;
    v->boolean = 1;
    return literal(p, "true");
  case 'f':
    v->type = MM_JSON_BOOL;
    v->boolean = 0;
    return literal(p, "false");
  case 'n':
    v->type = MM_JSON_NULL;
    return literal(p, "null");
  default:
    if (c == '-' || (c >= '0' && c <= '9')) {
      v->type = MM_JSON_NUMBER;
      return number(p, &v->num);
    }
    return fail(p, "unexpected character");
  }
}

static int top(parser *p, mm_json *root) {
  if (value(p, root, 0)) return p->e->code;
  skip_ws(p);
  if (p->pos != p->len) return fail(p, "text after the top value");
  return MM_OK;
}

int mm_json_parse(const char *text, size_t len, const char *name, mm_json_doc *doc, mm_err *e) {
  doc->root = NULL;
  doc->mem = NULL;
  if (!name) name = "<json>";
  mm_err local;
  if (!e) e = &local;
  if (len > MM_JSON_MAX_BYTES)
    return mm_errorf(e, MM_EFORMAT, "%s: %zu bytes of JSON (at most %zu are read)", name, len, MM_JSON_MAX_BYTES);
  parser p;
  memset(&p, 0, sizeof p);
  p.s = text;
  p.len = len;
  p.name = name;
  p.e = e;
  int rc = top(&p, NULL);
  if (rc) {
    free(p.counts);
    return rc;
  }
  /* one block: the nodes (root first), then the strings */
  int64_t nodes = p.nodes + 1;
  size_t bytes = (size_t)nodes * sizeof(mm_json) + (size_t)p.sbytes + 1;
  char *mem = calloc(1, bytes);
  if (!mem) {
    free(p.counts);
    return mm_errorf(e, MM_ENOMEM, "%s: out of memory for %lld JSON values", name, (long long)nodes);
  }
  p.build = 1;
  p.pos = 0;
  p.pool = (mm_json *)mem;
  p.used = 1;
  p.strs = mem + (size_t)nodes * sizeof(mm_json);
  rc = top(&p, p.pool);
  free(p.counts);
  if (rc) {
    free(mem);
    return rc;
  }
  doc->root = p.pool;
  doc->mem = mem;
  return MM_OK;
}

void mm_json_free(mm_json_doc *doc) {
  if (!doc) return;
  free(doc->mem);
  doc->mem = NULL;
  doc->root = NULL;
}

const mm_json *mm_json_get(const mm_json *v, const char *key) {
  if (!v || v->type != MM_JSON_OBJECT) return NULL;
  for (int64_t i = 0; i < v->n; i++)
    if (strcmp(v->kids[i].key, key) == 0) return &v->kids[i];
  return NULL;
}

const char *mm_json_type_name(int type) {
  switch (type) {
  case MM_JSON_NULL: return "null";
  case MM_JSON_BOOL: return "a boolean";
  case MM_JSON_NUMBER: return "a number";
  case MM_JSON_STRING: return "a string";
  case MM_JSON_ARRAY: return "an array";
  case MM_JSON_OBJECT: return "an object";
  default: return "?";
  }
}

int mm_json_int(const mm_json *v, int64_t lo, int64_t hi, int64_t *out) {
  if (!v || v->type != MM_JSON_NUMBER) return 0;
  double d = v->num;
  if (!(d >= (double)lo && d <= (double)hi) || d != floor(d)) return 0;
  *out = (int64_t)d;
  return 1;
}
