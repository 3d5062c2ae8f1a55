/* l_image.c - Lua binding for the image area: core.image.{load, decode, info,
 * normalize, augment, histogram, batch} (the backbones: l_backbone.c).
 * Tensors are float CHW (or NCHW). */
#include <stdlib.h>
#include <string.h>

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

/* the options of decoding: size = n | {h, w} (or height = and width =), fit */
#define DECODE_OPTS(size_type, hh, ww, fit)                                                                          \
  MM_OPT_ANY("size", size_type), MM_OPT_INT("height", hh, 0), MM_OPT_INT("width", ww, 0),                            \
      MM_OPT_ENUM("fit", fit, MM_FIT_STRETCH, mm_fit_names)

/* the cap on an image file's size: 0 = MM_IMAGE_MAX_BYTES (image.h) */
#define MAX_BYTES_OPT(out) MM_OPT_INT_IN("max_bytes", out, 0, 0, (lua_Number)((int64_t)1 << 40))

static int check_side(lua_State *L, const char *fn, lua_Integer v, const char *what) {
  if (v < 1 || v > MM_IMAGE_MAX_SIDE)
    luaL_error(L, "%s: option '%s' must be in 1..%d, got %d", fn, what, MM_IMAGE_MAX_SIDE, (int)v);
  return (int)v;
}

/* option `key` (of Lua type ktype, LUA_TNIL when absent) of the table at idx:
 * n or {h, w} -> *h, *w (0 when absent) */
static void read_hw(lua_State *L, int idx, const char *fn, const char *key, int ktype, int *h, int *w) {
  *h = *w = 0;
  if (ktype == LUA_TNIL) return;
  lua_getfield(L, idx, key);
  if (ktype == LUA_TNUMBER) {
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "%s: option '%s' must be an integer", fn, key);
    *h = *w = check_side(L, fn, v, key);
  } else if (ktype == LUA_TTABLE) {
    if (luaL_len(L, -1) != 2) luaL_error(L, "%s: option '%s' must be a number or a table {height, width}", fn, key);
    lua_geti(L, -1, 1);
    lua_geti(L, -2, 2);
    int ok1, ok2;
    lua_Integer hh = lua_tointegerx(L, -2, &ok1), ww = lua_tointegerx(L, -1, &ok2);
    if (!ok1 || !ok2) luaL_error(L, "%s: option '%s' must hold two integers {height, width}", fn, key);
    *h = check_side(L, fn, hh, key);
    *w = check_side(L, fn, ww, key);
    lua_pop(L, 2);
  } else {
    luaL_error(L, "%s: option '%s' must be a number or a table {height, width}, got %s", fn, key, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
}

/* the output size of DECODE_OPTS: size, else height and width (both), else 0 x 0 */
static void decode_size(lua_State *L, int idx, const char *fn, int size_type, lua_Integer hh, lua_Integer ww, int *h,
                        int *w) {
  read_hw(L, idx, fn, "size", size_type, h, w);
  if (*h || (!hh && !ww)) return;
  if (!hh || !ww) luaL_error(L, "%s: give both options 'height' and 'width', or 'size'", fn);
  *h = check_side(L, fn, hh, "height");
  *w = check_side(L, fn, ww, "width");
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

/* the bytes of the image file at path (a regular file of at most max_bytes,
 * 0: the default cap), in a box pushed on the stack */
static box *push_file(lua_State *L, const char *path, lua_Integer max_bytes, size_t *len) {
  box *file = push_box(L);
  uint8_t *buf;
  mm_err e;
  if (mm_image_read_file(path, (int64_t)max_bytes, &buf, len, &e)) mm_lua_raise(L, &e);
  file->p = buf;
  return file;
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

/* image.load(path [, {size=, height=, width=, fit=, max_bytes=}]) -> 3xHxW tensor in [0, 1] */
static int l_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int size_type, fit, oh, ow;
  lua_Integer hh, ww, max_bytes;
  const mm_lua_opt opts[] = {DECODE_OPTS(&size_type, &hh, &ww, &fit), MAX_BYTES_OPT(&max_bytes), MM_OPT_END};
  mm_lua_readopts(L, 2, "load", opts);
  decode_size(L, 2, "load", size_type, hh, ww, &oh, &ow);
  size_t len;
  box *file = push_file(L, path, max_bytes, &len);
  push_decoded(L, file->p, len, path, oh, ow, fit);
  box_free(file);
  return 1;
}

/* image.decode(bytes [, {size=, height=, width=, fit=, name=}]) -> 3xHxW tensor in [0, 1] */
static int l_decode(lua_State *L) {
  size_t len;
  const char *bytes = luaL_checklstring(L, 1, &len);
  int size_type, fit, oh, ow;
  lua_Integer hh, ww;
  const char *name;
  const mm_lua_opt opts[] = {DECODE_OPTS(&size_type, &hh, &ww, &fit), MM_OPT_STR("name", &name, "<bytes>"),
                             MM_OPT_END};
  mm_lua_readopts(L, 2, "decode", opts);
  decode_size(L, 2, "decode", size_type, hh, ww, &oh, &ow);
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
    box *file = push_file(L, s, 0, &len);
    if (mm_image_info(file->p, len, s, &w, &h, &c, &e)) mm_lua_raise(L, &e);
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
  if (mm_image_normalize(y->data, n, (int)c, h * w, mean, std, &e)) mm_lua_raise(L, &e);
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
  int crop_type, center;
  lua_Integer pad, seed;
  mm_image_prep p;
  memset(&p, 0, sizeof p);
  const mm_lua_opt opts[] = {MM_OPT_ANY("crop", &crop_type), MM_OPT_INT_IN("pad", &pad, 0, 0, MM_IMAGE_MAX_SIDE),
                             MM_OPT_BOOL("flip", &p.flip, 0), MM_OPT_BOOL("center", &center, 0),
                             MM_OPT_INT("seed", &seed, 0), MM_OPT_END};
  unsigned given = mm_lua_readopts(L, 2, "augment", opts);
  read_hw(L, 2, "augment", "crop", crop_type, &p.out_h, &p.out_w);
  if (!p.out_h) p.out_h = (int)h, p.out_w = (int)w;
  p.pad = (int)pad;
  p.random_crop = !center;
  mm_rng local, *rng = mm_rng_global();
  if (MM_OPT_GIVEN(given, 4)) mm_rng_seed(rng = &local, (uint64_t)seed);
  mm_err e;
  if (mm_image_prep_check(&p, (int)h, (int)w, &e)) luaL_error(L, "augment: %s", e.msg);
  int64_t shape[4] = {n, c, p.out_h, p.out_w};
  mm_tensor *y = t->ndim == 3 ? mm_lua_newtensor(L, 3, shape + 1) : mm_lua_newtensor(L, 4, shape);
  mm_image_prep_chw(&p, t->data, n, (int)c, (int)h, (int)w, rng, y->data);
  return 1;
}

/* the bins option at the top of the stack: n (all three) or {h, s, v}, each in 1..64 */
static void read_bins(lua_State *L, int *hb, int *sb, int *vb) {
  int *dst[3] = {hb, sb, vb};
  if (lua_type(L, -1) == LUA_TNUMBER) {
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 1 || v > 64) luaL_error(L, "histogram: option 'bins' must be an integer in 1..64");
    *hb = *sb = *vb = (int)v;
    return;
  }
  if (!lua_istable(L, -1) || luaL_len(L, -1) != 3)
    luaL_error(L, "histogram: option 'bins' must be a number or {hue, sat, value}, got %s", luaL_typename(L, -1));
  for (int i = 0; i < 3; i++) {
    lua_geti(L, -1, i + 1);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 1 || v > 64) luaL_error(L, "histogram: bins[%d] must be an integer in 1..64", i + 1);
    *dst[i] = (int)v;
    lua_pop(L, 1);
  }
}

