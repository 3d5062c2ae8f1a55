/* graph.c - building, folding, planning and running NHWC layer graphs (see
 * graph.h). */
#include "graph.h"

#include "../core/parallel.h"
#include "../core/tensor.h"
#include "nhwc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { OP_INPUT, OP_CONV, OP_DW, OP_DENSE, OP_AFFINE, OP_CLAMP, OP_PAD, OP_POOL, OP_GAP, OP_ADD, OP_CONCAT,
       OP_SOFTMAX, OP_FLATTEN, OP_IDENTITY };
static const char *op_names[] = {"input", "conv",   "dwconv",  "dense",   "affine",  "clamp",   "pad",
                                 "pool",  "gap",    "add",     "concat",  "softmax", "flatten", "identity"};

#define MAXIN 256         /* inputs of an add / concatenation */
#define MAXSIDE (1 << 20) /* pixels along a side of any tensor */
#define MAXCH (1 << 24)   /* channels of any tensor */

typedef struct {
  char *name, *kind;
  int op, nin, maxpool, kept, dead, nuse;
  int *in;
  int res;    /* a convolution's fused residual input, -1: none */
  int origin; /* the node whose window / weights this one runs (itself, or a folded one) */
  int64_t kh, kw, sh, sw, cin, cout;
  mm_gpad pad;
  float *w, *b, *wp;
  float lo, hi;
  int64_t ih, iw; /* the input's declared size */
} gnode;

typedef struct {
  int64_t h, w, c;
} shp;

typedef struct {
  int buf;
  int64_t choff, ps;
} store;

typedef struct {
  int64_t size, off;
  int first, last;
} gbuf;

typedef struct {
  int node, tmp, flatcopy;
  int64_t pt, pb, pl, pr; /* padding resolved for this input size */
  double macs;
} gstep;

typedef struct {
  int valid;
  int64_t n, h, w;
  int k;
  int *outs;
  shp *shape;
  store *st;
  int *need, *alias;
  gstep *steps;
  int nsteps;
  gbuf *bufs;
  int nbufs, capbufs;
  int64_t arena;
  double macs;
} gplan;

#define MAXARENAS 256 /* one per thread (parallel.c runs at most 256) */

struct mm_graph {
  gnode *nodes;
  int n, cap, input, finished;
  int64_t params;
  gplan plan; /* for one image */
  float *arena[MAXARENAS];
  int64_t arena_cap;
  int profile, group; /* group: images per pass (0: automatic) */
  double *psecs, *pmacs;
};

/* ---- building ---------------------------------------------------------------------- */

int mm_graph_new(mm_graph **out, mm_err *e) {
  *out = calloc(1, sizeof **out);
  if (!*out) return mm_errorf(e, MM_ENOMEM, "graph: out of memory");
  (*out)->input = -1;
  return MM_OK;
}

static void plan_clear(gplan *p) {
  free(p->outs);
  free(p->shape);
  free(p->st);
  free(p->need);
  free(p->alias);
  free(p->steps);
  free(p->bufs);
  memset(p, 0, sizeof *p);
}

static void node_free(gnode *n) {
  free(n->name);
  free(n->kind);
  free(n->in);
  free(n->w);
  free(n->b);
  free(n->wp);
}

void mm_graph_free(mm_graph *g) {
  if (!g) return;
  for (int i = 0; i < g->n; i++) node_free(&g->nodes[i]);
  free(g->nodes);
  plan_clear(&g->plan);
  for (int i = 0; i < MAXARENAS; i++) mm_ffree(g->arena[i]);
  free(g->psecs);
  free(g->pmacs);
  free(g);
}

static char *dupstr(const char *s) {
  size_t n = strlen(s);
  char *d = malloc(n + 1);
  if (d) memcpy(d, s, n + 1);
  return d;
}

static float *dupf(const float *src, int64_t n) {
  if (!src) return NULL;
  float *d = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  if (d) memcpy(d, src, (size_t)n * sizeof(float));
  return d;
}

/* a new node with its inputs checked; NULL with e set */
static gnode *add_node(mm_graph *g, const char *name, const char *kind, int op, int nin, const int *in, mm_err *e) {
  if (g->finished) {
    mm_errorf(e, MM_EINVAL, "graph: layer '%s' added after the graph was finished", name);
    return NULL;
  }
  if (g->n >= MM_GRAPH_MAXNODES) {
    mm_errorf(e, MM_EINVAL, "graph: more than %d layers", MM_GRAPH_MAXNODES);
    return NULL;
  }
  if (op == OP_INPUT && g->input >= 0) {
    mm_errorf(e, MM_EINVAL, "layer '%s' (%s): the graph has an input already ('%s'); one input is supported", name,
              kind, g->nodes[g->input].name);
    return NULL;
  }
  if (op != OP_INPUT && g->input < 0) {
    mm_errorf(e, MM_EINVAL, "layer '%s' (%s): the graph has no input layer yet", name, kind);
    return NULL;
  }
  if (mm_graph_find(g, name) >= 0) {
    mm_errorf(e, MM_EINVAL, "layer '%s' (%s): two layers have this name", name, kind);
    return NULL;
  }
  if (nin < 0 || nin > MAXIN) {
    mm_errorf(e, MM_EINVAL, "layer '%s' (%s): %d inputs (at most %d are supported)", name, kind, nin, MAXIN);
    return NULL;
  }
  for (int i = 0; i < nin; i++)
    if (in[i] < 0 || in[i] >= g->n) {
      mm_errorf(e, MM_EINVAL, "layer '%s' (%s): input %d is not a layer built before it", name, kind, i + 1);
      return NULL;
    }
  if (g->n == g->cap) {
    int nc = g->cap ? 2 * g->cap : 64;
    gnode *p = realloc(g->nodes, (size_t)nc * sizeof *p);
    if (!p) {
      mm_errorf(e, MM_ENOMEM, "graph: out of memory");
      return NULL;
    }
    g->nodes = p;
    g->cap = nc;
  }
  gnode *n = &g->nodes[g->n];
  memset(n, 0, sizeof *n);
  n->op = op;
  n->res = -1;
  n->origin = g->n;
  n->lo = -INFINITY;
  n->hi = INFINITY;
  n->name = dupstr(name);
  n->kind = dupstr(kind);
  n->in = malloc((size_t)(nin > 0 ? nin : 1) * sizeof(int));
  if (!n->name || !n->kind || !n->in) {
    node_free(n);
    mm_errorf(e, MM_ENOMEM, "graph: out of memory");
    return NULL;
  }
  n->nin = nin;
  for (int i = 0; i < nin; i++) n->in[i] = in[i];
  plan_clear(&g->plan);
  return n;
}

