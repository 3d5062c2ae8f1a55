/* l_image.c - Lua binding for the image area: core.image.{load, decode, info,
 * normalize, augment, histogram, batch}. Tensors are float CHW (or NCHW). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "../image/backbone.h"
#include "../image/image.h"
#include "../image/png.h"
#include "mm_lua.h"

/* ---- a malloc'd pointer owned by a userdata, so a Lua error never leaks it */
#define BOX_MT "mmfuse.image.box"
typedef struct {
  void *p;
} box;

static int box_gc(lua_State *L) {
  box *b = luaL_checkudata(L, 1, BOX_MT);
  free(b->p);
  b->p = NULL;
  return 0;
}

static box *push_box(lua_State *L) {
  box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->p = NULL;
  luaL_setmetatable(L, BOX_MT);
  return b;
}

static void box_free(box *b) {
  free(b->p);
  b->p = NULL;
}

/* ---- options ---------------------------------------------------------------------- */

static int check_side(lua_State *L, lua_Integer v, const char *what) {
  if (v < 1 || v > MM_IMAGE_MAX_SIDE)
    luaL_error(L, "option '%s' must be in 1..%d, got %d", what, MM_IMAGE_MAX_SIDE, (int)v);
  return (int)v;
}

/* opts.size = n | {h, w}; or opts.height / opts.width. Returns 0 if none given. */
static int opt_size(lua_State *L, int idx, const char *key, int *h, int *w) {
  *h = *w = 0;
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, key);
  int t = lua_type(L, -1);
  if (t == LUA_TNUMBER) {
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "option '%s' must be an integer", key);
    *h = *w = check_side(L, v, key);
  } else if (t == LUA_TTABLE) {
    if (luaL_len(L, -1) != 2) luaL_error(L, "option '%s' must be a number or a table {height, width}", key);
    lua_geti(L, -1, 1);
    lua_geti(L, -2, 2);
    int ok1, ok2;
    lua_Integer hh = lua_tointegerx(L, -2, &ok1), ww = lua_tointegerx(L, -1, &ok2);
    if (!ok1 || !ok2) luaL_error(L, "option '%s' must hold two integers {height, width}", key);
    *h = check_side(L, hh, key);
    *w = check_side(L, ww, key);
    lua_pop(L, 2);
  } else if (t != LUA_TNIL) {
    luaL_error(L, "option '%s' must be a number or a table {height, width}, got %s", key, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  if (*h == 0 && strcmp(key, "size") == 0) {
    lua_Integer hh = mm_lua_optintfield(L, idx, "height", 0), ww = mm_lua_optintfield(L, idx, "width", 0);
    if ((hh != 0) != (ww != 0)) luaL_error(L, "give both options 'height' and 'width', or 'size'");
    if (hh) {
      *h = check_side(L, hh, "height");
      *w = check_side(L, ww, "width");
    }
  }
  return *h > 0;
}

static int opt_fit(lua_State *L, int idx) {
  const char *f = mm_lua_optstrfield(L, idx, "fit", "stretch");
  if (strcmp(f, "stretch") == 0) return MM_FIT_STRETCH;
  if (strcmp(f, "crop") == 0) return MM_FIT_CROP;
  return luaL_error(L, "option 'fit' must be \"stretch\" or \"crop\", got \"%s\"", f);
}

/* decode bytes (anchored by the caller) to RGB8 at *oh x *ow (<= 0: the
 * image's own size, written back) in a box pushed on the stack */
static box *push_rgb8(lua_State *L, const void *bytes, size_t len, const char *name, int *oh, int *ow, int fit) {
  mm_err e;
  int w, h;
  if (mm_image_info(bytes, len, name, &w, &h, NULL, &e)) mm_lua_raise(L, &e);
  if (*oh <= 0) {
    *oh = h;
    *ow = w;
  }
  box *px = push_box(L);
  px->p = malloc((size_t)*oh * (size_t)*ow * 3);
  if (!px->p) luaL_error(L, "%s: out of memory", name);
  if (mm_image_decode_into(bytes, len, name, *ow, *oh, fit, px->p, &e)) mm_lua_raise(L, &e);
  return px;
}

/* decode bytes (anchored by the caller) into a new 3xHxW tensor on the stack */
static void push_decoded(lua_State *L, const void *bytes, size_t len, const char *name, int oh, int ow, int fit) {
  box *px = push_rgb8(L, bytes, len, name, &oh, &ow, fit);
  int64_t shape[3] = {3, oh, ow};
  mm_tensor *t = mm_lua_newtensor(L, 3, shape);
  mm_image_to_chw(px->p, ow, oh, t->data);
  box_free(px);
  lua_remove(L, -2);
}

/* image.load(path [, {size=, fit=}]) -> 3xHxW tensor in [0, 1] */
static int l_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int oh, ow;
  opt_size(L, 2, "size", &oh, &ow);
  int fit = opt_fit(L, 2);
  box *file = push_box(L);
  uint8_t *buf;
  size_t len;
  mm_err e;
  if (mm_read_file(path, &buf, &len, &e)) mm_lua_raise(L, &e);
  file->p = buf;
  push_decoded(L, buf, len, path, oh, ow, fit);
  box_free(file);
  return 1;
}

