/* backbone.c - resnet18 and mobilenet_v2 forward passes (torchvision layout).
 *
 * A backbone is a list of conv+batchnorm(+activation) units over one float
 * block of parameters. The forward runs on the NHWC layer graph of
 * csrc/nn/graph.h: the graph is built from the parameters (convolution
 * weights turned to [kh, kw, cin, cout], BatchNorm as a per-channel affine
 * map that the graph folds into the convolution) the first time it is needed
 * after a parameter was handed out for writing, and keeps its activation
 * arena from one call to the next.
 */
#include "backbone.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/tensor.h"
#include "../nn/graph.h"
#include "../core/tensor_ops.h"
#include "../nn/nn.h"

enum { ACT_NONE = 0, ACT_RELU = 1, ACT_RELU6 = 2 };
enum { ARCH_RESNET18 = 1, ARCH_MOBILENET_V2 = 2 };

typedef struct {
  char name[64];
  int ndim;
  int64_t shape[4];
  int64_t off, numel;
} param;

typedef struct {
  int w, g, bt, m, v; /* param indices: conv weight, bn weight/bias/mean/var */
  int64_t in, out, k, stride, pad, groups;
  int act;
} convbn;

typedef struct {
  convbn c1, c2, down; /* resnet: conv1/conv2/downsample; mobilenet: expand/dw/project */
  int has_down;        /* resnet: downsample; mobilenet: has an expand conv */
  int use_res;         /* mobilenet: residual connection */
} block;

struct mm_backbone {
  int arch;
  int64_t dim;
  param *params;
  int np, cap;
  float *data;
  int64_t total;
  convbn stem, last; /* last: mobilenet features.18 */
  block blocks[20];
  int nblocks;
  /* the forward's graph (a cache: rebuilt when dirty) and its output node */
  mm_graph *g;
  int gout, dirty;
};

/* ---- construction ------------------------------------------------------------------ */

static int add_param(mm_backbone *b, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  if (b->np == b->cap) {
    int nc = b->cap ? b->cap * 2 : 64;
    param *p = realloc(b->params, (size_t)nc * sizeof *p);
    if (!p) return -1;
    b->params = p;
    b->cap = nc;
  }
  param *p = &b->params[b->np];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->ndim = ndim;
  int64_t d[4] = {d0, d1, d2, d3};
  p->numel = 1;
  for (int i = 0; i < ndim; i++) {
    p->shape[i] = d[i];
    p->numel *= d[i];
  }
  p->off = b->total;
  b->total += (p->numel + 15) & ~(int64_t)15; /* keep each parameter 64-byte aligned */
  return b->np++;
}

static int add_convbn(mm_backbone *b, convbn *cv, const char *conv, const char *bn, int64_t in, int64_t out,
                      int64_t k, int64_t stride, int64_t pad, int64_t groups, int act) {
  char nm[64];
  cv->in = in;
  cv->out = out;
  cv->k = k;
  cv->stride = stride;
  cv->pad = pad;
  cv->groups = groups;
  cv->act = act;
  snprintf(nm, sizeof nm, "%s.weight", conv);
  cv->w = add_param(b, nm, 4, out, in / groups, k, k);
  snprintf(nm, sizeof nm, "%s.weight", bn);
  cv->g = add_param(b, nm, 1, out, 0, 0, 0);
  snprintf(nm, sizeof nm, "%s.bias", bn);
  cv->bt = add_param(b, nm, 1, out, 0, 0, 0);
  snprintf(nm, sizeof nm, "%s.running_mean", bn);
  cv->m = add_param(b, nm, 1, out, 0, 0, 0);
  snprintf(nm, sizeof nm, "%s.running_var", bn);
  cv->v = add_param(b, nm, 1, out, 0, 0, 0);
  return (cv->w < 0 || cv->g < 0 || cv->bt < 0 || cv->m < 0 || cv->v < 0) ? -1 : 0;
}

static int build_resnet18(mm_backbone *b) {
  int bad = add_convbn(b, &b->stem, "conv1", "bn1", 3, 64, 7, 2, 3, 1, ACT_RELU);
  int64_t inplanes = 64;
  char p1[64], p2[64];
  for (int L = 1; L <= 4; L++) {
    int64_t planes = (int64_t)64 << (L - 1);
    for (int bi = 0; bi < 2; bi++) {
      block *bl = &b->blocks[b->nblocks++];
      int64_t stride = (L > 1 && bi == 0) ? 2 : 1;
      snprintf(p1, sizeof p1, "layer%d.%d.conv1", L, bi);
      snprintf(p2, sizeof p2, "layer%d.%d.bn1", L, bi);
      bad |= add_convbn(b, &bl->c1, p1, p2, inplanes, planes, 3, stride, 1, 1, ACT_RELU);
      snprintf(p1, sizeof p1, "layer%d.%d.conv2", L, bi);
      snprintf(p2, sizeof p2, "layer%d.%d.bn2", L, bi);
      bad |= add_convbn(b, &bl->c2, p1, p2, planes, planes, 3, 1, 1, 1, ACT_NONE);
      bl->has_down = stride != 1 || inplanes != planes;
      if (bl->has_down) {
        snprintf(p1, sizeof p1, "layer%d.%d.downsample.0", L, bi);
        snprintf(p2, sizeof p2, "layer%d.%d.downsample.1", L, bi);
        bad |= add_convbn(b, &bl->down, p1, p2, inplanes, planes, 1, stride, 0, 1, ACT_NONE);
      }
      inplanes = planes;
    }
  }
  b->dim = 512;
  return bad;
}