/* commit the node add_node returned (its index) */
static int commit(mm_graph *g) { return g->n++; }

static int bad_clamp(const char *name, const char *kind, float lo, float hi, mm_err *e) {
  if (isnan(lo) || isnan(hi) || lo > hi || lo == INFINITY || hi == -INFINITY)
    return mm_errorf(e, MM_EINVAL, "layer '%s' (%s): bad clamp [%g, %g]", name, kind, (double)lo, (double)hi);
  return MM_OK;
}

static int check_window(const char *name, const char *kind, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                        mm_gpad pad, mm_err *e) {
  if (kh < 1 || kw < 1 || kh > 4096 || kw > 4096 || kh * kw > MM_NHWC_MAXTAPS)
    return mm_errorf(e, MM_EINVAL, "layer '%s' (%s): window %lldx%lld is not supported (at most %d taps)", name, kind,
                     (long long)kh, (long long)kw, MM_NHWC_MAXTAPS);
  if (sh < 1 || sw < 1 || sh > 4096 || sw > 4096)
    return mm_errorf(e, MM_EINVAL, "layer '%s' (%s): strides %lldx%lld must be in 1..4096", name, kind,
                     (long long)sh, (long long)sw);
  if (!pad.same && (pad.t < 0 || pad.b < 0 || pad.l < 0 || pad.r < 0 || pad.t > 4096 || pad.b > 4096 ||
                    pad.l > 4096 || pad.r > 4096))
    return mm_errorf(e, MM_EINVAL, "layer '%s' (%s): padding must be in 0..4096", name, kind);
  return MM_OK;
}

static int check_ch(const char *name, const char *kind, const char *what, int64_t c, mm_err *e) {
  if (c < 1 || c > MAXCH)
    return mm_errorf(e, MM_EINVAL, "layer '%s' (%s): %s %lld must be in 1..%d", name, kind, what, (long long)c, MAXCH);
  return MM_OK;
}

/* finite weights; what: "kernel", "bias", ... */
static int check_finite(const char *name, const char *kind, const char *what, const float *v, int64_t n, mm_err *e) {
  if (!v) return MM_OK;
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(v[i]))
      return mm_errorf(e, MM_ENUM, "layer '%s' (%s): %s element %lld is not finite", name, kind, what,
                       (long long)i + 1);
  return MM_OK;
}

int mm_graph_input(mm_graph *g, const char *name, const char *kind, int64_t h, int64_t w, int64_t c, mm_err *e) {
  if (check_ch(name, kind, "channels", c, e)) return -1;
  if (h > MAXSIDE || w > MAXSIDE) {
    mm_errorf(e, MM_EINVAL, "layer '%s' (%s): input %lldx%lld is too large", name, kind, (long long)h, (long long)w);
    return -1;
  }
  gnode *n = add_node(g, name, kind, OP_INPUT, 0, NULL, e);
  if (!n) return -1;
  n->ih = h > 0 ? h : 0;
  n->iw = w > 0 ? w : 0;
  n->cout = c;
  g->input = g->n;
  return commit(g);
}

static int weighted(mm_graph *g, gnode *n, const float *w, int64_t nw, const float *b, int64_t nb, mm_err *e) {
  if (check_finite(n->name, n->kind, "kernel", w, nw, e) || check_finite(n->name, n->kind, "bias", b, nb, e)) {
    node_free(n);
    return -1;
  }
  n->w = dupf(w, nw);
  n->b = dupf(b, nb);
  if ((w && !n->w) || (b && !n->b)) {
    node_free(n);
    mm_errorf(e, MM_ENOMEM, "layer '%s' (%s): out of memory for %lld weights", n->name, n->kind, (long long)nw);
    return -1;
  }
  g->params += (w ? nw : 0) + (b ? nb : 0);
  return commit(g);
}

int mm_graph_conv(mm_graph *g, const char *name, const char *kind, int in, int64_t kh, int64_t kw, int64_t cin,
                  int64_t cout, int64_t sh, int64_t sw, mm_gpad pad, const float *w, const float *bias, float lo,
                  float hi, mm_err *e) {
  if (check_window(name, kind, kh, kw, sh, sw, pad, e) || check_ch(name, kind, "input channels", cin, e) ||
      check_ch(name, kind, "filters", cout, e) || bad_clamp(name, kind, lo, hi, e))
    return -1;
  if (!w) return mm_errorf(e, MM_EINVAL, "layer '%s' (%s): no kernel", name, kind), -1;
  gnode *n = add_node(g, name, kind, OP_CONV, 1, &in, e);
  if (!n) return -1;
  n->kh = kh, n->kw = kw, n->sh = sh, n->sw = sw, n->cin = cin, n->cout = cout, n->pad = pad, n->lo = lo, n->hi = hi;
  return weighted(g, n, w, kh * kw * cin * cout, bias, cout, e);
}

int mm_graph_dwconv(mm_graph *g, const char *name, const char *kind, int in, int64_t kh, int64_t kw, int64_t c,
                    int64_t sh, int64_t sw, mm_gpad pad, const float *w, const float *bias, float lo, float hi,
                    mm_err *e) {
  if (check_window(name, kind, kh, kw, sh, sw, pad, e) || check_ch(name, kind, "channels", c, e) ||
      bad_clamp(name, kind, lo, hi, e))
    return -1;
  if (!w) return mm_errorf(e, MM_EINVAL, "layer '%s' (%s): no kernel", name, kind), -1;
  gnode *n = add_node(g, name, kind, OP_DW, 1, &in, e);
  if (!n) return -1;
  n->kh = kh, n->kw = kw, n->sh = sh, n->sw = sw, n->cin = c, n->cout = c, n->pad = pad, n->lo = lo, n->hi = hi;
  return weighted(g, n, w, kh * kw * c, bias, c, e);
}