/* image.decode(bytes [, {size=, fit=, name=}]) -> 3xHxW tensor in [0, 1] */
static int l_decode(lua_State *L) {
  size_t len;
  const char *bytes = luaL_checklstring(L, 1, &len);
  int oh, ow;
  opt_size(L, 2, "size", &oh, &ow);
  int fit = opt_fit(L, 2);
  const char *name = mm_lua_optstrfield(L, 2, "name", "<bytes>");
  push_decoded(L, bytes, len, name, oh, ow, fit);
  return 1;
}

/* image.info(path_or_bytes [, is_bytes]) -> width, height, channels (header only) */
static int l_info(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int is_bytes = lua_toboolean(L, 2);
  int w, h, c;
  mm_err e;
  if (is_bytes) {
    if (mm_image_info(s, len, "<bytes>", &w, &h, &c, &e)) mm_lua_raise(L, &e);
  } else {
    box *file = push_box(L);
    uint8_t *buf;
    if (mm_read_file(s, &buf, &len, &e)) mm_lua_raise(L, &e);
    file->p = buf;
    if (mm_image_info(buf, len, s, &w, &h, &c, &e)) mm_lua_raise(L, &e);
    box_free(file);
    lua_pop(L, 1);
  }
  lua_pushinteger(L, w);
  lua_pushinteger(L, h);
  lua_pushinteger(L, c);
  return 3;
}

/* an image tensor argument: 3-d CxHxW or 4-d NxCxHxW; returns n (1 for 3-d) */
static mm_tensor *check_image(lua_State *L, int idx, const char *fn, int64_t *n, int64_t *c, int64_t *h, int64_t *w) {
  mm_tensor *t = mm_lua_checktensor(L, idx, "image");
  if (t->ndim == 3) {
    *n = 1;
    *c = t->shape[0];
    *h = t->shape[1];
    *w = t->shape[2];
  } else if (t->ndim == 4) {
    *n = t->shape[0];
    *c = t->shape[1];
    *h = t->shape[2];
    *w = t->shape[3];
  } else {
    luaL_error(L, "%s: image must be CxHxW or NxCxHxW, got shape %s", fn, mm_lua_shapestr(t));
  }
  if (*c < 1 || *h < 1 || *w < 1 || *h > MM_IMAGE_MAX_SIDE || *w > MM_IMAGE_MAX_SIDE)
    luaL_error(L, "%s: image shape %s has an empty or too large dimension", fn, mm_lua_shapestr(t));
  return t;
}

