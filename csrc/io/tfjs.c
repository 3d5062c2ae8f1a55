/* tfjs.c - reader of TensorFlow.js layers models (see tfjs.h).
 *
 * Order of work: parse model.json (json.c); read the weights manifest
 * (names, shapes, dtypes, byte ranges per group) and check every shard's
 * path and size against it before reading any; parse the layers and their
 * inbound nodes into a name -> layer table and sort them topologically
 * (missing inbound layers and cycles are errors); then build one graph node
 * (or two: Dense + softmax) per layer in that order, decoding each layer's
 * weights from the group data when it needs them; check that no weight is
 * left over; choose the feature layer; finish the graph. */
#include "tfjs.h"

#include "../core/tensor.h"
#include "file.h"
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { Q_F32, Q_F16, Q_U8, Q_U16 };
static const int qbytes[] = {4, 2, 1, 2};

typedef struct {
  const char *name;
  int ndim, q, group, used, optimizer;
  int64_t shape[8], numel;
  double scale, min;
  uint64_t off, bytes;
} wentry;

typedef struct {
  const mm_json *paths;
  uint64_t need;
  uint8_t *data;
} wgroup;

typedef struct {
  const char *name, *cls;
  const mm_json *cfg, *inbound;
  int *in, nin, node, rank, indeg, seq, pool;
  int implicit;   /* the input of a Sequential model whose first layer declares it */
  char iname[96]; /* ... and its name ("<first layer>_input", as Keras names it) */
} layer;

typedef struct {
  const char *file;
  mm_err *e;
  wentry *w;
  int nw;
  int *byname; /* entries sorted by name */
  wgroup *g;
  int ng;
  layer *L;
  int nl;
  int *lbyname;
  mm_graph *graph;
} reader;

/* ---- messages ----------------------------------------------------------------------- */