int mm_graph_dense(mm_graph *g, const char *name, const char *kind, int in, int64_t cin, int64_t units,
                   const float *w, const float *bias, float lo, float hi, mm_err *e) {
  if (check_ch(name, kind, "input features", cin, e) || check_ch(name, kind, "units", units, e) ||
      bad_clamp(name, kind, lo, hi, e))
    return -1;
  if (!w) return mm_errorf(e, MM_EINVAL, "layer '%s' (%s): no kernel", name, kind), -1;
  gnode *n = add_node(g, name, kind, OP_DENSE, 1, &in, e);
  if (!n) return -1;
  n->kh = n->kw = n->sh = n->sw = 1, n->cin = cin, n->cout = units, n->lo = lo, n->hi = hi;
  return weighted(g, n, w, cin * units, bias, units, e);
}

int mm_graph_affine(mm_graph *g, const char *name, const char *kind, int in, int64_t c, const float *scale,
                    const float *shift, float lo, float hi, mm_err *e) {
  if (check_ch(name, kind, "channels", c, e) || bad_clamp(name, kind, lo, hi, e)) return -1;
  gnode *n = add_node(g, name, kind, OP_AFFINE, 1, &in, e);
  if (!n) return -1;
  n->cin = n->cout = c, n->lo = lo, n->hi = hi;
  return weighted(g, n, scale, c, shift, c, e);
}

int mm_graph_clamp(mm_graph *g, const char *name, const char *kind, int in, float lo, float hi, mm_err *e) {
  if (bad_clamp(name, kind, lo, hi, e)) return -1;
  gnode *n = add_node(g, name, kind, OP_CLAMP, 1, &in, e);
  if (!n) return -1;
  n->lo = lo, n->hi = hi;
  return commit(g);
}

int mm_graph_pad(mm_graph *g, const char *name, const char *kind, int in, int64_t t, int64_t b, int64_t l,
                 int64_t r, mm_err *e) {
  mm_gpad p = {0, t, b, l, r};
  if (check_window(name, kind, 1, 1, 1, 1, p, e)) return -1;
  gnode *n = add_node(g, name, kind, OP_PAD, 1, &in, e);
  if (!n) return -1;
  n->pad = p;
  return commit(g);
}

int mm_graph_pool(mm_graph *g, const char *name, const char *kind, int in, int max, int64_t kh, int64_t kw,
                  int64_t sh, int64_t sw, mm_gpad pad, mm_err *e) {
  if (check_window(name, kind, kh, kw, sh, sw, pad, e)) return -1;
  if (!pad.same && (pad.t >= kh || pad.b >= kh || pad.l >= kw || pad.r >= kw)) {
    mm_errorf(e, MM_EINVAL, "layer '%s' (%s): padding must be smaller than the window", name, kind);
    return -1;
  }
  gnode *n = add_node(g, name, kind, OP_POOL, 1, &in, e);
  if (!n) return -1;
  n->maxpool = max != 0, n->kh = kh, n->kw = kw, n->sh = sh, n->sw = sw, n->pad = pad;
  return commit(g);
}

#define SIMPLE(fn, OP)                                                                                                 \
  int fn(mm_graph *g, const char *name, const char *kind, int in, mm_err *e) {                                         \
    gnode *n = add_node(g, name, kind, OP, 1, &in, e);                                                                 \
    return n ? commit(g) : -1;                                                                                         \
  }
SIMPLE(mm_graph_global_avgpool, OP_GAP)
SIMPLE(mm_graph_softmax, OP_SOFTMAX)
SIMPLE(mm_graph_flatten, OP_FLATTEN)
SIMPLE(mm_graph_identity, OP_IDENTITY)

int mm_graph_add(mm_graph *g, const char *name, const char *kind, int k, const int *in, float lo, float hi,
                 mm_err *e) {
  if (k < 1) return mm_errorf(e, MM_EINVAL, "layer '%s' (%s): no inputs", name, kind), -1;
  if (bad_clamp(name, kind, lo, hi, e)) return -1;
  gnode *n = add_node(g, name, kind, OP_ADD, k, in, e);
  if (!n) return -1;
  n->lo = lo, n->hi = hi;
  return commit(g);
}

int mm_graph_concat(mm_graph *g, const char *name, const char *kind, int k, const int *in, mm_err *e) {
  if (k < 1) return mm_errorf(e, MM_EINVAL, "layer '%s' (%s): no inputs", name, kind), -1;
  gnode *n = add_node(g, name, kind, OP_CONCAT, k, in, e);
  return n ? commit(g) : -1;
}

int mm_graph_keep(mm_graph *g, int node, mm_err *e) {
  if (node < 0 || node >= g->n) return mm_errorf(e, MM_EINVAL, "graph: no layer %d", node);
  if (g->finished && !g->nodes[node].kept)
    return mm_errorf(e, MM_EINVAL, "layer '%s' (%s): the graph is finished; outputs are chosen before",
                     g->nodes[node].name, g->nodes[node].kind);
  g->nodes[node].kept = 1;
  return MM_OK;
}

/* ---- folding ------------------------------------------------------------------------ */

static int linear(const gnode *n) { return n->lo == -INFINITY && n->hi == INFINITY; }

static void count_uses(mm_graph *g) {
  for (int i = 0; i < g->n; i++) g->nodes[i].nuse = 0;
  for (int i = 0; i < g->n; i++) {
    gnode *n = &g->nodes[i];
    if (n->dead) continue;
    for (int j = 0; j < n->nin; j++) g->nodes[n->in[j]].nuse++;
    if (n->res >= 0) g->nodes[n->res].nuse++;
  }
}

/* P is gone (folded into a later node): its computation's data is freed or
 * moved, its name and kind stay for messages */
static void kill(gnode *P) {
  char *name = P->name, *kind = P->kind;
  free(P->in);
  free(P->w);
  free(P->b);
  free(P->wp);
  memset(P, 0, sizeof *P);
  P->name = name, P->kind = kind, P->res = -1, P->dead = 1;
}

/* N takes over the computation of its input P (which disappears): N keeps
 * its name, kind, kept flag and clamp */
static void absorb(gnode *N, gnode *P) {
  gnode keep = *N;
  free(N->in);
  free(N->w);
  free(N->b);
  free(N->wp);
  *N = *P;
  N->name = keep.name, N->kind = keep.kind, N->kept = keep.kept, N->lo = keep.lo, N->hi = keep.hi;
  N->nuse = keep.nuse;
  /* (N->origin is now P's: the window and weights it runs are P's) */
  P->in = NULL, P->w = P->b = P->wp = NULL;
  kill(P);
}