/* per-channel values: a number (every channel) or a table of c numbers */
static void check_chanvals(lua_State *L, int idx, const char *fn, const char *name, int64_t c, float *out) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    for (int64_t i = 0; i < c; i++) out[i] = (float)lua_tonumber(L, idx);
    return;
  }
  if (!lua_istable(L, idx)) luaL_error(L, "%s: %s must be a number or a table of %d numbers", fn, name, (int)c);
  if (luaL_len(L, idx) != c)
    luaL_error(L, "%s: %s has %d values, the image has %d channels", fn, name, (int)luaL_len(L, idx), (int)c);
  for (int64_t i = 0; i < c; i++) {
    lua_geti(L, idx, i + 1);
    int ok;
    lua_Number v = lua_tonumberx(L, -1, &ok);
    if (!ok) luaL_error(L, "%s: %s[%d] must be a number", fn, name, (int)i + 1);
    out[i] = (float)v;
    lua_pop(L, 1);
  }
}

#define MAXCH 64

/* image.normalize(t, mean, std) -> new tensor (x - mean[c]) / std[c] */
static int l_normalize(lua_State *L) {
  int64_t n, c, h, w;
  mm_tensor *t = check_image(L, 1, "normalize", &n, &c, &h, &w);
  if (c > MAXCH) luaL_error(L, "normalize: %d channels (at most %d)", (int)c, MAXCH);
  float mean[MAXCH], std[MAXCH];
  check_chanvals(L, 2, "normalize", "mean", c, mean);
  check_chanvals(L, 3, "normalize", "std", c, std);
  mm_tensor *y = mm_lua_newtensor_like(L, t);
  memcpy(y->data, t->data, (size_t)t->numel * sizeof(float));
  mm_err e;
  for (int64_t i = 0; i < n; i++)
    if (mm_image_normalize(y->data + i * c * h * w, (int)c, h * w, mean, std, &e)) mm_lua_raise(L, &e);
  return 1;
}

/* image.augment(t, {crop=, pad=, flip=, center=, seed=}) -> new tensor.
 * crop: output size (n or {h, w}; default: the input size); pad: zero
 * padding around the input (default 0); flip: mirror with probability 1/2;
 * center=true: centred window instead of a random one; seed: a private
 * generator (default: the global one, mm.seed). */
static int l_augment(lua_State *L) {
  int64_t n, c, h, w;
  mm_tensor *t = check_image(L, 1, "augment", &n, &c, &h, &w);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  mm_image_prep p;
  memset(&p, 0, sizeof p);
  if (!opt_size(L, 2, "crop", &p.out_h, &p.out_w)) {
    p.out_h = (int)h;
    p.out_w = (int)w;
  }
  lua_Integer pad = mm_lua_optintfield(L, 2, "pad", 0);
  if (pad < 0 || pad > MM_IMAGE_MAX_SIDE) luaL_error(L, "augment: option 'pad' must be in 0..%d", MM_IMAGE_MAX_SIDE);
  p.pad = (int)pad;
  p.flip = mm_lua_optboolfield(L, 2, "flip", 0);
  p.random_crop = !mm_lua_optboolfield(L, 2, "center", 0);
  mm_rng local, *rng = mm_rng_global();
  lua_Integer seed = 0;
  if (!lua_isnoneornil(L, 2)) {
    lua_getfield(L, 2, "seed");
    if (!lua_isnil(L, -1)) {
      int ok;
      seed = lua_tointegerx(L, -1, &ok);
      if (!ok) luaL_error(L, "augment: option 'seed' must be an integer");
      mm_rng_seed(&local, (uint64_t)seed);
      rng = &local;
    }
    lua_pop(L, 1);
  }
  mm_err e;
  if (mm_image_prep_check(&p, (int)h, (int)w, &e)) luaL_error(L, "augment: %s", e.msg);
  int64_t shape[4];
  int nd = t->ndim;
  if (nd == 3) {
    shape[0] = c;
    shape[1] = p.out_h;
    shape[2] = p.out_w;
  } else {
    shape[0] = n;
    shape[1] = c;
    shape[2] = p.out_h;
    shape[3] = p.out_w;
  }
  mm_tensor *y = mm_lua_newtensor(L, nd, shape);
  int64_t ihw = h * w, ohw = (int64_t)p.out_h * p.out_w;
  for (int64_t i = 0; i < n; i++)
    mm_image_prep_chw(&p, t->data + i * c * ihw, (int)c, (int)h, (int)w, rng, y->data + i * c * ohw);
  return 1;
}