static int rerr(reader *R, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int rerr(reader *R, int code, const char *fmt, ...) {
  char msg[MM_ERRLEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return mm_errorf(R->e, code, "%s: %s", R->file, msg);
}

static int lerr(reader *R, const layer *l, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int lerr(reader *R, const layer *l, const char *fmt, ...) {
  char msg[MM_ERRLEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return mm_errorf(R->e, MM_EFORMAT, "%s: layer '%.100s' (%.60s): %s", R->file, l->name, l->cls, msg);
}

/* a JSON value as compact text, cut at n - 1 bytes ("..." at the end) */
static void jtext(const mm_json *v, char *buf, size_t n) {
  size_t o = 0;
#define PUT(...)                                                                                                       \
  do {                                                                                                                 \
    if (o < n) o += (size_t)snprintf(buf + o, n - o, __VA_ARGS__);                                                     \
  } while (0)
  if (!v) {
    PUT("(missing)");
  } else {
    switch (v->type) {
    case MM_JSON_NULL: PUT("null"); break;
    case MM_JSON_BOOL: PUT("%s", v->boolean ? "true" : "false"); break;
    case MM_JSON_NUMBER: { /* the shortest text that reads back as the same number */
      char t[40];
      snprintf(t, sizeof t, "%.15g", v->num);
      if (strtod(t, NULL) != v->num) snprintf(t, sizeof t, "%.17g", v->num);
      PUT("%s", t);
      break;
    }
    case MM_JSON_STRING: PUT("\"%.60s\"", v->str); break;
    default: {
      int obj = v->type == MM_JSON_OBJECT;
      PUT("%c", obj ? '{' : '[');
      for (int64_t i = 0; i < v->n && o < n; i++) {
        char sub[64];
        jtext(&v->kids[i], sub, sizeof sub);
        if (obj)
          PUT("%s\"%.30s\":%s", i ? "," : "", v->kids[i].key, sub);
        else
          PUT("%s%s", i ? "," : "", sub);
      }
      PUT("%c", obj ? '}' : ']');
    }
    }
  }
#undef PUT
  if (o >= n && n > 4) memcpy(buf + n - 4, "...", 4);
}

/* ---- the weights manifest ------------------------------------------------------------ */

/* names of the manifest's weights and of the layers, for the sorted indexes */
typedef const char *(*name_fn)(const reader *R, int i);
static const char *weight_name(const reader *R, int i) { return R->w[i].name; }
static const char *layer_name(const reader *R, int i) { return R->L[i].name; }

/* sort indices idx[0..n) by name (a merge sort: qsort has no context) */
static void sort_names(int *idx, int *tmp, int n, const reader *R, name_fn nm) {
  if (n < 2) return;
  int h = n / 2;
  sort_names(idx, tmp, h, R, nm);
  sort_names(idx + h, tmp, n - h, R, nm);
  int i = 0, j = h, k = 0;
  while (i < h && j < n) tmp[k++] = strcmp(nm(R, idx[j]), nm(R, idx[i])) < 0 ? idx[j++] : idx[i++];
  while (i < h) tmp[k++] = idx[i++];
  while (j < n) tmp[k++] = idx[j++];
  memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

/* the item named `name` in sorted index idx[0..n), -1 when none */
static int find_name(const reader *R, const int *idx, int n, name_fn nm, const char *name) {
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2, c = strcmp(nm(R, idx[mid]), name);
    if (c == 0) return idx[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -1;
}

static int find_weight(const reader *R, const char *name) {
  return find_name(R, R->byname, R->nw, weight_name, name);
}

static int manifest(reader *R, const mm_json *wm) {
  if (!wm || wm->type != MM_JSON_ARRAY)
    return rerr(R, MM_EFORMAT, "weightsManifest is %s, an array of weight groups is expected",
                wm ? mm_json_type_name(wm->type) : "missing");
  int64_t nw = 0;
  for (int64_t gi = 0; gi < wm->n; gi++) {
    const mm_json *grp = &wm->kids[gi], *ws = mm_json_get(grp, "weights"), *ps = mm_json_get(grp, "paths");
    if (grp->type != MM_JSON_OBJECT || !ws || ws->type != MM_JSON_ARRAY || !ps || ps->type != MM_JSON_ARRAY)
      return rerr(R, MM_EFORMAT, "weightsManifest group %lld needs 'paths' and 'weights' arrays", (long long)gi + 1);
    if (ps->n > MM_TFJS_MAXSHARDS)
      return rerr(R, MM_EFORMAT, "weightsManifest group %lld lists %lld shards (at most %d)", (long long)gi + 1,
                  (long long)ps->n, MM_TFJS_MAXSHARDS);
    nw += ws->n;
  }
  if (nw > MM_TFJS_MAXWEIGHTS) return rerr(R, MM_EFORMAT, "%lld weights (at most %d)", (long long)nw, MM_TFJS_MAXWEIGHTS);
  R->ng = (int)wm->n;
  R->g = calloc((size_t)(R->ng > 0 ? R->ng : 1), sizeof *R->g);
  R->w = calloc((size_t)(nw > 0 ? nw : 1), sizeof *R->w);
  R->byname = malloc((size_t)(nw > 0 ? nw : 1) * sizeof *R->byname);
  if (!R->g || !R->w || !R->byname) return rerr(R, MM_ENOMEM, "out of memory");
  for (int gi = 0; gi < R->ng; gi++) {
    const mm_json *grp = &wm->kids[gi], *ws = mm_json_get(grp, "weights");
    R->g[gi].paths = mm_json_get(grp, "paths");
    uint64_t off = 0;
    for (int64_t k = 0; k < ws->n; k++) {
      const mm_json *s = &ws->kids[k], *nm = mm_json_get(s, "name"), *sh = mm_json_get(s, "shape"),
                    *dt = mm_json_get(s, "dtype"), *q = mm_json_get(s, "quantization"), *gr = mm_json_get(s, "group");
      wentry *w = &R->w[R->nw];
      if (s->type != MM_JSON_OBJECT || !nm || nm->type != MM_JSON_STRING || !sh || sh->type != MM_JSON_ARRAY)
        return rerr(R, MM_EFORMAT, "weightsManifest group %d, weight %lld: needs a 'name' and a 'shape'", gi + 1,
                    (long long)k + 1);
      w->name = nm->str;
      if (sh->n > 8) return rerr(R, MM_EFORMAT, "weight '%.100s': %lld dimensions (at most 8)", w->name, (long long)sh->n);
      w->ndim = (int)sh->n;
      w->numel = 1;
      for (int d = 0; d < w->ndim; d++) {
        int64_t v;
        if (!mm_json_int(&sh->kids[d], 0, (int64_t)1 << 31, &v))
          return rerr(R, MM_EFORMAT, "weight '%.100s': shape entry %d is not a size", w->name, d + 1);
        w->shape[d] = v;
        if (v && w->numel > MM_MAXNUMEL / v) return rerr(R, MM_EFORMAT, "weight '%.100s': shape too large", w->name);
        w->numel *= v;
      }
      if (!dt || dt->type != MM_JSON_STRING || strcmp(dt->str, "float32") != 0) {
        char t[64];
        jtext(dt, t, sizeof t);
        return rerr(R, MM_EFORMAT, "weight '%.100s' has dtype %s (float32 is supported)", w->name, t);
      }
      w->q = Q_F32;
      if (q) {
        const mm_json *qd = mm_json_get(q, "dtype"), *sc = mm_json_get(q, "scale"), *mn = mm_json_get(q, "min");
        if (q->type != MM_JSON_OBJECT || !qd || qd->type != MM_JSON_STRING)
          return rerr(R, MM_EFORMAT, "weight '%.100s': quantization needs a 'dtype'", w->name);
        for (int64_t i = 0; i < q->n; i++) {
          const char *key = q->kids[i].key;
          if (strcmp(key, "dtype") && strcmp(key, "scale") && strcmp(key, "min") && strcmp(key, "original_dtype"))
            return rerr(R, MM_EFORMAT, "weight '%.100s': quantization option '%.60s' is not supported", w->name, key);
        }
        if (strcmp(qd->str, "float16") == 0) {
          w->q = Q_F16;
        } else if (strcmp(qd->str, "uint8") == 0 || strcmp(qd->str, "uint16") == 0) {
          w->q = qd->str[4] == '8' ? Q_U8 : Q_U16;
          if (!sc || sc->type != MM_JSON_NUMBER || !mn || mn->type != MM_JSON_NUMBER)
            return rerr(R, MM_EFORMAT, "weight '%.100s': %s quantization needs numbers 'scale' and 'min'", w->name,
                        qd->str);
          w->scale = sc->num, w->min = mn->num;
        } else {
          return rerr(R, MM_EFORMAT, "weight '%.100s': quantization dtype '%.30s' is not supported (uint8, uint16, float16)",
                      w->name, qd->str);
        }
      }
      w->optimizer = gr && gr->type == MM_JSON_STRING && strcmp(gr->str, "optimizer") == 0;
      w->group = gi;
      w->bytes = (uint64_t)w->numel * (uint64_t)qbytes[w->q];
      w->off = off;
      off += w->bytes;
      R->byname[R->nw] = R->nw;
      R->nw++;
    }
    R->g[gi].need = off;
  }
  int *tmp = malloc((size_t)(R->nw > 0 ? R->nw : 1) * sizeof *tmp);
  if (!tmp) return rerr(R, MM_ENOMEM, "out of memory");
  sort_names(R->byname, tmp, R->nw, R, weight_name);
  free(tmp);
  for (int i = 1; i < R->nw; i++)
    if (strcmp(R->w[R->byname[i - 1]].name, R->w[R->byname[i]].name) == 0)
      return rerr(R, MM_EFORMAT, "weight '%.100s' is listed twice in the manifest", R->w[R->byname[i]].name);
  return MM_OK;
}

/* why path p cannot name a shard (NULL: it can) */
static const char *bad_path(const char *p) {
  if (!p[0]) return "is empty";
  if (p[0] == '/') return "is absolute";
  if (strlen(p) > 1024) return "is longer than 1024 bytes";
  for (const char *s = p; *s;) {
    const char *t = strchr(s, '/');
    size_t n = t ? (size_t)(t - s) : strlen(s);
    if (n == 2 && s[0] == '.' && s[1] == '.') return "leaves the model's folder ('..')";
    s += n + (t ? 1 : 0);
  }
  return NULL;
}

/* the group's shard paths are strings that stay in the folder */
static int check_paths(reader *R, int gi) {
  const mm_json *ps = R->g[gi].paths;
  for (int64_t k = 0; k < ps->n; k++) {
    const mm_json *p = &ps->kids[k];
    if (p->type != MM_JSON_STRING) return rerr(R, MM_EFORMAT, "weights group %d: shard path %lld is not a string", gi + 1, (long long)k + 1);
    const char *why = bad_path(p->str);
    if (why) return rerr(R, MM_EFORMAT, "weights group %d: shard path '%.200s' %s", gi + 1, p->str, why);
  }
  return MM_OK;
}

/* shard sizes against what the group's weights need */
static int check_sizes(reader *R, int gi, uint64_t have) {
  const wgroup *g = &R->g[gi];
  if (have == g->need) return MM_OK;
  const char *first = g->paths->n ? g->paths->kids[0].str : "", *last = g->paths->n ? g->paths->kids[g->paths->n - 1].str : "";
  if (have < g->need)
    return rerr(R, MM_EFORMAT, "weights group %d needs %llu bytes, its shards (%.200s .. %.200s) hold %llu: a shard is truncated",
                gi + 1, (unsigned long long)g->need, first, last, (unsigned long long)have);
  return rerr(R, MM_EFORMAT, "weights group %d needs %llu bytes, its shards (%.200s .. %.200s) hold %llu: a shard is larger than this manifest says",
              gi + 1, (unsigned long long)g->need, first, last, (unsigned long long)have);
}

static float half_to_float(uint16_t h) {
  int s = h >> 15, ex = (h >> 10) & 0x1f, m = h & 0x3ff;
  float v = ex == 0 ? ldexpf((float)m, -24) : ex == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 0x400), ex - 25);
  return s ? -v : v;
}

/* the layer's weight "<layer>/<what>" with exactly this shape, decoded into
 * *out (malloc'd); what names the weight in messages */
static int weight(reader *R, const layer *l, const char *what, int ndim, const int64_t *shape, float **out) {
  *out = NULL;
  char nm[512];
  snprintf(nm, sizeof nm, "%s/%s", l->name, what);
  int i = find_weight(R, nm);
  if (i < 0 || R->w[i].optimizer) return lerr(R, l, "weight '%.200s' is not in the weights manifest", nm);
  wentry *w = &R->w[i];
  int same = w->ndim == ndim;
  for (int d = 0; same && d < ndim; d++) same = w->shape[d] == shape[d];
  if (!same) {
    char got[128] = "", want[128] = "";
    size_t a = 0, b = 0;
    for (int d = 0; d < w->ndim && a < sizeof got; d++)
      a += (size_t)snprintf(got + a, sizeof got - a, "%s%lld", d ? "x" : "", (long long)w->shape[d]);
    for (int d = 0; d < ndim && b < sizeof want; d++)
      b += (size_t)snprintf(want + b, sizeof want - b, "%s%lld", d ? "x" : "", (long long)shape[d]);
    return lerr(R, l, "weight '%.200s' has shape %s, the layer needs %s", nm, w->ndim ? got : "(scalar)", want);
  }
  w->used++;
  float *v = malloc((size_t)(w->numel > 0 ? w->numel : 1) * sizeof(float));
  if (!v) return lerr(R, l, "out of memory for weight '%.200s'", nm);
  const uint8_t *p = R->g[w->group].data + w->off;
  for (int64_t j = 0; j < w->numel; j++) {
    switch (w->q) {
    case Q_F32: {
      uint32_t u = (uint32_t)p[4 * j] | (uint32_t)p[4 * j + 1] << 8 | (uint32_t)p[4 * j + 2] << 16 |
                   (uint32_t)p[4 * j + 3] << 24;
      memcpy(&v[j], &u, 4);
      break;
    }
    case Q_F16: v[j] = half_to_float((uint16_t)(p[2 * j] | p[2 * j + 1] << 8)); break;
    case Q_U8: v[j] = (float)((double)p[j] * w->scale + w->min); break;
    default: v[j] = (float)((double)(p[2 * j] | p[2 * j + 1] << 8) * w->scale + w->min); break;
    }
    if (!isfinite(v[j])) {
      free(v);
      return lerr(R, l, "weight '%.200s': element %lld is not finite", nm, (long long)j + 1);
    }
  }
  *out = v;
  return MM_OK;
}

/* ---- layer options -------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcmp(s + a - b, suf) == 0;
}

/* every key of the layer's config is one this reader interprets (listed in
 * `known`, NULL-terminated) or one that does not change inference */
static int check_keys(reader *R, const layer *l, const char *const *known) {
  static const char *const ignored[] = {"name", "trainable", "dtype", "batch_input_shape", "batch_shape",
                                        "batch_size", "input_dim", NULL};
  if (!l->cfg) return MM_OK;
  for (int64_t i = 0; i < l->cfg->n; i++) {
    const char *k = l->cfg->kids[i].key;
    int ok = ends_with(k, "_initializer") || ends_with(k, "_regularizer") || ends_with(k, "_constraint");
    for (int j = 0; !ok && ignored[j]; j++) ok = strcmp(k, ignored[j]) == 0;
    for (int j = 0; !ok && known[j]; j++) ok = strcmp(k, known[j]) == 0;
    if (!ok) return lerr(R, l, "option '%.60s' is not supported", k);
  }
  return MM_OK;
}

static const mm_json *opt(const layer *l, const char *key) { return mm_json_get(l->cfg, key); }

static int unsupported(reader *R, const layer *l, const char *key) {
  char t[96];
  jtext(opt(l, key), t, sizeof t);
  return lerr(R, l, "%s %s is not supported", key, t);
}

/* an int or a pair of ints (each in [lo, hi]) -> v[2]; missing: def */
static int pair(reader *R, const layer *l, const char *key, int64_t lo, int64_t hi, int64_t def, int64_t v[2]) {
  const mm_json *j = opt(l, key);
  if (!j || j->type == MM_JSON_NULL) {
    if (def < 0) return lerr(R, l, "option %s is missing", key);
    v[0] = v[1] = def;
    return MM_OK;
  }
  if (mm_json_int(j, lo, hi, &v[0])) {
    v[1] = v[0];
    return MM_OK;
  }
  if (j->type == MM_JSON_ARRAY && j->n == 2 && mm_json_int(&j->kids[0], lo, hi, &v[0]) &&
      mm_json_int(&j->kids[1], lo, hi, &v[1]))
    return MM_OK;
  return unsupported(R, l, key);
}

static int boolean(reader *R, const layer *l, const char *key, int def, int *v) {
  const mm_json *j = opt(l, key);
  if (!j) {
    *v = def;
    return MM_OK;
  }
  if (j->type != MM_JSON_BOOL) return unsupported(R, l, key);
  *v = j->boolean;
  return MM_OK;
}

/* key absent, null, or equal to the JSON text `want` */
static int only(reader *R, const layer *l, const char *key, const char *want) {
  const mm_json *j = opt(l, key);
  if (!j || j->type == MM_JSON_NULL) return MM_OK;
  char t[96];
  jtext(j, t, sizeof t);
  if (strcmp(t, want) == 0) return MM_OK;
  return lerr(R, l, "%s %s is not supported", key, t);
}

static int channels_last(reader *R, const layer *l) {
  const mm_json *j = opt(l, "data_format");
  if (!j || j->type == MM_JSON_NULL || (j->type == MM_JSON_STRING && strcmp(j->str, "channels_last") == 0))
    return MM_OK;
  return unsupported(R, l, "data_format");
}

/* "valid" / "same" -> pad */
static int padding(reader *R, const layer *l, mm_gpad *p) {
  const mm_json *j = opt(l, "padding");
  memset(p, 0, sizeof *p);
  if (!j) return MM_OK;
  if (j->type == MM_JSON_STRING && strcmp(j->str, "valid") == 0) return MM_OK;
  if (j->type == MM_JSON_STRING && strcmp(j->str, "same") == 0) {
    p->same = 1;
    return MM_OK;
  }
  return unsupported(R, l, "padding");
}

/* an activation name -> clamp, or softmax */
static int activation(reader *R, const layer *l, const char *key, int allow_softmax, float *lo, float *hi,
                      int *softmax) {
  const mm_json *j = opt(l, key);
  *lo = -INFINITY, *hi = INFINITY, *softmax = 0;
  if (!j || j->type == MM_JSON_NULL || (j->type == MM_JSON_STRING && strcmp(j->str, "linear") == 0)) return MM_OK;
  if (j->type == MM_JSON_STRING) {
    if (strcmp(j->str, "relu") == 0) {
      *lo = 0.0f;
      return MM_OK;
    }
    if (strcmp(j->str, "relu6") == 0) {
      *lo = 0.0f, *hi = 6.0f;
      return MM_OK;
    }
    if (allow_softmax && strcmp(j->str, "softmax") == 0) {
      *softmax = 1;
      return MM_OK;
    }
  }
  return unsupported(R, l, key);
}

/* the layer's single input (error when it has more) */
static int one_input(reader *R, const layer *l, int *node) {
  if (l->nin != 1) return lerr(R, l, "has %d inputs, 1 is expected", l->nin);
  *node = R->L[l->in[0]].node;
  return MM_OK;
}

static int axis_ok(const layer *l, const mm_json *j) {
  int64_t a;
  if (j && j->type == MM_JSON_ARRAY && j->n == 1) j = &j->kids[0];
  return mm_json_int(j, -8, 8, &a) && (a == -1 || a == l->rank - 1);
}

/* ---- building the layers -------------------------------------------------------------- */

static int build_layer(reader *R, layer *l) {
  mm_graph *g = R->graph;
  mm_err *e = R->e;
  const char *c = l->cls;
  int in = -1, rc = MM_OK, node = -1;
  float *w = NULL, *b = NULL, *w2 = NULL, *b2 = NULL;
  l->rank = l->nin > 0 ? R->L[l->in[0]].rank : 4;
#define CHECK(x)                                                                                                       \
  do {                                                                                                                 \
    if ((rc = (x))) goto done;                                                                                         \
  } while (0)
  if (strcmp(c, "InputLayer") == 0) {
    static const char *const k[] = {"sparse", "ragged", NULL};
    if (!l->implicit) CHECK(check_keys(R, l, k));
    CHECK(only(R, l, "sparse", "false"));
    CHECK(only(R, l, "ragged", "false"));
    const mm_json *s = opt(l, "batch_input_shape");
    if (!s) s = opt(l, "batch_shape");
    int64_t d[3] = {0, 0, 0};
    if (!s || s->type != MM_JSON_ARRAY || s->n != 4) {
      CHECK(lerr(R, l, "batch_input_shape must be [null, height, width, channels]"));
    }
    for (int i = 0; i < 3; i++) {
      const mm_json *v = &s->kids[i + 1];
      if (v->type == MM_JSON_NULL && i < 2) continue;
      if (!mm_json_int(v, 1, 1 << 20, &d[i])) CHECK(lerr(R, l, "batch_input_shape entry %d is not a size", i + 2));
    }
    const mm_json *dt = opt(l, "dtype");
    if (dt && dt->type != MM_JSON_NULL && !(dt->type == MM_JSON_STRING && strcmp(dt->str, "float32") == 0))
      CHECK(unsupported(R, l, "dtype"));
    node = mm_graph_input(g, l->name, c, d[0], d[1], d[2], e);
  } else if (strcmp(c, "Conv2D") == 0 || strcmp(c, "DepthwiseConv2D") == 0) {
    int dw = c[0] == 'D';
    static const char *const kc[] = {"filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
                                     "activation", "use_bias", "groups", NULL};
    static const char *const kd[] = {"kernel_size", "strides", "padding", "data_format", "dilation_rate",
                                     "activation", "use_bias", "depth_multiplier", NULL};
    CHECK(check_keys(R, l, dw ? kd : kc));
    CHECK(one_input(R, l, &in));
    CHECK(channels_last(R, l));
    CHECK(only(R, l, "groups", "1"));
    CHECK(only(R, l, "depth_multiplier", "1"));
    const mm_json *dil = opt(l, "dilation_rate");
    int64_t k[2], s[2], dr[2];
    CHECK(pair(R, l, "kernel_size", 1, 4096, -1, k));
    CHECK(pair(R, l, "strides", 1, 4096, 1, s));
    CHECK(pair(R, l, "dilation_rate", 1, 4096, 1, dr));
    if (dr[0] != 1 || dr[1] != 1) {
      char t[64];
      jtext(dil, t, sizeof t);
      CHECK(lerr(R, l, "dilation_rate %s is not supported", t));
    }
    mm_gpad pad;
    CHECK(padding(R, l, &pad));
    float lo, hi;
    int sm, bias;
    CHECK(activation(R, l, "activation", 0, &lo, &hi, &sm));
    CHECK(boolean(R, l, "use_bias", 1, &bias));
    if (l->rank != 4) CHECK(lerr(R, l, "its input is not an image tensor"));
    /* the input channels come from the kernel's shape */
    int64_t cin = -1, filters = 0;
    char nm[512];
    snprintf(nm, sizeof nm, "%s/%s", l->name, dw ? "depthwise_kernel" : "kernel");
    int wi = find_weight(R, nm);
    if (wi >= 0 && R->w[wi].ndim == 4) cin = R->w[wi].shape[2];
    if (!dw) {
      if (!mm_json_int(opt(l, "filters"), 1, 1 << 24, &filters)) CHECK(unsupported(R, l, "filters"));
      int64_t shape[4] = {k[0], k[1], cin, filters};
      CHECK(weight(R, l, "kernel", 4, shape, &w));
      if (bias) CHECK(weight(R, l, "bias", 1, &filters, &b));
      node = mm_graph_conv(g, l->name, c, in, k[0], k[1], cin, filters, s[0], s[1], pad, w, b, lo, hi, e);
    } else {
      int64_t shape[4] = {k[0], k[1], cin, 1};
      CHECK(weight(R, l, "depthwise_kernel", 4, shape, &w));
      if (bias) CHECK(weight(R, l, "bias", 1, &cin, &b));
      node = mm_graph_dwconv(g, l->name, c, in, k[0], k[1], cin, s[0], s[1], pad, w, b, lo, hi, e);
    }
  } else if (strcmp(c, "Dense") == 0) {
    static const char *const k[] = {"units", "activation", "use_bias", NULL};
    CHECK(check_keys(R, l, k));
    CHECK(one_input(R, l, &in));
    int64_t units, cin = -1;
    if (!mm_json_int(opt(l, "units"), 1, 1 << 24, &units)) CHECK(unsupported(R, l, "units"));
    float lo, hi;
    int sm, bias;
    CHECK(activation(R, l, "activation", 1, &lo, &hi, &sm));
    CHECK(boolean(R, l, "use_bias", 1, &bias));
    char nm[512];
    snprintf(nm, sizeof nm, "%s/kernel", l->name);
    int wi = find_weight(R, nm);
    if (wi >= 0 && R->w[wi].ndim == 2) cin = R->w[wi].shape[0];
    int64_t shape[2] = {cin, units};
    CHECK(weight(R, l, "kernel", 2, shape, &w));
    if (bias) CHECK(weight(R, l, "bias", 1, &units, &b));
    if (sm) {
      snprintf(nm, sizeof nm, "%s/linear", l->name);
      int d = mm_graph_dense(g, nm, c, in, cin, units, w, b, lo, hi, e);
      node = d < 0 ? -1 : mm_graph_softmax(g, l->name, c, d, e);
    } else {
      node = mm_graph_dense(g, l->name, c, in, cin, units, w, b, lo, hi, e);
    }
  } else if (strcmp(c, "BatchNormalization") == 0) {
    static const char *const k[] = {"axis", "epsilon", "center", "scale", "momentum", "renorm", "renorm_clipping",
                                    "renorm_momentum", "fused", "virtual_batch_size", "adjustment", "synchronized",
                                    NULL};
    CHECK(check_keys(R, l, k));
    CHECK(one_input(R, l, &in));
    CHECK(only(R, l, "renorm", "false"));
    CHECK(only(R, l, "virtual_batch_size", "null"));
    CHECK(only(R, l, "adjustment", "null"));
    CHECK(only(R, l, "synchronized", "false"));
    if (!axis_ok(l, opt(l, "axis"))) CHECK(unsupported(R, l, "axis"));
    const mm_json *ep = opt(l, "epsilon");
    double eps = 1e-3;
    if (ep && (ep->type != MM_JSON_NUMBER || !(ep->num >= 0))) CHECK(unsupported(R, l, "epsilon"));
    if (ep) eps = ep->num;
    int center, scale;
    CHECK(boolean(R, l, "center", 1, &center));
    CHECK(boolean(R, l, "scale", 1, &scale));
    int64_t ch = -1;
    char nm[512];
    snprintf(nm, sizeof nm, "%s/moving_mean", l->name);
    int wi = find_weight(R, nm);
    if (wi >= 0 && R->w[wi].ndim == 1) ch = R->w[wi].shape[0];
    float *mean = NULL, *var = NULL;
    CHECK(weight(R, l, "moving_mean", 1, &ch, &mean));
    rc = weight(R, l, "moving_variance", 1, &ch, &var);
    if (!rc && scale) rc = weight(R, l, "gamma", 1, &ch, &w2);
    if (!rc && center) rc = weight(R, l, "beta", 1, &ch, &b2);
    if (!rc) {
      w = malloc((size_t)(ch > 0 ? ch : 1) * sizeof(float));
      b = malloc((size_t)(ch > 0 ? ch : 1) * sizeof(float));
      if (!w || !b) rc = lerr(R, l, "out of memory");
    }
    /* y = (x - mean) * gamma / sqrt(var + eps) + beta = x * s + t */
    for (int64_t i = 0; !rc && i < ch; i++) {
      double v = (double)var[i] + eps;
      if (!(v > 0)) {
        rc = lerr(R, l, "moving_variance + epsilon is %g at channel %lld (must be > 0)", v, (long long)i + 1);
        break;
      }
      double s = (w2 ? (double)w2[i] : 1.0) / sqrt(v);
      w[i] = (float)s;
      b[i] = (float)((b2 ? (double)b2[i] : 0.0) - (double)mean[i] * s);
    }
    free(mean);
    free(var);
    if (rc) goto done;
    node = mm_graph_affine(g, l->name, c, in, ch, w, b, -INFINITY, INFINITY, e);
  } else if (strcmp(c, "ReLU") == 0) {
    static const char *const k[] = {"max_value", "negative_slope", "threshold", NULL};
    CHECK(check_keys(R, l, k));
    CHECK(one_input(R, l, &in));
    const mm_json *mv = opt(l, "max_value"), *ns = opt(l, "negative_slope"), *th = opt(l, "threshold");
    if (ns && !(ns->type == MM_JSON_NUMBER && ns->num == 0)) CHECK(unsupported(R, l, "negative_slope"));
    if (th && !(th->type == MM_JSON_NUMBER && th->num == 0)) CHECK(unsupported(R, l, "threshold"));
    float hi = INFINITY;
    if (mv && mv->type != MM_JSON_NULL) {
      if (mv->type != MM_JSON_NUMBER || !(mv->num >= 0) || mv->num > 3.4e38) CHECK(unsupported(R, l, "max_value"));
      hi = (float)mv->num;
    }
    node = mm_graph_clamp(g, l->name, c, in, 0.0f, hi, e);
  } else if (strcmp(c, "Activation") == 0 || strcmp(c, "Softmax") == 0) {
    int act = c[0] == 'A';
    static const char *const ka[] = {"activation", NULL}, *const ks[] = {"axis", NULL};
    CHECK(check_keys(R, l, act ? ka : ks));
    CHECK(one_input(R, l, &in));
    float lo = -INFINITY, hi = INFINITY;
    int sm = 1;
    if (act) {
      CHECK(activation(R, l, "activation", 1, &lo, &hi, &sm));
    } else if (opt(l, "axis") && !axis_ok(l, opt(l, "axis"))) {
      CHECK(unsupported(R, l, "axis"));
    }
    node = sm ? mm_graph_softmax(g, l->name, c, in, e) : mm_graph_clamp(g, l->name, c, in, lo, hi, e);
  } else if (strcmp(c, "ZeroPadding2D") == 0) {
    static const char *const k[] = {"padding", "data_format", NULL};
    CHECK(check_keys(R, l, k));
    CHECK(one_input(R, l, &in));
    CHECK(channels_last(R, l));
    const mm_json *p = opt(l, "padding");
    int64_t v[4];
    int ok = 0;
    if (mm_json_int(p, 0, 4096, &v[0])) {
      v[1] = v[2] = v[3] = v[0];
      ok = 1;
    } else if (p && p->type == MM_JSON_ARRAY && p->n == 2) {
      const mm_json *a = &p->kids[0], *bb = &p->kids[1];
      if (mm_json_int(a, 0, 4096, &v[0]) && mm_json_int(bb, 0, 4096, &v[2])) {
        v[1] = v[0], v[3] = v[2];
        ok = 1;
      } else if (a->type == MM_JSON_ARRAY && a->n == 2 && bb->type == MM_JSON_ARRAY && bb->n == 2) {
        ok = mm_json_int(&a->kids[0], 0, 4096, &v[0]) && mm_json_int(&a->kids[1], 0, 4096, &v[1]) &&
             mm_json_int(&bb->kids[0], 0, 4096, &v[2]) && mm_json_int(&bb->kids[1], 0, 4096, &v[3]);
      }
    }
    if (!ok) CHECK(unsupported(R, l, "padding"));
    node = mm_graph_pad(g, l->name, c, in, v[0], v[1], v[2], v[3], e);
  } else if (strcmp(c, "Add") == 0 || strcmp(c, "Concatenate") == 0) {
    int cat = c[0] == 'C';
    static const char *const ka[] = {NULL}, *const kc[] = {"axis", NULL};
    CHECK(check_keys(R, l, cat ? kc : ka));
    if (l->nin < 1) CHECK(lerr(R, l, "has no inputs"));
    int ins[256];
    if (l->nin > 256) CHECK(lerr(R, l, "%d inputs (at most 256 are supported)", l->nin));
    for (int i = 0; i < l->nin; i++) {
      ins[i] = R->L[l->in[i]].node;
      if (R->L[l->in[i]].rank != l->rank) CHECK(lerr(R, l, "its inputs differ in rank"));
    }
    if (cat && !axis_ok(l, opt(l, "axis") ? opt(l, "axis") : NULL) && opt(l, "axis"))
      CHECK(unsupported(R, l, "axis"));
    node = cat ? mm_graph_concat(g, l->name, c, l->nin, ins, e)
               : mm_graph_add(g, l->name, c, l->nin, ins, -INFINITY, INFINITY, e);
  } else if (strcmp(c, "MaxPooling2D") == 0 || strcmp(c, "AveragePooling2D") == 0) {
    static const char *const k[] = {"pool_size", "strides", "padding", "data_format", NULL};
    CHECK(check_keys(R, l, k));
    CHECK(one_input(R, l, &in));
    CHECK(channels_last(R, l));
    int64_t ps[2], s[2];
    CHECK(pair(R, l, "pool_size", 1, 4096, 2, ps));
    CHECK(pair(R, l, "strides", 1, 4096, 0, s));
    if (s[0] == 0) s[0] = ps[0], s[1] = ps[1]; /* strides null: the pool size */
    mm_gpad pad;
    CHECK(padding(R, l, &pad));
    if (l->rank != 4) CHECK(lerr(R, l, "its input is not an image tensor"));
    node = mm_graph_pool(g, l->name, c, in, c[0] == 'M', ps[0], ps[1], s[0], s[1], pad, e);
    l->pool = c[0] == 'A';
  } else if (strcmp(c, "GlobalAveragePooling2D") == 0) {
    static const char *const k[] = {"data_format", "keepdims", NULL};
    CHECK(check_keys(R, l, k));
    CHECK(one_input(R, l, &in));
    CHECK(channels_last(R, l));
    CHECK(only(R, l, "keepdims", "false"));
    if (l->rank != 4) CHECK(lerr(R, l, "its input is not an image tensor"));
    node = mm_graph_global_avgpool(g, l->name, c, in, e);
    l->rank = 2;
    l->pool = 2;
  } else if (strcmp(c, "Flatten") == 0) {
    static const char *const k[] = {"data_format", NULL};
    CHECK(check_keys(R, l, k));
    CHECK(one_input(R, l, &in));
    CHECK(channels_last(R, l));
    node = mm_graph_flatten(g, l->name, c, in, e);
    l->rank = 2;
  } else if (strcmp(c, "Dropout") == 0) {
    static const char *const k[] = {"rate", "noise_shape", "seed", NULL};
    CHECK(check_keys(R, l, k));
    CHECK(one_input(R, l, &in));
    node = mm_graph_identity(g, l->name, c, in, e);
  } else {
    CHECK(lerr(R, l, "layer class %.60s is not supported", c));
  }
  if (node < 0) rc = mm_err_prefix(e, "%s: ", R->file);
  l->node = node;
done:
#undef CHECK
  free(w);
  free(b);
  free(w2);
  free(b2);
  return rc;
}

/* ---- the topology --------------------------------------------------------------------- */

static int find_layer(const reader *R, const char *name) {
  return find_name(R, R->lbyname, R->nl, layer_name, name);
}

/* [name, node_index, tensor_index(, kwargs)] -> layer index */
static int ref(reader *R, const layer *l, const mm_json *t, const char *what, int *out) {
  int64_t ni, ti;
  if (!t || t->type != MM_JSON_ARRAY || t->n < 3 || t->n > 4 || t->kids[0].type != MM_JSON_STRING ||
      !mm_json_int(&t->kids[1], 0, 1 << 30, &ni) || !mm_json_int(&t->kids[2], 0, 1 << 30, &ti)) {
    if (l) return lerr(R, l, "an entry of its %s is not [name, node, tensor, kwargs]", what);
    return rerr(R, MM_EFORMAT, "an entry of %s is not [name, node, tensor]", what);
  }
  const char *nm = t->kids[0].str;
  int i = find_layer(R, nm);
  if (i < 0) {
    if (l) return lerr(R, l, "inbound layer '%.100s' is not in the model", nm);
    return rerr(R, MM_EFORMAT, "%s names layer '%.100s', which is not in the model", what, nm);
  }
  if (ni != 0 || ti != 0) {
    if (l) return lerr(R, l, "uses output %lld of call %lld of layer '%.100s' (layers called more than once are not supported)",
                       (long long)ti, (long long)ni, nm);
    return rerr(R, MM_EFORMAT, "%s uses output %lld of call %lld of layer '%.100s'", what, (long long)ti, (long long)ni, nm);
  }
  if (t->n == 4) {
    const mm_json *kw = &t->kids[3];
    if (kw->type != MM_JSON_OBJECT && kw->type != MM_JSON_NULL)
      return lerr(R, l, "the call arguments of its input '%.100s' are not an object", nm);
    if (kw->type == MM_JSON_OBJECT && kw->n > 0)
      return lerr(R, l, "call argument '%.60s' of its input '%.100s' is not supported", kw->kids[0].key, nm);
  }
  *out = i;
  return MM_OK;
}

static int topology(reader *R, const mm_json *mt, int *order, int *input, int *outputs, int *nout) {
  const mm_json *mc = mm_json_get(mt, "model_config");
  if (!mc) mc = mt;
  const mm_json *cls = mm_json_get(mc, "class_name"), *cfg = mm_json_get(mc, "config");
  if (!cls || cls->type != MM_JSON_STRING) return rerr(R, MM_EFORMAT, "modelTopology has no model class_name");
  int seq = strcmp(cls->str, "Sequential") == 0;
  if (!seq && strcmp(cls->str, "Model") != 0 && strcmp(cls->str, "Functional") != 0)
    return rerr(R, MM_EFORMAT, "model class %.60s is not supported (Model, Functional, Sequential)", cls->str);
  const mm_json *layers = cfg && cfg->type == MM_JSON_ARRAY ? cfg : mm_json_get(cfg, "layers");
  if (!layers || layers->type != MM_JSON_ARRAY || layers->n < 1)
    return rerr(R, MM_EFORMAT, "the model config has no layers");
  if (layers->n > MM_GRAPH_MAXNODES / 2)
    return rerr(R, MM_EFORMAT, "%lld layers (at most %d)", (long long)layers->n, MM_GRAPH_MAXNODES / 2);
  /* a Sequential model without an InputLayer: its first layer's batch_input_shape makes one */
  const mm_json *c0 = mm_json_get(&layers->kids[0], "class_name");
  int implicit = seq && !(c0 && c0->type == MM_JSON_STRING && strcmp(c0->str, "InputLayer") == 0);
  R->nl = (int)layers->n + implicit;
  R->L = calloc((size_t)R->nl, sizeof *R->L);
  R->lbyname = malloc((size_t)R->nl * sizeof *R->lbyname);
  int *tmp = malloc((size_t)R->nl * sizeof *tmp);
  if (!R->L || !R->lbyname || !tmp) {
    free(tmp);
    return rerr(R, MM_ENOMEM, "out of memory");
  }
  for (int i = implicit; i < R->nl; i++) {
    const mm_json *j = &layers->kids[i - implicit];
    layer *l = &R->L[i];
    const mm_json *c = mm_json_get(j, "class_name"), *lc = mm_json_get(j, "config"), *nm = mm_json_get(j, "name");
    if (!nm) nm = mm_json_get(lc, "name");
    if (!c || c->type != MM_JSON_STRING || !lc || lc->type != MM_JSON_OBJECT || !nm || nm->type != MM_JSON_STRING) {
      free(tmp);
      return rerr(R, MM_EFORMAT, "layer %d has no class_name, name or config object", i + 1);
    }
    l->name = nm->str, l->cls = c->str, l->cfg = lc, l->inbound = mm_json_get(j, "inbound_nodes"), l->seq = i;
    R->lbyname[i] = i;
  }
  if (implicit) {
    layer *l = &R->L[0], *f = &R->L[1];
    snprintf(l->iname, sizeof l->iname, "%.80s_input", f->name);
    l->name = l->iname, l->cls = "InputLayer", l->cfg = f->cfg, l->implicit = 1;
    R->lbyname[0] = 0;
    if (!mm_json_get(f->cfg, "batch_input_shape") && !mm_json_get(f->cfg, "batch_shape")) {
      free(tmp);
      return lerr(R, f, "the first layer of a Sequential model without an InputLayer must declare batch_input_shape");
    }
  }
  sort_names(R->lbyname, tmp, R->nl, R, layer_name);
  free(tmp);
  for (int i = 1; i < R->nl; i++)
    if (strcmp(R->L[R->lbyname[i - 1]].name, R->L[R->lbyname[i]].name) == 0)
      return rerr(R, MM_EFORMAT, "two layers are named '%.100s'", R->L[R->lbyname[i]].name);
  /* inputs of each layer */
  int nedges = 0;
  for (int i = 0; i < R->nl; i++) {
    layer *l = &R->L[i];
    int isin = strcmp(l->cls, "InputLayer") == 0;
    if (seq) {
      l->nin = i > 0 && !isin ? 1 : 0;
      if (i > 0 && isin) return lerr(R, l, "an InputLayer after the first layer of a Sequential model");
      l->in = malloc(sizeof(int));
      if (!l->in) return rerr(R, MM_ENOMEM, "out of memory");
      l->in[0] = i - 1;
    } else {
      const mm_json *ib = l->inbound;
      if (!ib || ib->type != MM_JSON_ARRAY) return lerr(R, l, "inbound_nodes is not a list");
      if (ib->n == 0) {
        if (!isin) return lerr(R, l, "has no inbound nodes");
      } else {
        if (isin) return lerr(R, l, "an InputLayer with inbound nodes");
        if (ib->n > 1) return lerr(R, l, "is called %lld times (shared layers are not supported)", (long long)ib->n);
        const mm_json *node = &ib->kids[0];
        if (node->type == MM_JSON_OBJECT) return lerr(R, l, "inbound_nodes in the Keras 3 form are not supported");
        if (node->type != MM_JSON_ARRAY || node->n < 1 || node->n > 256)
          return lerr(R, l, "its inbound node is not a list of 1 to 256 inputs");
        l->nin = (int)node->n;
        l->in = malloc((size_t)l->nin * sizeof(int));
        if (!l->in) return rerr(R, MM_ENOMEM, "out of memory");
        for (int k = 0; k < l->nin; k++)
          if (ref(R, l, &node->kids[k], "inbound node", &l->in[k])) return R->e->code;
      }
    }
    nedges += l->nin;
  }
  /* topological order (Kahn): layers in file order as far as the edges allow */
  int *start = calloc((size_t)R->nl + 1, sizeof *start), *adj = malloc((size_t)(nedges > 0 ? nedges : 1) * sizeof *adj);
  int *queue = order;
  if (!start || !adj) {
    free(start);
    free(adj);
    return rerr(R, MM_ENOMEM, "out of memory");
  }
  for (int i = 0; i < R->nl; i++)
    for (int k = 0; k < R->L[i].nin; k++) start[R->L[i].in[k] + 1]++;
  for (int i = 0; i < R->nl; i++) start[i + 1] += start[i];
  int *fill = calloc((size_t)(R->nl > 0 ? R->nl : 1), sizeof *fill);
  if (!fill) {
    free(start);
    free(adj);
    return rerr(R, MM_ENOMEM, "out of memory");
  }
  for (int i = 0; i < R->nl; i++) {
    R->L[i].indeg = R->L[i].nin;
    for (int k = 0; k < R->L[i].nin; k++) {
      int s = R->L[i].in[k];
      adj[start[s] + fill[s]++] = i;
    }
  }
  free(fill);
  int head = 0, tail = 0;
  for (int i = 0; i < R->nl; i++)
    if (R->L[i].indeg == 0) queue[tail++] = i;
  while (head < tail) {
    int u = queue[head++];
    for (int k = start[u]; k < start[u + 1]; k++)
      if (--R->L[adj[k]].indeg == 0) queue[tail++] = adj[k];
  }
  free(start);
  free(adj);
  if (tail < R->nl) {
    for (int i = 0; i < R->nl; i++)
      if (R->L[i].indeg > 0) return lerr(R, &R->L[i], "is part of a cycle in the layer graph");
  }
  /* inputs and outputs */
  const mm_json *ins = seq ? NULL : mm_json_get(cfg, "input_layers");
  const mm_json *outs = seq ? NULL : mm_json_get(cfg, "output_layers");
  *input = -1;
  for (int i = 0; i < R->nl; i++)
    if (strcmp(R->L[i].cls, "InputLayer") == 0) {
      if (*input >= 0) return rerr(R, MM_EFORMAT, "the model has more than one input layer ('%.100s', '%.100s'): one is supported", R->L[*input].name, R->L[i].name);
      *input = i;
    }
  if (*input < 0) return rerr(R, MM_EFORMAT, "the model has no InputLayer");
  if (seq) {
    outputs[0] = R->nl - 1;
    *nout = 1;
    return MM_OK;
  }
  if (!ins || ins->type != MM_JSON_ARRAY || ins->n != 1) return rerr(R, MM_EFORMAT, "input_layers must list exactly one input");
  int ii;
  if (ref(R, NULL, &ins->kids[0], "input_layers", &ii)) return R->e->code;
  if (ii != *input) return rerr(R, MM_EFORMAT, "input_layers names '%.100s', which is not the InputLayer", R->L[ii].name);
  if (!outs || outs->type != MM_JSON_ARRAY || outs->n < 1 || outs->n > 64)
    return rerr(R, MM_EFORMAT, "output_layers must list 1 to 64 outputs");
  *nout = (int)outs->n;
  for (int i = 0; i < *nout; i++)
    if (ref(R, NULL, &outs->kids[i], "output_layers", &outputs[i])) return R->e->code;
  return MM_OK;
}

/* ---- the model ------------------------------------------------------------------------ */

static void reader_free(reader *R) {
  for (int i = 0; i < R->ng; i++) free(R->g[i].data);
  free(R->g);
  free(R->w);
  free(R->byname);
  for (int i = 0; i < R->nl; i++) free(R->L[i].in);
  free(R->L);
  free(R->lbyname);
}

/* the document's top level: a layers model with a valid manifest and shard paths */
static int prepare(reader *R, const mm_json *root) {
  if (root->type != MM_JSON_OBJECT) return rerr(R, MM_EFORMAT, "not a JSON object");
  const mm_json *fmt = mm_json_get(root, "format");
  if (fmt && !(fmt->type == MM_JSON_STRING && strcmp(fmt->str, "layers-model") == 0)) {
    char t[64];
    jtext(fmt, t, sizeof t);
    return rerr(R, MM_EFORMAT, "format %s is not a layers model (a TensorFlow.js graph model is not supported)", t);
  }
  if (manifest(R, mm_json_get(root, "weightsManifest"))) return R->e->code;
  for (int gi = 0; gi < R->ng; gi++)
    if (check_paths(R, gi)) return R->e->code;
  return MM_OK;
}

/* everything after the group data is in place */
static int build(reader *R, const mm_json *root, const char *feature, mm_graph **out, mm_tfjs_info *info) {
  const mm_json *mt = mm_json_get(root, "modelTopology");
  if (!mt || mt->type != MM_JSON_OBJECT) return rerr(R, MM_EFORMAT, "no modelTopology object");
  int input = 0, outputs[64], nout = 0;
  /* the order array is sized by the layer count, known after parsing */
  const mm_json *mc = mm_json_get(mt, "model_config") ? mm_json_get(mt, "model_config") : mt;
  const mm_json *cfg = mm_json_get(mc, "config"), *ls = cfg && cfg->type == MM_JSON_ARRAY ? cfg : mm_json_get(cfg, "layers");
  int64_t nl = ls && ls->type == MM_JSON_ARRAY ? ls->n : 1;
  /* (one more: a Sequential model's implicit input) */
  int *order = malloc((size_t)(nl > 0 && nl <= MM_GRAPH_MAXNODES ? nl + 1 : 1) * sizeof(int));
  if (!order) return rerr(R, MM_ENOMEM, "out of memory");
  int rc = topology(R, mt, order, &input, outputs, &nout);
  if (!rc && mm_graph_new(&R->graph, R->e)) rc = R->e->code;
  for (int k = 0; !rc && k < R->nl; k++) rc = build_layer(R, &R->L[order[k]]);
  free(order);
  if (rc) return rc;
  for (int i = 0; i < R->nw; i++) {
    const wentry *w = &R->w[R->byname[i]];
    if (!w->used && !w->optimizer)
      return rerr(R, MM_EFORMAT, "weight '%.200s' in the manifest belongs to no layer", w->name);
  }
  mm_graph *g = R->graph;
  int64_t h, w, c;
  mm_graph_input_shape(g, &h, &w, &c);
  memset(info, 0, sizeof *info);
  info->h = h, info->w = w, info->c = c;
  info->input = R->L[input].node;
  info->nlayers = R->nl;
  info->head = R->L[outputs[0]].node;
  const mm_json *fmt = mm_json_get(root, "format"), *mname = mm_json_get(cfg, "name");
  if (fmt && fmt->type == MM_JSON_STRING) snprintf(info->format, sizeof info->format, "%s", fmt->str);
  if (mname && mname->type == MM_JSON_STRING) snprintf(info->model_name, sizeof info->model_name, "%s", mname->str);
  for (int i = 0; i < nout; i++)
    if (mm_graph_keep(g, R->L[outputs[i]].node, R->e)) return R->e->code;
  int chosen = -1;
  if (feature) {
    int fi = find_layer(R, feature);
    if (fi < 0) return rerr(R, MM_EINVAL, "no layer named '%.100s' (layer = ...)", feature);
    chosen = R->L[fi].node;
    if (mm_graph_keep(g, chosen, R->e)) return R->e->code;
  } else {
    /* pools are never folded away: keep every candidate, pick after */
    for (int i = 0; i < R->nl; i++)
      if (R->L[i].pool && mm_graph_keep(g, R->L[i].node, R->e)) return R->e->code;
  }
  if (mm_graph_finish(g, R->e)) return R->e->code;
  if (!feature) {
    for (int i = R->nl - 1; i >= 0 && chosen < 0; i--) /* the last GlobalAveragePooling2D */
      if (R->L[i].pool == 2) chosen = R->L[i].node;
    for (int i = R->nl - 1; i >= 0 && chosen < 0 && h > 0 && w > 0; i--) {
      int64_t s[3];
      mm_err e2;
      if (R->L[i].pool == 1 && mm_graph_shape(g, R->L[i].node, h, w, s, &e2) == MM_OK && s[0] == 1 && s[1] == 1)
        chosen = R->L[i].node;
    }
    if (chosen < 0)
      return rerr(R, MM_EINVAL, "no global average pooling layer to take features from: name one with layer = ...");
  }
  info->feature = chosen;
  *out = g;
  R->graph = NULL;
  return MM_OK;
}

int mm_tfjs_parse(const char *json, size_t len, const char *name, const mm_tfjs_shard *shards, int nshards,
                  const char *feature, mm_graph **g, mm_tfjs_info *info, mm_err *e) {
  *g = NULL;
  reader R;
  memset(&R, 0, sizeof R);
  R.file = name ? name : "model.json";
  R.e = e;
  mm_json_doc doc;
  if (mm_json_parse(json, len, R.file, &doc, e)) return e->code;
  int rc = prepare(&R, doc.root);
  for (int gi = 0; !rc && gi < R.ng; gi++) {
    wgroup *gr = &R.g[gi];
    uint64_t have = 0;
    for (int64_t k = 0; !rc && k < gr->paths->n; k++) {
      const char *p = gr->paths->kids[k].str;
      int s = -1;
      for (int i = 0; i < nshards && s < 0; i++)
        if (strcmp(shards[i].name, p) == 0) s = i;
      if (s < 0) rc = rerr(&R, MM_EIO, "shard '%.200s' (weights group %d) is missing", p, gi + 1);
      else have += shards[s].len;
    }
    if (!rc) rc = check_sizes(&R, gi, have);
    if (rc) break;
    gr->data = malloc(gr->need > 0 ? (size_t)gr->need : 1);
    if (!gr->data) {
      rc = rerr(&R, MM_ENOMEM, "out of memory for %llu bytes of weights", (unsigned long long)gr->need);
      break;
    }
    uint64_t off = 0;
    for (int64_t k = 0; k < gr->paths->n; k++)
      for (int i = 0; i < nshards; i++)
        if (strcmp(shards[i].name, gr->paths->kids[k].str) == 0) {
          if (shards[i].len) memcpy(gr->data + off, shards[i].data, shards[i].len);
          off += shards[i].len;
          break;
        }
  }
  if (!rc) rc = build(&R, doc.root, feature, g, info);
  mm_graph_free(R.graph);
  reader_free(&R);
  mm_json_free(&doc);
  return rc;
}

int mm_tfjs_load(const char *path, const char *feature, mm_graph **g, mm_tfjs_info *info, mm_err *e) {
  *g = NULL;
  uint8_t *text;
  size_t tlen;
  /* a regular file only (FIFOs, devices and folders refused unread), at most MM_JSON_MAX_BYTES */
  if (mm_file_read_all(path, MM_JSON_MAX_BYTES, &text, &tlen, NULL, e)) return e->code;
  reader R;
  memset(&R, 0, sizeof R);
  R.file = path;
  R.e = e;
  mm_json_doc doc;
  int rc = mm_json_parse((const char *)text, tlen, path, &doc, e);
  free(text);
  if (rc) return rc;
  rc = prepare(&R, doc.root);
  /* the folder of model.json */
  size_t dl = 0;
  const char *slash = strrchr(path, '/');
  if (slash) dl = (size_t)(slash - path) + 1;
  char *full = malloc(dl + 1100);
  if (!rc && !full) rc = rerr(&R, MM_ENOMEM, "out of memory");
  if (full) memcpy(full, path, dl);
  /* every shard's size first, then the reads */
  for (int gi = 0; !rc && gi < R.ng; gi++) {
    wgroup *gr = &R.g[gi];
    uint64_t have = 0;
    for (int64_t k = 0; !rc && k < gr->paths->n; k++) {
      snprintf(full + dl, 1100, "%s", gr->paths->kids[k].str);
      int kind;
      int64_t size;
      mm_err fe;
      if (mm_file_stat(full, &kind, &size, &fe))
        rc = rerr(&R, MM_EIO, "shard '%.200s': %s", gr->paths->kids[k].str, fe.msg);
      else if (kind == MM_KIND_MISSING)
        rc = rerr(&R, MM_EIO, "shard '%.200s' (weights group %d) is missing: %s", gr->paths->kids[k].str, gi + 1, full);
      else if (kind != MM_KIND_REGULAR) { /* mm_file_open refuses it from its stat, unopened, and says why */
        int fd;
        if (mm_file_open(full, 0, &fd, &size, NULL, &fe) == MM_OK) close(fd);
        rc = rerr(&R, MM_EIO, "shard '%.200s': %s", gr->paths->kids[k].str, fe.msg);
      }
      else
        have += (uint64_t)size;
    }
    if (!rc) rc = check_sizes(&R, gi, have);
  }
  for (int gi = 0; !rc && gi < R.ng; gi++) {
    wgroup *gr = &R.g[gi];
    gr->data = malloc(gr->need > 0 ? (size_t)gr->need : 1);
    if (!gr->data) {
      rc = rerr(&R, MM_ENOMEM, "out of memory for %llu bytes of weights", (unsigned long long)gr->need);
      break;
    }
    uint64_t off = 0;
    for (int64_t k = 0; !rc && k < gr->paths->n; k++) {
      snprintf(full + dl, 1100, "%s", gr->paths->kids[k].str);
      mm_err fe;
      FILE *f = mm_file_fopen(full, 0, NULL, NULL, &fe);
      if (!f) {
        rc = rerr(&R, MM_EIO, "shard '%.200s': %s", gr->paths->kids[k].str, fe.msg);
        break;
      }
      size_t room = (size_t)(gr->need - off), got = fread(gr->data + off, 1, room, f);
      int more = fgetc(f) != EOF;
      fclose(f);
      off += got;
      if (more || (k == gr->paths->n - 1 && off != gr->need))
        rc = rerr(&R, MM_EIO, "shard '%.200s' changed size while being read", gr->paths->kids[k].str);
    }
  }
  free(full);
  if (!rc) rc = build(&R, doc.root, feature, g, info);
  mm_graph_free(R.graph);
  reader_free(&R);
  mm_json_free(&doc);
  return rc;
}