static int fold_once(mm_graph *g, int i) {
  gnode *N = &g->nodes[i];
  if (N->dead || N->nin < 1) return 0;
  gnode *P = &g->nodes[N->in[0]];
  int sole = P->nuse == 1 && !P->kept;
  /* a per-channel affine map (BatchNormalization) after a linear layer */
  if (N->op == OP_AFFINE && sole && (P->op == OP_CONV || P->op == OP_DW || P->op == OP_DENSE) && linear(P) &&
      P->res < 0 && P->cout == N->cout) {
    int64_t co = P->cout, nw = P->kh * P->kw * (P->op == OP_DW ? 1 : P->cin) * co;
    float *b = P->b ? P->b : calloc((size_t)co, sizeof(float));
    if (!b) return -1;
    if (N->w)
      for (int64_t j = 0; j < nw; j++) P->w[j] = (float)((double)P->w[j] * (double)N->w[j % co]);
    for (int64_t o = 0; o < co; o++)
      b[o] = (float)((double)b[o] * (N->w ? (double)N->w[o] : 1.0) + (N->b ? (double)N->b[o] : 0.0));
    P->b = b;
    absorb(N, P);
    return 1;
  }
  /* a clamp (ReLU) after a layer that has none */
  if (N->op == OP_CLAMP && sole && linear(P) &&
      (P->op == OP_CONV || P->op == OP_DW || P->op == OP_DENSE || P->op == OP_AFFINE || P->op == OP_ADD ||
       P->op == OP_CLAMP)) {
    absorb(N, P);
    return 1;
  }
  /* a zero padding before a convolution */
  if ((N->op == OP_CONV || N->op == OP_DW) && !N->pad.same && sole && P->op == OP_PAD) {
    N->pad.t += P->pad.t, N->pad.b += P->pad.b, N->pad.l += P->pad.l, N->pad.r += P->pad.r;
    N->in[0] = P->in[0];
    kill(P);
    return 1;
  }
  /* a sum of two tensors, one of them a linear convolution's output */
  if (N->op == OP_ADD && N->nin == 2) {
    for (int side = 1; side >= 0; side--) {
      int q = N->in[side], other = N->in[1 - side];
      gnode *Q = &g->nodes[q];
      if (q == other || Q->nuse != 1 || Q->kept || !linear(Q) || Q->res >= 0 ||
          (Q->op != OP_CONV && Q->op != OP_DENSE))
        continue;
      absorb(N, Q);
      N->res = other;
      return 1;
    }
  }
  return 0;
}

int mm_graph_finish(mm_graph *g, mm_err *e) {
  if (g->finished) return MM_OK;
  if (g->input < 0) return mm_errorf(e, MM_EINVAL, "graph: no input layer");
  int changed = 1;
  while (changed) {
    changed = 0;
    count_uses(g);
    for (int i = 0; i < g->n; i++) {
      int rc = fold_once(g, i);
      if (rc < 0) return mm_errorf(e, MM_ENOMEM, "graph: out of memory while folding");
      if (rc) {
        changed = 1;
        count_uses(g);
      }
    }
  }
  for (int i = 0; i < g->n; i++) {
    gnode *n = &g->nodes[i];
    if (n->dead || (n->op != OP_CONV && n->op != OP_DENSE)) continue;
    int64_t sz = mm_conv_nhwc_packed_size(n->kh, n->kw, n->cin, n->cout);
    n->wp = mm_falloc_uninit(sz);
    if (!n->wp) return mm_errorf(e, MM_ENOMEM, "layer '%s' (%s): out of memory packing its weights", n->name, n->kind);
    mm_conv_nhwc_pack(n->w, n->kh, n->kw, n->cin, n->cout, n->wp);
    free(n->w);
    n->w = NULL;
  }
  g->finished = 1;
  plan_clear(&g->plan);
  return MM_OK;
}

/* ---- queries ------------------------------------------------------------------------ */

int mm_graph_size(const mm_graph *g) { return g->n; }

int mm_graph_find(const mm_graph *g, const char *name) {
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].name && strcmp(g->nodes[i].name, name) == 0) return i;
  return -1;
}

const char *mm_graph_name(const mm_graph *g, int node) {
  return node >= 0 && node < g->n && g->nodes[node].name ? g->nodes[node].name : "?";
}
const char *mm_graph_kind(const mm_graph *g, int node) {
  return node >= 0 && node < g->n && g->nodes[node].kind ? g->nodes[node].kind : "?";
}
int mm_graph_input_node(const mm_graph *g) { return g->input; }
void mm_graph_input_shape(const mm_graph *g, int64_t *h, int64_t *w, int64_t *c) {
  const gnode *n = g->input >= 0 ? &g->nodes[g->input] : NULL;
  *h = n ? n->ih : 0;
  *w = n ? n->iw : 0;
  *c = n ? n->cout : 0;
}
int64_t mm_graph_params(const mm_graph *g) { return g->params; }
int64_t mm_graph_arena_bytes(const mm_graph *g) { return g->plan.valid ? g->plan.arena * 4 : 0; }

/* ---- shapes ------------------------------------------------------------------------- */

/* output size and padding (before, after) of a window along one side */
static int window(int64_t in, int64_t k, int64_t s, int same, int64_t p0, int64_t p1, int64_t *out, int64_t *a,
                  int64_t *b) {
  if (same) {
    int64_t o = (in + s - 1) / s, tot = (o - 1) * s + k - in;
    if (tot < 0) tot = 0;
    *a = tot / 2, *b = tot - tot / 2, *out = o;
  } else {
    *a = p0, *b = p1;
    int64_t span = in + p0 + p1 - k;
    if (span < 0) return -1;
    *out = span / s + 1;
  }
  return 0;
}

#define ERRL(n, fmt, ...) (mm_errorf(e, MM_EINVAL, "layer '%s' (%s): " fmt, (n)->name, (n)->kind, __VA_ARGS__), -1)