/* bins = n (all three) or {h, s, v}; default {8, 4, 4} */
static void opt_bins(lua_State *L, int idx, int *hb, int *sb, int *vb) {
  *hb = 8;
  *sb = 4;
  *vb = 4;
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "bins");
  if (lua_type(L, -1) == LUA_TNUMBER) {
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 1 || v > 64) luaL_error(L, "histogram: option 'bins' must be an integer in 1..64");
    *hb = *sb = *vb = (int)v;
  } else if (lua_istable(L, -1)) {
    if (luaL_len(L, -1) != 3) luaL_error(L, "histogram: option 'bins' must be a number or {hue, sat, value}");
    int *dst[3] = {hb, sb, vb};
    for (int i = 0; i < 3; i++) {
      lua_geti(L, -1, i + 1);
      int ok;
      lua_Integer v = lua_tointegerx(L, -1, &ok);
      if (!ok || v < 1 || v > 64) luaL_error(L, "histogram: bins[%d] must be an integer in 1..64", i + 1);
      *dst[i] = (int)v;
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "histogram: option 'bins' must be a number or {hue, sat, value}, got %s", luaL_typename(L, -1));
  }
  lua_pop(L, 1);
}

/* image.histogram(t_or_path [, {bins=, size=}]) -> vector (NxB for a batch) */
static int l_histogram(lua_State *L) {
  int hb, sb, vb;
  opt_bins(L, 2, &hb, &sb, &vb);
  int64_t nb = (int64_t)hb * sb * vb;
  mm_err e;
  if (lua_type(L, 1) == LUA_TSTRING) {
    const char *path = lua_tostring(L, 1);
    int oh, ow;
    opt_size(L, 2, "size", &oh, &ow);
    int fit = opt_fit(L, 2);
    box *file = push_box(L);
    uint8_t *buf;
    size_t len;
    if (mm_read_file(path, &buf, &len, &e)) mm_lua_raise(L, &e);
    file->p = buf;
    box *px = push_rgb8(L, buf, len, path, &oh, &ow, fit);
    box_free(file);
    int64_t shape[1] = {nb};
    mm_tensor *y = mm_lua_newtensor(L, 1, shape);
    if (mm_image_hsv_histogram_rgb8(px->p, (int64_t)oh * ow, hb, sb, vb, y->data, &e)) mm_lua_raise(L, &e);
    box_free(px);
    return 1;
  }
  if (!mm_lua_testtensor(L, 1))
    luaL_argerror(L, 1, lua_pushfstring(L, "histogram: tensor or path expected, got %s", luaL_typename(L, 1)));
  int64_t n, c, h, w;
  mm_tensor *t = check_image(L, 1, "histogram", &n, &c, &h, &w);
  if (c != 3) luaL_error(L, "histogram: image must have 3 channels (RGB), got shape %s", mm_lua_shapestr(t));
  mm_tensor *y;
  if (t->ndim == 3) {
    int64_t shape[1] = {nb};
    y = mm_lua_newtensor(L, 1, shape);
  } else {
    int64_t shape[2] = {n, nb};
    y = mm_lua_newtensor(L, 2, shape);
  }
  for (int64_t i = 0; i < n; i++)
    if (mm_image_hsv_histogram_chw(t->data + i * 3 * h * w, h * w, hb, sb, vb, y->data + i * nb, &e)) {
      if (n > 1) mm_err_prefix(&e, "image %lld: ", (long long)i + 1);
      mm_lua_raise(L, &e);
    }
  return 1;
}