/* the histogram of the image file at 1 (RGB8 straight from the decoder), bins
 * hb x sb x vb, decoded as the options at 2 say */
static int histogram_file(lua_State *L, int size_type, lua_Integer hh, lua_Integer ww, int fit, lua_Integer max_bytes,
                          int hb, int sb, int vb) {
  const char *path = lua_tostring(L, 1);
  int oh, ow;
  decode_size(L, 2, "histogram", size_type, hh, ww, &oh, &ow);
  size_t len;
  box *file = push_file(L, path, max_bytes, &len);
  box *px = push_rgb8(L, file->p, len, path, &oh, &ow, fit);
  box_free(file);
  int64_t nb = (int64_t)hb * sb * vb;
  mm_tensor *y = mm_lua_newtensor(L, 1, &nb);
  mm_err e;
  if (mm_image_hsv_histogram_rgb8(px->p, (int64_t)oh * ow, hb, sb, vb, y->data, &e)) mm_lua_raise(L, &e);
  box_free(px);
  return 1;
}

/* image.histogram(t_or_path [, {bins=, and for a path size=, height=, width=, fit=, max_bytes=}])
 * -> vector (NxB for a batch) */
static int l_histogram(lua_State *L) {
  int path = lua_type(L, 1) == LUA_TSTRING;
  int bins_type, size_type, fit, hb = MM_HSV_BINS_H, sb = MM_HSV_BINS_S, vb = MM_HSV_BINS_V;
  lua_Integer hh, ww, max_bytes;
  const mm_lua_opt opts[] = {MM_OPT_ANY("bins", &bins_type), DECODE_OPTS(&size_type, &hh, &ww, &fit),
                             MAX_BYTES_OPT(&max_bytes), MM_OPT_END};
  const mm_lua_opt tensor_opts[] = {MM_OPT_ANY("bins", &bins_type), MM_OPT_END};
  mm_lua_readopts(L, 2, "histogram", path ? opts : tensor_opts);
  if (bins_type != LUA_TNIL) {
    lua_getfield(L, 2, "bins");
    read_bins(L, &hb, &sb, &vb);
    lua_pop(L, 1);
  }
  if (path) return histogram_file(L, size_type, hh, ww, fit, max_bytes, hb, sb, vb);
  if (!mm_lua_testtensor(L, 1))
    luaL_argerror(L, 1, lua_pushfstring(L, "histogram: tensor or path expected, got %s", luaL_typename(L, 1)));
  int64_t n, c, h, w, nb = (int64_t)hb * sb * vb;
  mm_tensor *t = check_image(L, 1, "histogram", &n, &c, &h, &w);
  if (c != 3) luaL_error(L, "histogram: image must have 3 channels (RGB), got shape %s", mm_lua_shapestr(t));
  int64_t shape[2] = {n, nb};
  mm_tensor *y = t->ndim == 3 ? mm_lua_newtensor(L, 1, shape + 1) : mm_lua_newtensor(L, 2, shape);
  mm_err e;
  if (mm_image_hsv_histogram_chw(t->data, n, h * w, hb, sb, vb, y->data, &e)) mm_lua_raise(L, &e);
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
  lua_pushinteger(L, MM_IMAGE_MAX_PIXELS);
  lua_setfield(L, -2, "max_pixels");
  lua_pushinteger(L, MM_IMAGE_MAX_BYTES);
  lua_setfield(L, -2, "max_bytes");
  lua_pop(L, 1);
}