/* the shape of node i from its inputs' (in p->shape); fills step padding */
static int infer(mm_graph *g, gplan *p, int i, int64_t pads[4], mm_err *e) {
  gnode *n = &g->nodes[i];
  const gnode *on = &g->nodes[n->origin]; /* named in errors about the window or the weights */
  shp *o = &p->shape[i];
  const shp *x = n->nin > 0 ? &p->shape[n->in[0]] : NULL;
  pads[0] = pads[1] = pads[2] = pads[3] = 0;
  switch (n->op) {
  case OP_INPUT:
    *o = (shp){p->h, p->w, n->cout};
    return 0;
  case OP_CONV:
  case OP_DW:
  case OP_POOL: {
    int64_t c = n->op == OP_POOL ? x->c : n->cin;
    if (x->c != c)
      return ERRL(on, "its input has %lld channels, its kernel expects %lld", (long long)x->c, (long long)c);
    int64_t oh, ow;
    int bad = window(x->h, n->kh, n->sh, n->pad.same, n->pad.t, n->pad.b, &oh, &pads[0], &pads[1]);
    bad |= window(x->w, n->kw, n->sw, n->pad.same, n->pad.l, n->pad.r, &ow, &pads[2], &pads[3]);
    if (bad)
      return ERRL(on, "its %lldx%lld input is smaller than its %lldx%lld window", (long long)(x->h + pads[0] + pads[1]),
                  (long long)(x->w + pads[2] + pads[3]), (long long)n->kh, (long long)n->kw);
    *o = (shp){oh, ow, n->op == OP_POOL ? x->c : n->cout};
    break;
  }
  case OP_DENSE:
    if (x->c != n->cin)
      return ERRL(on, "its input has %lld features, its kernel expects %lld", (long long)x->c, (long long)n->cin);
    *o = (shp){x->h, x->w, n->cout};
    break;
  case OP_AFFINE:
    if (x->c != n->cin)
      return ERRL(n, "its input has %lld channels, it has parameters for %lld", (long long)x->c, (long long)n->cin);
    *o = *x;
    break;
  case OP_PAD:
    *o = (shp){x->h + n->pad.t + n->pad.b, x->w + n->pad.l + n->pad.r, x->c};
    break;
  case OP_GAP:
    *o = (shp){1, 1, x->c};
    break;
  case OP_FLATTEN:
    if (x->h * x->w * x->c > MAXCH) return ERRL(n, "flattens to more than %d values", MAXCH);
    *o = (shp){1, 1, x->h * x->w * x->c};
    break;
  case OP_ADD:
    for (int j = 1; j < n->nin; j++) {
      const shp *y = &p->shape[n->in[j]];
      if (y->h != x->h || y->w != x->w || y->c != x->c)
        return ERRL(n, "input %d is %lldx%lldx%lld, input 1 is %lldx%lldx%lld", j + 1, (long long)y->h,
                    (long long)y->w, (long long)y->c, (long long)x->h, (long long)x->w, (long long)x->c);
    }
    *o = *x;
    break;
  case OP_CONCAT: {
    int64_t c = 0;
    for (int j = 0; j < n->nin; j++) {
      const shp *y = &p->shape[n->in[j]];
      if (y->h != x->h || y->w != x->w)
        return ERRL(n, "input %d is %lldx%lld, input 1 is %lldx%lld", j + 1, (long long)y->h, (long long)y->w,
                    (long long)x->h, (long long)x->w);
      c += y->c;
    }
    if (c > MAXCH) return ERRL(n, "more than %d channels", MAXCH);
    *o = (shp){x->h, x->w, c};
    break;
  }
  default: /* clamp, softmax, identity */
    *o = *x;
  }
  if (n->res >= 0) {
    const shp *r = &p->shape[n->res];
    if (r->h != o->h || r->w != o->w || r->c != o->c)
      return ERRL(n, "its inputs differ in shape: %lldx%lldx%lld and %lldx%lldx%lld", (long long)o->h,
                  (long long)o->w, (long long)o->c, (long long)r->h, (long long)r->w, (long long)r->c);
  }
  if (o->h > MAXSIDE || o->w > MAXSIDE || o->h * o->w * o->c > MM_MAXNUMEL / (p->n > 0 ? p->n : 1))
    return ERRL(n, "its output %lldx%lldx%lld is too large", (long long)o->h, (long long)o->w, (long long)o->c);
  return 0;
}

/* ---- planning ----------------------------------------------------------------------- */

static int new_buf(gplan *p, int64_t size) {
  if (p->nbufs == p->capbufs) {
    int nc = p->capbufs ? 2 * p->capbufs : 64;
    gbuf *b = realloc(p->bufs, (size_t)nc * sizeof *b);
    if (!b) return -1;
    p->bufs = b;
    p->capbufs = nc;
  }
  p->bufs[p->nbufs] = (gbuf){(size + 15) & ~(int64_t)15, 0, 1 << 30, -1};
  return p->nbufs++;
}

static int writer(int op) { return op != OP_INPUT && op != OP_IDENTITY && op != OP_FLATTEN; }

static void touch(gplan *p, int buf, int step) {
  if (buf < 0) return;
  gbuf *b = &p->bufs[buf];
  if (step < b->first) b->first = step;
  if (step > b->last) b->last = step;
}

/* buffer a goes before b: larger first, then by index */
static int before(const gbuf *B, int a, int b) { return B[a].size > B[b].size || (B[a].size == B[b].size && a < b); }

static int cmp_off(const void *a, const void *b) {
  int64_t x = ((const int64_t *)a)[0], y = ((const int64_t *)b)[0];
  return x < y ? -1 : x > y;
}

/* offsets in one arena: largest buffers first, each at the lowest offset
 * free during its whole life */
static int place(gplan *p) {
  int nb = p->nbufs;
  int *order = malloc((size_t)(nb > 0 ? nb : 1) * sizeof *order);
  int64_t *occ = malloc((size_t)(nb > 0 ? nb : 1) * 2 * sizeof *occ);
  char *placed = calloc((size_t)(nb > 0 ? nb : 1), 1);
  if (!order || !occ || !placed) {
    free(order);
    free(occ);
    free(placed);
    return -1;
  }
  for (int i = 0; i < nb; i++) order[i] = i;
  for (int i = 1; i < nb; i++) { /* insertion sort: plans have hundreds of buffers */
    int v = order[i], j = i - 1;
    while (j >= 0 && before(p->bufs, v, order[j])) {
      order[j + 1] = order[j];
      j--;
    }
    order[j + 1] = v;
  }
  int64_t top = 0;
  for (int oi = 0; oi < nb; oi++) {
    gbuf *b = &p->bufs[order[oi]];
    int no = 0;
    for (int j = 0; j < nb; j++) {
      const gbuf *c = &p->bufs[j];
      if (!placed[j] || c->last < b->first || b->last < c->first) continue;
      occ[2 * no] = c->off, occ[2 * no + 1] = c->off + c->size;
      no++;
    }
    qsort(occ, (size_t)no, 2 * sizeof *occ, cmp_off);
    int64_t off = 0;
    for (int j = 0; j < no; j++) {
      if (occ[2 * j] >= off + b->size) break;
      if (occ[2 * j + 1] > off) off = occ[2 * j + 1];
    }
    b->off = off;
    placed[order[oi]] = 1;
    if (off + b->size > top) top = off + b->size;
  }
  p->arena = top;
  free(order);
  free(occ);
  free(placed);
  return 0;
}