/* image.batch({t1, t2, ...}) -> NxCxHxW (every ti CxHxW of one shape) */
static int l_batch(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  if (n < 1) luaL_error(L, "batch: the list of images is empty");
  lua_geti(L, 1, 1);
  mm_tensor *first = mm_lua_testtensor(L, -1);
  if (!first || !first->data || first->ndim != 3)
    luaL_error(L, "batch: image 1 must be a CxHxW tensor, got %s",
               first ? mm_lua_shapestr(first) : luaL_typename(L, -1));
  int64_t c = first->shape[0], h = first->shape[1], w = first->shape[2];
  lua_pop(L, 1);
  int64_t shape[4] = {n, c, h, w};
  mm_tensor *y = mm_lua_newtensor(L, 4, shape);
  int64_t per = c * h * w;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 1, i);
    mm_tensor *t = mm_lua_testtensor(L, -1);
    if (!t || !t->data) luaL_error(L, "batch: image %d is not a tensor (got %s)", (int)i, luaL_typename(L, -1));
    if (t->ndim != 3 || t->shape[0] != c || t->shape[1] != h || t->shape[2] != w)
      luaL_error(L, "batch: image %d has shape %s, image 1 has %s", (int)i, mm_lua_shapestr(t),
                 mm_lua_shapestr(first));
    memcpy(y->data + (i - 1) * per, t->data, (size_t)per * sizeof(float));
    lua_pop(L, 1);
  }
  return 1;
}