static int build_mobilenet_v2(mm_backbone *b) {
  static const int set[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  int bad = add_convbn(b, &b->stem, "features.0.0", "features.0.1", 3, 32, 3, 2, 1, 1, ACT_RELU6);
  int64_t inp = 32;
  int idx = 1;
  char p1[64], p2[64];
  for (int s = 0; s < 7; s++) {
    int64_t t = set[s][0], out = set[s][1];
    for (int i = 0; i < set[s][2]; i++, idx++) {
      block *bl = &b->blocks[b->nblocks++];
      int64_t stride = i == 0 ? set[s][3] : 1;
      int64_t hidden = inp * t;
      int li = 0;
      bl->has_down = t != 1;
      if (bl->has_down) {
        snprintf(p1, sizeof p1, "features.%d.conv.0.0", idx);
        snprintf(p2, sizeof p2, "features.%d.conv.0.1", idx);
        bad |= add_convbn(b, &bl->down, p1, p2, inp, hidden, 1, 1, 0, 1, ACT_RELU6);
        li = 1;
      }
      snprintf(p1, sizeof p1, "features.%d.conv.%d.0", idx, li);
      snprintf(p2, sizeof p2, "features.%d.conv.%d.1", idx, li);
      bad |= add_convbn(b, &bl->c1, p1, p2, hidden, hidden, 3, stride, 1, hidden, ACT_RELU6);
      snprintf(p1, sizeof p1, "features.%d.conv.%d", idx, li + 1);
      snprintf(p2, sizeof p2, "features.%d.conv.%d", idx, li + 2);
      bad |= add_convbn(b, &bl->c2, p1, p2, hidden, out, 1, 1, 0, 1, ACT_NONE);
      bl->use_res = stride == 1 && inp == out;
      inp = out;
    }
  }
  bad |= add_convbn(b, &b->last, "features.18.0", "features.18.1", 320, 1280, 1, 1, 0, 1, ACT_RELU6);
  b->dim = 1280;
  return bad;
}

int mm_backbone_new(const char *arch, mm_backbone **out, mm_err *e) {
  *out = NULL;
  mm_backbone *b = calloc(1, sizeof *b);
  if (!b) return mm_errorf(e, MM_ENOMEM, "backbone: out of memory");
  int bad;
  if (strcmp(arch, "resnet18") == 0) {
    b->arch = ARCH_RESNET18;
    bad = build_resnet18(b);
  } else if (strcmp(arch, "mobilenet_v2") == 0) {
    b->arch = ARCH_MOBILENET_V2;
    bad = build_mobilenet_v2(b);
  } else {
    free(b);
    return mm_errorf(e, MM_EINVAL, "backbone: unknown architecture '%s' (resnet18 or mobilenet_v2)", arch);
  }
  if (!bad) b->data = mm_falloc(b->total);
  if (bad || !b->data) {
    mm_backbone_free(b);
    return mm_errorf(e, MM_ENOMEM, "backbone: out of memory for %s", arch);
  }
  /* torch's initial BN state: weight 1, bias 0, running mean 0, running var 1 */
  for (int i = 0; i < b->np; i++) {
    size_t L = strlen(b->params[i].name);
    const char *n = b->params[i].name;
    int ones = (L > 12 && strcmp(n + L - 12, ".running_var") == 0);
    if (!ones && L > 7 && strcmp(n + L - 7, ".weight") == 0 && b->params[i].ndim == 1) ones = 1;
    if (ones)
      for (int64_t j = 0; j < b->params[i].numel; j++) b->data[b->params[i].off + j] = 1.0f;
  }
  b->dirty = 1;
  *out = b;
  return MM_OK;
}

void mm_backbone_free(mm_backbone *b) {
  if (!b) return;
  mm_graph_free(b->g);
  mm_ffree(b->data);
  free(b->params);
  free(b);
}

const char *mm_backbone_arch(const mm_backbone *b) { return b->arch == ARCH_RESNET18 ? "resnet18" : "mobilenet_v2"; }
int64_t mm_backbone_dim(const mm_backbone *b) { return b->dim; }
int mm_backbone_nparams(const mm_backbone *b) { return b->np; }
const char *mm_backbone_param_name(const mm_backbone *b, int i) { return b->params[i].name; }
int64_t mm_backbone_param_numel(const mm_backbone *b, int i) { return b->params[i].numel; }
float *mm_backbone_param_data(mm_backbone *b, int i) {
  b->dirty = 1; /* the caller may write: the graph is rebuilt before the next forward */
  return b->data + b->params[i].off;
}
const float *mm_backbone_param_peek(const mm_backbone *b, int i) { return b->data + b->params[i].off; }

/* MM_ENUM naming parameter i and the element when x[0..numel) is not all finite */
static int check_finite(const mm_backbone *b, int i, const float *x, mm_err *e) {
  int64_t bad = mm_find_nonfinite(x, b->params[i].numel);
  if (bad < 0) return MM_OK;
  return mm_errorf(e, MM_ENUM, "%s: parameter '%s' contains %s at element %lld", mm_backbone_arch(b),
                   b->params[i].name, isnan(x[bad]) ? "NaN" : "Inf", (long long)bad + 1);
}

int mm_backbone_set(mm_backbone *b, int i, const float *src, mm_err *e) {
  if (check_finite(b, i, src, e)) return MM_ENUM;
  memcpy(b->data + b->params[i].off, src, (size_t)b->params[i].numel * sizeof(float));
  b->dirty = 1; /* the graph is rebuilt from the parameters before the next forward */
  return MM_OK;
}

int mm_backbone_set_raw(mm_backbone *b, int i, const void *data, size_t len, int64_t off, mm_err *e) {
  int64_t n = b->params[i].numel;
  if (off < 0 || (uint64_t)off > len || (uint64_t)(len - (size_t)off) < (uint64_t)n * 4)
    return mm_errorf(e, MM_EINVAL, "%s: parameter '%s' needs %lld bytes at offset %lld, the data has %zu",
                     mm_backbone_arch(b), b->params[i].name, (long long)n * 4, (long long)off, len);
  float *p = b->data + b->params[i].off;
  memcpy(p, (const char *)data + off, (size_t)n * 4); /* the bytes may be unaligned */
  b->dirty = 1;
  return check_finite(b, i, p, e);
}

int mm_backbone_param_shape(const mm_backbone *b, int i, int64_t *shape) {
  for (int d = 0; d < b->params[i].ndim; d++) shape[d] = b->params[i].shape[d];
  return b->params[i].ndim;
}

int mm_backbone_find(const mm_backbone *b, const char *name) {
  for (int i = 0; i < b->np; i++)
    if (strcmp(b->params[i].name, name) == 0) return i;
  return -1;
}

int64_t mm_backbone_total_params(const mm_backbone *b) {
  int64_t n = 0;
  for (int i = 0; i < b->np; i++) n += b->params[i].numel;
  return n;
}

/* ---- forward ------------------------------------------------------------------------ */

static const float *P(const mm_backbone *b, int i) { return b->data + b->params[i].off; }

/* conv + batchnorm (+ activation) of unit cv on node in -> its node; name: the conv's
 * parameter prefix ("layer1.0.conv1") */
static int unit(const mm_backbone *b, mm_graph *g, const convbn *cv, int in, mm_err *e) {
  const char *wn = b->params[cv->w].name;
  char name[64], bn[64];
  size_t L = strlen(wn) - strlen(".weight");
  snprintf(name, sizeof name, "%.*s", (int)L, wn);
  L = strlen(b->params[cv->g].name) - strlen(".weight");
  snprintf(bn, sizeof bn, "%.*s", (int)L, b->params[cv->g].name);
  int64_t k = cv->k, ci = cv->in, co = cv->out, dw = cv->groups > 1;
  const float *W = P(b, cv->w);
  float *t = malloc((size_t)(k * k * (dw ? co : ci * co)) * sizeof(float));
  double *sc = malloc((size_t)co * sizeof(double));
  float *scale = malloc((size_t)co * sizeof(float)), *shift = malloc((size_t)co * sizeof(float));
  int node = -1;
  if (!t || !sc || !scale || !shift) {
    mm_errorf(e, MM_ENOMEM, "%s: out of memory building the graph", mm_backbone_arch(b));
  } else {
    /* torch [out, in/groups, k, k] -> [k, k, in, out] (depthwise: [k, k, c]) */
    for (int64_t o = 0; o < co; o++)
      for (int64_t c = 0; c < (dw ? 1 : ci); c++)
        for (int64_t y = 0; y < k; y++)
          for (int64_t x = 0; x < k; x++)
            t[dw ? (y * k + x) * co + o : ((y * k + x) * ci + c) * co + o] = W[((o * (dw ? 1 : ci) + c) * k + y) * k + x];
    /* eval-mode BatchNorm (eps 1e-5) as y = x * scale + shift */
    const float *gm = P(b, cv->g), *bt = P(b, cv->bt), *mu = P(b, cv->m), *var = P(b, cv->v);
    for (int64_t o = 0; o < co; o++) {
      sc[o] = (double)gm[o] / sqrt((double)var[o] + 1e-5);
      scale[o] = (float)sc[o];
      shift[o] = (float)((double)bt[o] - (double)mu[o] * sc[o]);
    }
    mm_gpad pad = {0, cv->pad, cv->pad, cv->pad, cv->pad};
    node = dw ? mm_graph_dwconv(g, name, "conv", in, k, k, co, cv->stride, cv->stride, pad, t, NULL, -INFINITY,
                                INFINITY, e)
              : mm_graph_conv(g, name, "conv", in, k, k, ci, co, cv->stride, cv->stride, pad, t, NULL, -INFINITY,
                              INFINITY, e);
    float lo = cv->act == ACT_NONE ? -INFINITY : 0.0f, hi = cv->act == ACT_RELU6 ? 6.0f : INFINITY;
    if (node >= 0) node = mm_graph_affine(g, bn, "batchnorm", node, co, scale, shift, lo, hi, e);
  }
  free(t);
  free(sc);
  free(scale);
  free(shift);
  return node;
}

static int build_graph(mm_backbone *b, mm_err *e) {
  mm_graph_free(b->g);
  b->g = NULL;
  mm_graph *g;
  if (mm_graph_new(&g, e)) return e->code;
  int x = mm_graph_input(g, "input", "input", 0, 0, 3, e);
  if (x >= 0) x = unit(b, g, &b->stem, x, e);
  if (b->arch == ARCH_RESNET18) {
    mm_gpad p1 = {0, 1, 1, 1, 1};
    if (x >= 0) x = mm_graph_pool(g, "maxpool", "maxpool", x, 1, 3, 3, 2, 2, p1, e);
    for (int i = 0; x >= 0 && i < b->nblocks; i++) {
      const block *bl = &b->blocks[i];
      int a = unit(b, g, &bl->c1, x, e), c = a >= 0 ? unit(b, g, &bl->c2, a, e) : -1;
      int idn = bl->has_down && c >= 0 ? unit(b, g, &bl->down, x, e) : x;
      char nm[32];
      snprintf(nm, sizeof nm, "layer%d.%d", i / 2 + 1, i % 2);
      int in2[2] = {c, idn};
      x = c >= 0 && idn >= 0 ? mm_graph_add(g, nm, "add", 2, in2, 0.0f, INFINITY, e) : -1;
    }
  } else {
    for (int i = 0; x >= 0 && i < b->nblocks; i++) {
      const block *bl = &b->blocks[i];
      int h = bl->has_down ? unit(b, g, &bl->down, x, e) : x;
      int d = h >= 0 ? unit(b, g, &bl->c1, h, e) : -1, p = d >= 0 ? unit(b, g, &bl->c2, d, e) : -1;
      if (p >= 0 && bl->use_res) {
        char nm[32];
        snprintf(nm, sizeof nm, "features.%d", i + 1);
        int in2[2] = {p, x};
        p = mm_graph_add(g, nm, "add", 2, in2, -INFINITY, INFINITY, e);
      }
      x = p;
    }
    if (x >= 0) x = unit(b, g, &b->last, x, e);
  }
  if (x >= 0) x = mm_graph_global_avgpool(g, "avgpool", "avgpool", x, e);
  if (x < 0 || mm_graph_keep(g, x, e) || mm_graph_finish(g, e)) {
    mm_graph_free(g);
    return e->code;
  }
  b->g = g;
  b->gout = x;
  b->dirty = 0;
  return MM_OK;
}

int mm_backbone_forward(const mm_backbone *cb, const float *x, int64_t n, int64_t h, int64_t w, float *y, mm_err *e) {
  if (n < 0 || h < 16 || w < 16 || h > 4096 || w > 4096)
    return mm_errorf(e, MM_EINVAL, "%s: input %lldx3x%lldx%lld: height and width must be in 16..4096",
                     mm_backbone_arch(cb), (long long)n, (long long)h, (long long)w);
  mm_backbone *b = (mm_backbone *)cb; /* the graph is a cache of the parameters */
  if ((b->dirty || !b->g) && build_graph(b, e)) return e->code;
  return mm_graph_forward(b->g, x, 1, n, h, w, 1, &b->gout, &y, e);
}

mm_graph *mm_backbone_graph(mm_backbone *b) { return b->g; }