static int plan_build(mm_graph *g, int64_t n, int64_t h, int64_t w, int k, const int *outs, mm_err *e) {
  gplan *p = &g->plan;
  if (p->valid && p->n == n && p->h == h && p->w == w && p->k == k && memcmp(p->outs, outs, (size_t)k * sizeof(int)) == 0)
    return MM_OK;
  plan_clear(p);
  int N = g->n;
  p->n = n, p->h = h, p->w = w, p->k = k;
  p->outs = malloc((size_t)(k > 0 ? k : 1) * sizeof(int));
  p->shape = calloc((size_t)N, sizeof *p->shape);
  p->st = calloc((size_t)N, sizeof *p->st);
  p->need = calloc((size_t)N, sizeof *p->need);
  p->alias = calloc((size_t)N, sizeof *p->alias);
  p->steps = calloc((size_t)N, sizeof *p->steps);
  int64_t(*pads)[4] = calloc((size_t)N, sizeof *pads);
  if (!p->outs || !p->shape || !p->st || !p->need || !p->alias || !p->steps || !pads) {
    free(pads);
    plan_clear(p);
    return mm_errorf(e, MM_ENOMEM, "graph: out of memory planning");
  }
  memcpy(p->outs, outs, (size_t)k * sizeof(int));
  /* what the outputs need */
  for (int i = 0; i < k; i++) p->need[outs[i]] = 1;
  for (int i = N - 1; i >= 0; i--) {
    gnode *nd = &g->nodes[i];
    if (!p->need[i]) continue;
    for (int j = 0; j < nd->nin; j++) p->need[nd->in[j]] = 1;
    if (nd->res >= 0) p->need[nd->res] = 1;
  }
  int rc = MM_OK;
  for (int i = 0; i < N && !rc; i++)
    if (p->need[i]) rc = infer(g, p, i, pads[i], e) ? MM_EINVAL : MM_OK;
  if (rc) {
    free(pads);
    plan_clear(p);
    return rc;
  }
  for (int i = 0; i < N; i++) p->st[i].buf = -1;
  /* concatenations, last first: a branch that computes its own output
   * writes it into its slice of the concatenation (nested ones too) */
  for (int i = N - 1; i >= 0; i--) {
    gnode *nd = &g->nodes[i];
    if (!p->need[i] || nd->op != OP_CONCAT) continue;
    if (p->st[i].buf < 0) {
      int b = new_buf(p, n * p->shape[i].h * p->shape[i].w * p->shape[i].c);
      if (b < 0) rc = MM_ENOMEM;
      p->st[i] = (store){b, 0, p->shape[i].c};
    }
    int64_t off = 0;
    for (int j = 0; j < nd->nin; j++) {
      int u = nd->in[j], twice = 0;
      for (int q = 0; q < nd->nin; q++) twice |= q != j && nd->in[q] == u;
      if (writer(g->nodes[u].op) && !p->alias[u] && !twice) {
        p->st[u] = (store){p->st[i].buf, p->st[i].choff + off, p->st[i].ps};
        p->alias[u] = 1;
      }
      off += p->shape[u].c;
    }
  }
  /* everything else: its own buffer, or its source's (identity, flatten of a dense tensor) */
  int ns = 0;
  for (int i = 0; i < N && !rc; i++) {
    gnode *nd = &g->nodes[i];
    if (!p->need[i]) continue;
    int src = nd->nin > 0 ? nd->in[0] : -1;
    if (nd->op == OP_IDENTITY) {
      p->st[i] = p->st[src];
      continue;
    }
    if (nd->op == OP_FLATTEN && p->st[src].ps == p->shape[src].c) {
      p->st[i] = (store){p->st[src].buf, p->st[src].choff, p->shape[i].c};
      continue;
    }
    if (p->st[i].buf < 0) {
      int b = new_buf(p, n * p->shape[i].h * p->shape[i].w * p->shape[i].c);
      if (b < 0) rc = MM_ENOMEM;
      p->st[i] = (store){b, 0, p->shape[i].c};
    }
    gstep *s = &p->steps[ns];
    s->node = i, s->tmp = -1, s->flatcopy = nd->op == OP_FLATTEN;
    s->pt = pads[i][0], s->pb = pads[i][1], s->pl = pads[i][2], s->pr = pads[i][3];
    const shp *o = &p->shape[i], *x = src >= 0 ? &p->shape[src] : NULL;
    if ((nd->op == OP_CONV) && (s->pt || s->pb || s->pl || s->pr)) {
      s->tmp = new_buf(p, n * (x->h + s->pt + s->pb) * (x->w + s->pl + s->pr) * x->c);
      if (s->tmp < 0) rc = MM_ENOMEM;
    }
    if (nd->op == OP_CONV || nd->op == OP_DENSE || nd->op == OP_DW)
      s->macs = (double)n * (double)o->h * (double)o->w * (double)nd->cout * (double)nd->kh * (double)nd->kw *
                (nd->op == OP_DW ? 1.0 : (double)nd->cin);
    p->macs += s->macs;
    ns++;
  }
  free(pads);
  p->nsteps = ns;
  if (rc) {
    plan_clear(p);
    return mm_errorf(e, MM_ENOMEM, "graph: out of memory planning");
  }
  /* lives: written at its step, read until its last reader's; outputs to the end */
  for (int s = 0; s < ns; s++) {
    gstep *st = &p->steps[s];
    gnode *nd = &g->nodes[st->node];
    touch(p, p->st[st->node].buf, s);
    touch(p, st->tmp, s);
    for (int j = 0; j < nd->nin; j++) touch(p, p->st[nd->in[j]].buf, s);
    if (nd->res >= 0) touch(p, p->st[nd->res].buf, s);
  }
  for (int i = 0; i < k; i++) touch(p, p->st[outs[i]].buf, ns);
  if (place(p)) {
    plan_clear(p);
    return mm_errorf(e, MM_ENOMEM, "graph: out of memory planning");
  }
  if (p->arena > MM_MAXNUMEL) {
    int64_t a = p->arena;
    plan_clear(p);
    return mm_errorf(e, MM_ENOMEM, "graph: %lld images of %lldx%lld need %.1f GiB of activations", (long long)n,
                     (long long)h, (long long)w, (double)a * 4.0 / (1 << 30));
  }
  p->valid = 1;
  return MM_OK;
}