static void push_floats(lua_State *L, const float *v, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushnumber(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static void mm_lua_open_backbone(lua_State *L);

/* core.image._decode_rgb8(bytes [, path]) -> RGB8 string, w, h  |  nil, message
 * path: "general" = stb only (decode.c's general path), "fast" = the PNG fast
 * path only (nil, "declined" when it declines), anything else = what
 * mm_image_decode does. For the specs that compare the paths. */
static int l_decode_rgb8(lua_State *L) {
  size_t len;
  const char *bytes = luaL_checklstring(L, 1, &len);
  const char *path = luaL_optstring(L, 2, "auto");
  uint8_t *px = NULL;
  int w = 0, h = 0;
  mm_err e = {0};
  if (strcmp(path, "fast") == 0) {
    int r = mm_png_decode_rgb8((const uint8_t *)bytes, len, NULL, 0, 0, &px, &w, &h);
    if (r != MM_PNG_OK) {
      lua_pushnil(L);
      lua_pushstring(L, r == MM_PNG_NOMEM ? "out of memory" : "declined");
      return 2;
    }
  } else if (strcmp(path, "general") == 0) {
    if (mm_image_decode_general(bytes, len, "<bytes>", &px, &w, &h, &e)) {
      lua_pushnil(L);
      lua_pushstring(L, e.msg);
      return 2;
    }
  } else {
    mm_image img = {0};
    if (mm_image_decode(bytes, len, "<bytes>", 0, 0, MM_FIT_STRETCH, &img, &e)) {
      lua_pushnil(L);
      lua_pushstring(L, e.msg);
      return 2;
    }
    px = img.px;
    w = img.w;
    h = img.h;
  }
  box *b = push_box(L);
  b->p = px;
  lua_pushlstring(L, (const char *)px, (size_t)w * (size_t)h * 3);
  box_free(b);
  lua_remove(L, -2);
  lua_pushinteger(L, w);
  lua_pushinteger(L, h);
  return 3;
}

void mm_lua_open_image(lua_State *L) {
  mm_lua_open_backbone(L);
  luaL_newmetatable(L, BOX_MT);
  lua_pushcfunction(L, box_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"load", l_load},
                                 {"decode", l_decode},
                                 {"info", l_info},
                                 {"normalize", l_normalize},
                                 {"augment", l_augment},
                                 {"histogram", l_histogram},
                                 {"batch", l_batch},
                                 {"_decode_rgb8", l_decode_rgb8},
                                 {NULL, NULL}};
  mm_lua_subtable(L, "image", fns);
  lua_getfield(L, -1, "image");
  push_floats(L, mm_imagenet_mean, 3);
  lua_setfield(L, -2, "imagenet_mean");
  push_floats(L, mm_imagenet_std, 3);
  lua_setfield(L, -2, "imagenet_std");
  lua_pushinteger(L, MM_IMAGE_MAX_SIDE);
  lua_setfield(L, -2, "max_side");
  lua_pop(L, 1);
}

/* ---- backbones: core.image.backbone(arch) -> object ---------------------------------- */

#define BACKBONE_MT "mmfuse.Backbone"
typedef struct {
  mm_backbone *b;
} backbone_ud;

/* (mm_lua_checkfinite formats with %lld, which lua_pushfstring lacks) */
static void check_finite(lua_State *L, const mm_tensor *t, const char *fn, const char *name) {
  for (int64_t i = 0; i < t->numel; i++)
    if (!isfinite(t->data[i]))
      luaL_error(L, "%s: %s contains %s at element %I (shape %s)", fn, name, isnan(t->data[i]) ? "NaN" : "Inf",
                 (lua_Integer)i + 1, mm_lua_shapestr(t));
}

static mm_backbone *check_backbone(lua_State *L, int idx) {
  backbone_ud *u = luaL_checkudata(L, idx, BACKBONE_MT);
  if (!u->b) luaL_error(L, "backbone was closed");
  return u->b;
}

static int bb_gc(lua_State *L) {
  backbone_ud *u = luaL_checkudata(L, 1, BACKBONE_MT);
  mm_backbone_free(u->b);
  u->b = NULL;
  return 0;
}

static int l_backbone(lua_State *L) {
  const char *arch = luaL_checkstring(L, 1);
  backbone_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->b = NULL;
  luaL_setmetatable(L, BACKBONE_MT);
  mm_err e;
  if (mm_backbone_new(arch, &u->b, &e)) mm_lua_raise(L, &e);
  return 1;
}

static int check_param(lua_State *L, mm_backbone *b, int idx) {
  const char *name = luaL_checkstring(L, idx);
  int i = mm_backbone_find(b, name);
  if (i < 0) luaL_error(L, "%s: no parameter named '%s'", mm_backbone_arch(b), name);
  return i;
}

/* b:params() -> { {name = , shape = {..}}, ... } in state_dict order */
static int bb_params(lua_State *L) {
  mm_backbone *b = check_backbone(L, 1);
  int n = mm_backbone_nparams(b);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    int64_t shape[4];
    int nd = mm_backbone_param_shape(b, i, shape);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, mm_backbone_param_name(b, i));
    lua_setfield(L, -2, "name");
    lua_createtable(L, nd, 0);
    for (int d = 0; d < nd; d++) {
      lua_pushinteger(L, shape[d]);
      lua_rawseti(L, -2, d + 1);
    }
    lua_setfield(L, -2, "shape");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* b:set(name, tensor): the tensor must have the parameter's shape */
static int bb_set(lua_State *L) {
  mm_backbone *b = check_backbone(L, 1);
  int i = check_param(L, b, 2);
  mm_tensor *t = mm_lua_checktensor(L, 3, "value");
  int64_t shape[4];
  int nd = mm_backbone_param_shape(b, i, shape);
  int same = t->ndim == nd;
  for (int d = 0; same && d < nd; d++) same = t->shape[d] == shape[d];
  if (!same) {
    char want[96];
    int k = 0;
    for (int d = 0; d < nd; d++) k += snprintf(want + k, sizeof want - (size_t)k, d ? "x%lld" : "%lld", (long long)shape[d]);
    luaL_error(L, "%s: parameter '%s' has shape %s, got %s", mm_backbone_arch(b), mm_backbone_param_name(b, i), want,
               mm_lua_shapestr(t));
  }
  check_finite(L, t, mm_backbone_arch(b), mm_backbone_param_name(b, i));
  memcpy(mm_backbone_param_data(b, i), t->data, (size_t)t->numel * sizeof(float));
  return 0;
}

/* b:set_raw(name, bytes, offset): float32 little-endian from bytes[offset+1 ..] (0-based offset) */
static int bb_set_raw(lua_State *L) {
  mm_backbone *b = check_backbone(L, 1);
  int i = check_param(L, b, 2);
  size_t len;
  const char *s = luaL_checklstring(L, 3, &len);
  lua_Integer off = luaL_checkinteger(L, 4);
  int64_t n = mm_backbone_param_numel(b, i);
  if (off < 0 || (uint64_t)off > len || (uint64_t)(len - (size_t)off) < (uint64_t)n * 4)
    luaL_error(L, "%s: parameter '%s' needs %I bytes at offset %I, the data has %I", mm_backbone_arch(b),
               mm_backbone_param_name(b, i), (lua_Integer)n * 4, (lua_Integer)off, (lua_Integer)len);
  float *d = mm_backbone_param_data(b, i);
  memcpy(d, s + off, (size_t)n * 4);
  for (int64_t j = 0; j < n; j++)
    if (!isfinite(d[j]))
      luaL_error(L, "%s: parameter '%s' contains a non-finite value at element %I", mm_backbone_arch(b),
                 mm_backbone_param_name(b, i), (lua_Integer)j + 1);
  return 0;
}

/* b:get(name) -> tensor copy */
static int bb_get(lua_State *L) {
  mm_backbone *b = check_backbone(L, 1);
  int i = check_param(L, b, 2);
  int64_t shape[4];
  int nd = mm_backbone_param_shape(b, i, shape);
  mm_tensor *t = mm_lua_newtensor(L, nd, shape);
  memcpy(t->data, mm_backbone_param_peek(b, i), (size_t)t->numel * sizeof(float));
  return 1;
}

/* b:forward(x) -> N x dim (x: Nx3xHxW or 3xHxW, normalised) */
static int bb_forward(lua_State *L) {
  mm_backbone *b = check_backbone(L, 1);
  mm_tensor *x = mm_lua_checktensor(L, 2, "x");
  int64_t n, c, h, w;
  if (x->ndim == 3) {
    n = 1;
    c = x->shape[0];
    h = x->shape[1];
    w = x->shape[2];
  } else if (x->ndim == 4) {
    n = x->shape[0];
    c = x->shape[1];
    h = x->shape[2];
    w = x->shape[3];
  } else {
    return luaL_error(L, "%s: forward: x must be Nx3xHxW or 3xHxW, got shape %s", mm_backbone_arch(b),
                      mm_lua_shapestr(x));
  }
  if (c != 3)
    luaL_error(L, "%s: forward: x must have 3 channels, got shape %s", mm_backbone_arch(b), mm_lua_shapestr(x));
  check_finite(L, x, mm_backbone_arch(b), "x");
  int64_t shape[2] = {n, mm_backbone_dim(b)};
  mm_tensor *y = mm_lua_newtensor(L, 2, shape);
  mm_err e;
  if (mm_backbone_forward(b, x->data, n, h, w, y->data, &e)) mm_lua_raise(L, &e);
  return 1;
}

static int bb_dim(lua_State *L) {
  lua_pushinteger(L, mm_backbone_dim(check_backbone(L, 1)));
  return 1;
}

static int bb_arch(lua_State *L) {
  lua_pushstring(L, mm_backbone_arch(check_backbone(L, 1)));
  return 1;
}

static int bb_tostring(lua_State *L) {
  backbone_ud *u = luaL_checkudata(L, 1, BACKBONE_MT);
  if (!u->b) {
    lua_pushliteral(L, "backbone (closed)");
    return 1;
  }
  lua_pushfstring(L, "%s backbone: %d tensors, %I parameters, output %I", mm_backbone_arch(u->b),
                  mm_backbone_nparams(u->b), (lua_Integer)mm_backbone_total_params(u->b),
                  (lua_Integer)mm_backbone_dim(u->b));
  return 1;
}

static void mm_lua_open_backbone(lua_State *L) {
  static const luaL_Reg methods[] = {{"params", bb_params}, {"set", bb_set},   {"set_raw", bb_set_raw},
                                     {"get", bb_get},       {"forward", bb_forward}, {"dim", bb_dim},
                                     {"arch", bb_arch},     {NULL, NULL}};
  luaL_newmetatable(L, BACKBONE_MT);
  lua_pushcfunction(L, bb_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, bb_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, bb_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"backbone", l_backbone}, {NULL, NULL}};
  mm_lua_subtable(L, "image", fns);
}