static int check_outs(mm_graph *g, int k, const int *outs, mm_err *e) {
  if (k < 1) return mm_errorf(e, MM_EINVAL, "graph: no outputs asked for");
  for (int i = 0; i < k; i++) {
    if (outs[i] < 0 || outs[i] >= g->n) return mm_errorf(e, MM_EINVAL, "graph: no layer %d", outs[i]);
    const gnode *nd = &g->nodes[outs[i]];
    if (nd->dead || !nd->kept)
      return mm_errorf(e, MM_EINVAL, "layer '%s' (%s) was not kept as an output when the graph was loaded",
                       mm_graph_name(g, outs[i]), mm_graph_kind(g, outs[i]));
  }
  return MM_OK;
}

static int check_size(int64_t n, int64_t h, int64_t w, mm_err *e) {
  if (n < 0 || h < 1 || w < 1 || h > MAXSIDE || w > MAXSIDE)
    return mm_errorf(e, MM_EINVAL, "graph: input of %lld images of %lldx%lld", (long long)n, (long long)h,
                     (long long)w);
  return MM_OK;
}

int mm_graph_shape(mm_graph *g, int node, int64_t h, int64_t w, int64_t shape[3], mm_err *e) {
  int rc = mm_graph_finish(g, e);
  if (!rc) rc = check_size(1, h, w, e);
  if (!rc) rc = check_outs(g, 1, &node, e);
  /* the current plan knows it when it computes the node for this size */
  const gplan *p = &g->plan;
  if (!rc && !(p->valid && p->h == h && p->w == w && p->need[node])) rc = plan_build(g, 1, h, w, 1, &node, e);
  if (rc) return rc;
  shape[0] = g->plan.shape[node].h, shape[1] = g->plan.shape[node].w, shape[2] = g->plan.shape[node].c;
  return MM_OK;
}

int mm_graph_cost(mm_graph *g, int64_t n, int64_t h, int64_t w, int out, double *macs, int64_t *arena_bytes,
                  mm_err *e) {
  int rc = mm_graph_finish(g, e);
  if (!rc) rc = check_size(n, h, w, e);
  if (!rc) rc = check_outs(g, 1, &out, e);
  if (!rc) rc = plan_build(g, 1, h, w, 1, &out, e);
  if (rc) return rc;
  *macs = g->plan.macs * (double)n;
  *arena_bytes = g->plan.arena * 4;
  return MM_OK;
}

/* ---- running ------------------------------------------------------------------------ */

static mm_view view_of(const mm_graph *g, float *arena, int node) {
  const gplan *p = &g->plan;
  const shp *s = &p->shape[node];
  const store *st = &p->st[node];
  float *base = arena + p->bufs[st->buf].off + st->choff;
  mm_view v = {base, p->n, s->h, s->w, s->c, st->ps, s->w * st->ps, s->h * s->w * st->ps};
  return v;
}

static void run_step(mm_graph *g, float *arena, const gstep *s, const float *x, int nchw) {
  const gplan *p = &g->plan;
  gnode *nd = &g->nodes[s->node];
  mm_view y = view_of(g, arena, s->node);
  mm_view a = nd->nin > 0 ? view_of(g, arena, nd->in[0]) : y;
  switch (nd->op) {
  case OP_INPUT:
    if (nchw) {
      mm_nhwc_from_nchw(x, &y);
    } else {
      mm_view src = mm_view_dense((float *)x, y.n, y.h, y.w, y.c);
      mm_nhwc_copy(&src, &y);
    }
    break;
  case OP_CONV:
  case OP_DENSE: {
    mm_conv_nhwc cv = {nd->cin, nd->cout, nd->kh, nd->kw, nd->sh, nd->sw, nd->wp, nd->b, nd->lo, nd->hi};
    mm_view xin = a;
    if (s->tmp >= 0) {
      xin = mm_view_dense(arena + p->bufs[s->tmp].off, a.n, a.h + s->pt + s->pb, a.w + s->pl + s->pr, a.c);
      mm_nhwc_pad(&a, s->pt, s->pl, &xin);
    }
    mm_view r;
    if (nd->res >= 0) r = view_of(g, arena, nd->res);
    mm_conv_nhwc_forward(&cv, &xin, nd->res >= 0 ? &r : NULL, &y);
    break;
  }
  case OP_DW: {
    mm_dwconv_nhwc dw = {nd->cout, nd->kh, nd->kw, nd->sh, nd->sw, s->pt, s->pl, nd->w, nd->b, nd->lo, nd->hi};
    mm_dwconv_nhwc_forward(&dw, &a, &y);
    break;
  }
  case OP_AFFINE:
    mm_nhwc_affine(&a, nd->w, nd->b, nd->lo, nd->hi, &y);
    break;
  case OP_CLAMP:
    mm_nhwc_affine(&a, NULL, NULL, nd->lo, nd->hi, &y);
    break;
  case OP_PAD:
    mm_nhwc_pad(&a, nd->pad.t, nd->pad.l, &y);
    break;
  case OP_POOL:
    if (nd->maxpool)
      mm_nhwc_maxpool(&a, nd->kh, nd->kw, nd->sh, nd->sw, s->pt, s->pl, &y);
    else
      mm_nhwc_avgpool(&a, nd->kh, nd->kw, nd->sh, nd->sw, s->pt, s->pl, &y);
    break;
  case OP_GAP:
    mm_nhwc_global_avgpool(&a, &y);
    break;
  case OP_ADD: {
    mm_view xs[MAXIN];
    for (int j = 0; j < nd->nin; j++) xs[j] = view_of(g, arena, nd->in[j]);
    mm_nhwc_add(nd->nin, xs, nd->lo, nd->hi, &y);
    break;
  }
  case OP_CONCAT: {
    int64_t off = 0;
    for (int j = 0; j < nd->nin; j++) {
      int u = nd->in[j];
      mm_view src = view_of(g, arena, u);
      mm_view dst = y;
      dst.p += off, dst.c = src.c;
      if (src.p != dst.p) mm_nhwc_copy(&src, &dst);
      off += src.c;
    }
    break;
  }
  case OP_SOFTMAX:
    mm_nhwc_softmax(&a, &y);
    break;
  case OP_FLATTEN: { /* the copy of a slice into a dense buffer of the input's shape */
    mm_view dst = mm_view_dense(y.p, a.n, a.h, a.w, a.c);
    mm_nhwc_copy(&a, &dst);
    break;
  }
  default:
    break;
  }
}

/* the calling thread's CPU time: a step's own cost on a machine shared with
 * other work (with several threads: the caller's share) */
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
  mm_graph *g;
  const float *x;
  int nchw, k;
  const int *outs;
  float *const *ys;
  int64_t inper, per[MAXIN];
} fjob;

/* images [b, b + plan.n) through every step in arena, their outputs to the
 * ys; prof: time the steps */
static void run_image(const fjob *j, float *arena, int64_t b, int prof) {
  mm_graph *g = j->g;
  const gplan *p = &g->plan;
  for (int s = 0; s < p->nsteps; s++) {
    double t0 = prof ? now() : 0.0;
    run_step(g, arena, &p->steps[s], j->x + b * j->inper, j->nchw);
    if (prof) {
      g->psecs[p->steps[s].node] += now() - t0;
      g->pmacs[p->steps[s].node] += p->steps[s].macs;
    }
  }
  for (int i = 0; i < j->k; i++) {
    mm_view src = view_of(g, arena, j->outs[i]);
    mm_view dst = mm_view_dense(j->ys[i] + b * j->per[i], src.n, src.h, src.w, src.c);
    mm_nhwc_copy(&src, &dst);
  }
}

/* groups [g0, g1) on one thread, in its own arena (the steps inside run serially) */
static void run_images(void *ctx, int64_t g0, int64_t g1, int tid) {
  const fjob *j = ctx;
  for (int64_t q = g0; q < g1; q++) run_image(j, j->g->arena[tid], q * j->g->plan.n, j->g->profile && tid == 0);
}

/* Images run one at a time, each through the whole graph (its activations
 * stay in cache, which a layer-by-layer pass over a batch does not). With
 * several threads, each takes whole images in its own arena; the images left
 * after an even split run one by one with the threads inside each step. */
int mm_graph_forward(mm_graph *g, const float *x, int nchw, int64_t n, int64_t h, int64_t w, int k, const int *outs,
                     float *const *ys, mm_err *e) {
  int rc = mm_graph_finish(g, e);
  if (!rc) rc = check_size(n, h, w, e);
  if (!rc) rc = check_outs(g, k, outs, e);
  if (rc) return rc;
  if (k > MAXIN) return mm_errorf(e, MM_EINVAL, "graph: %d outputs (at most %d)", k, MAXIN);
  if (n == 0) return MM_OK;
  int64_t G = g->group > 0 ? g->group : 1;
  if (G > n) G = n;
  if ((rc = plan_build(g, G, h, w, k, outs, e))) return rc;
  gplan *p = &g->plan;
  int64_t ng = n / G; /* whole groups; the images after them run one group of n % G */
  int nt = mm_parallel_threads(ng);
  if (nt > MAXARENAS) nt = MAXARENAS;
  if (p->arena > g->arena_cap) {
    for (int i = 0; i < MAXARENAS; i++) {
      mm_ffree(g->arena[i]);
      g->arena[i] = NULL;
    }
    g->arena_cap = p->arena;
  }
  for (int i = 0; i < nt; i++) {
    if (!g->arena[i]) g->arena[i] = mm_falloc_uninit(g->arena_cap);
    if (!g->arena[i])
      return mm_errorf(e, MM_ENOMEM, "graph: out of memory for %.1f MiB of activations",
                       (double)g->arena_cap * 4.0 / (1 << 20));
  }
  if (g->profile && !g->psecs) {
    g->psecs = calloc((size_t)g->n, sizeof(double));
    g->pmacs = calloc((size_t)g->n, sizeof(double));
    if (!g->psecs || !g->pmacs) g->profile = 0;
  }
  fjob j = {g, x, nchw, k, outs, ys, h * w * p->shape[g->input].c, {0}};
  for (int i = 0; i < k; i++) j.per[i] = p->shape[outs[i]].h * p->shape[outs[i]].w * p->shape[outs[i]].c;
  int64_t split = nt > 1 ? ng / nt * nt : 0;
  if (split > 0) mm_parallel_for(split, run_images, &j);
  for (int64_t q = split; q < ng; q++) run_image(&j, g->arena[0], q * G, g->profile);
  if (n % G) {
    if ((rc = plan_build(g, n % G, h, w, k, outs, e))) return rc;
    run_image(&j, g->arena[0], ng * G, g->profile);
  }
  return MM_OK;
}

void mm_graph_set_group(mm_graph *g, int64_t images) { g->group = images > 0 ? images : 0; }

void mm_graph_profile(mm_graph *g, int on) {
  g->profile = on != 0;
  if (g->psecs) memset(g->psecs, 0, (size_t)g->n * sizeof(double));
  if (g->pmacs) memset(g->pmacs, 0, (size_t)g->n * sizeof(double));
}

void mm_graph_profile_get(const mm_graph *g, int node, double *secs, double *macs, const char **op, int *kh,
                          int *kw) {
  int ok = node >= 0 && node < g->n;
  const gnode *n = ok ? &g->nodes[node] : NULL;
  *secs = g->psecs && ok ? g->psecs[node] : 0.0;
  *macs = g->pmacs && ok ? g->pmacs[node] : 0.0;
  *op = ok && !n->dead ? op_names[n->op] : "";
  int win = ok && !n->dead && (n->op == OP_CONV || n->op == OP_DW || n->op == OP_POOL);
  *kh = win ? (int)n->kh : 0;
  *kw = win ? (int)n->kw : 0;
}
