/* mm_lua.h - helpers shared by every l_*.c binding file.
 *
 * Conventions:
 *  - the module table `mmfuse.core` is built by luaopen_mmfuse_core (l_core.c),
 *    which calls one mm_lua_open_<area>(L) per binding file with the core
 *    table on top of the stack; each adds its fields and leaves the stack as
 *    it found it.
 *  - argument errors name the argument (luaL_argerror style) and the shapes.
 *  - core failures (mm_err) become Lua errors through mm_lua_raise.
 */
#ifndef MM_LUA_H
#define MM_LUA_H

#include <lauxlib.h>
#include <lua.h>

#include "../core/error.h"
#include "../core/tensor.h"
#include "../text/tokenize.h"

#define MM_TENSOR_MT "mmfuse.Tensor"

/* -- tensors -------------------------------------------------------------- */
mm_tensor *mm_lua_testtensor(lua_State *L, int idx);
/* raises "bad argument #idx to 'fn' (name: tensor expected, got T)" */
mm_tensor *mm_lua_checktensor(lua_State *L, int idx, const char *name);
/* push a new zeroed tensor; raises a Lua error on bad shape / no memory */
mm_tensor *mm_lua_newtensor(lua_State *L, int ndim, const int64_t *shape);
/* the same, its data not zeroed: for results a kernel writes in full */
mm_tensor *mm_lua_newtensor_uninit(lua_State *L, int ndim, const int64_t *shape);
mm_tensor *mm_lua_newtensor_like(lua_State *L, const mm_tensor *t);
/* Accept a tensor or a nested Lua table / number at idx; returns a tensor
 * (converting a table into a new tensor, which it leaves in place at idx). */
mm_tensor *mm_lua_totensor(lua_State *L, int idx, const char *name);
/* "2x3" for error messages; uses one of 4 rotating static buffers */
const char *mm_lua_shapestr(const mm_tensor *t);
/* Read a shape given either as a table {2,3} or as integers from idx..top. */
int mm_lua_checkshape(lua_State *L, int idx, int64_t *shape);

/* -- datasets (l_data.c) ----------------------------------------------------- */
struct mm_dataset;
/* the dataset userdata at idx (an argument error when it is none or closed) */
struct mm_dataset *mm_lua_checkdataset(lua_State *L, int idx);
/* push a new dataset userdata that owns ds */
void mm_lua_pushdataset(lua_State *L, struct mm_dataset *ds);

/* -- streams (l_stream.c) ----------------------------------------------------- */
struct mm_stream;
/* the stream userdata at idx, or NULL when idx holds something else */
struct mm_stream *mm_lua_teststream(lua_State *L, int idx);
/* mark the stream at idx in use by a model (delta +1) or not (-1); 0 when idx holds no stream */
int mm_lua_stream_busy(lua_State *L, int idx, int delta);

/* -- owned C memory ---------------------------------------------------------
 * A userdata that frees (free()) the pointer stored in it when collected:
 * push it before calling C code that mallocs, store the pointer in *slot, and
 * a Lua error raised afterwards cannot leak the memory. */
void **mm_lua_newowner(lua_State *L);

/* -- errors --------------------------------------------------------------- */
int mm_lua_raise(lua_State *L, const mm_err *e);

/* -- option tables ----------------------------------------------------------
 * Every option table of the binding is read by one call of mm_lua_readopts,
 * against a declarative array that names each option once: its key, type,
 * default and (for numbers) range. For example conv2d:
 *
 *   lua_Integer stride, pad, groups;
 *   const mm_lua_opt opts[] = {MM_OPT_INT("stride", &stride, 1), MM_OPT_INT("padding", &pad, 0),
 *                              MM_OPT_INT("groups", &groups, 1), MM_OPT_END};
 *   mm_lua_readopts(L, 4, "conv2d", opts);
 *
 * mm_lua_readopts writes every option's default to its `out`, then, when the
 * argument at idx is a table, reads every key of it:
 *   - not a table (and not none/nil):
 *       "conv2d: options (argument #4) must be a table, got number"
 *   - a key that is not in the array:
 *       "conv2d: unknown option 'paddding' (known: stride, padding, groups)"
 *   - a value of the wrong type (integers: a number with an integer value;
 *     numbers: NaN is refused too):
 *       "conv2d: option 'stride' must be an integer, got string"
 *   - out of range (INT_IN / NUM_IN):
 *       "histogram: option 'bins' must be in 1..64, got 0"
 *   - an enum string not in its names:
 *       "load: option 'fit' must be "stretch" or "crop", got "fill""
 * It returns a bit mask of the options given (bit i: opts[i] was in the
 * table; the first 32 options), for options whose absence means something
 * other than a default value. fn prefixes every message (NULL: none).
 * Strings stay valid while the option table is alive. MM_LUA_ANY accepts any
 * value and only reports its Lua type (LUA_TNIL when absent) for the caller
 * to read with lua_getfield: tensors, lists, "a number or a table". */
typedef enum { MM_LUA_INT, MM_LUA_NUM, MM_LUA_BOOL, MM_LUA_STR, MM_LUA_ENUM, MM_LUA_ANY } mm_lua_opttype;

typedef struct mm_lua_opt {
  const char *key;
  mm_lua_opttype type;
  void *out;                /* INT: lua_Integer *, NUM: lua_Number *, BOOL / ENUM / ANY: int *, STR: const char ** */
  lua_Number def;           /* INT / NUM / BOOL / ENUM (an index into names) default */
  const char *sdef;         /* STR default (may be NULL) */
  lua_Number lo, hi;        /* INT / NUM: allowed range, inclusive; none when lo > hi */
  const char *const *names; /* ENUM: the accepted strings, NULL-terminated; *out = the index */
} mm_lua_opt;

#define MM_OPT_INT(key, out, def) {(key), MM_LUA_INT, (out), (def), NULL, 1, 0, NULL}
#define MM_OPT_INT_IN(key, out, def, lo, hi) {(key), MM_LUA_INT, (out), (def), NULL, (lo), (hi), NULL}
#define MM_OPT_NUM(key, out, def) {(key), MM_LUA_NUM, (out), (def), NULL, 1, 0, NULL}
#define MM_OPT_NUM_IN(key, out, def, lo, hi) {(key), MM_LUA_NUM, (out), (def), NULL, (lo), (hi), NULL}
/* a BOOL default of -1 tells "not given" from false */
#define MM_OPT_BOOL(key, out, def) {(key), MM_LUA_BOOL, (out), (def), NULL, 1, 0, NULL}
#define MM_OPT_STR(key, out, def) {(key), MM_LUA_STR, (out), 0, (def), 1, 0, NULL}
#define MM_OPT_ENUM(key, out, def, names) {(key), MM_LUA_ENUM, (out), (def), NULL, 1, 0, (names)}
#define MM_OPT_ANY(key, out) {(key), MM_LUA_ANY, (out), 0, NULL, 1, 0, NULL}
#define MM_OPT_END {NULL, MM_LUA_ANY, NULL, 0, NULL, 1, 0, NULL}
/* bit of opts[i] in mm_lua_readopts' result */
#define MM_OPT_GIVEN(mask, i) (((mask) >> (i)) & 1u)

unsigned mm_lua_readopts(lua_State *L, int idx, const char *fn, const mm_lua_opt *opts);

/* -- tokenizer options (csrc/text/tokenize.h) ---------------------------------
 * The keys every option table that tokenizes takes (mm.text.tokenize,
 * mm.text.vocab, mm.model's text = {...}): tokenizer = "plain" | "posts" (a
 * preset), then each option on its own, over the preset: lowercase,
 * keep_punct, urls, mentions ("user" | "keep" | "off" | true | false), rt,
 * hashtags, emoticons, tones, elongation. Put MM_OPT_TOKENIZER(&raw) in the
 * option array, call mm_lua_readopts, then mm_lua_tokopts to apply them to
 * *o (which holds the values to start from when no preset is named). */
typedef struct mm_lua_tokraw {
  const char *preset;
  int lowercase, keep_punct, urls, rt, hashtags, emoticons, tones, elongation;
  int mentions; /* its Lua type (MM_OPT_ANY) */
} mm_lua_tokraw;
#define MM_OPT_TOKENIZER(r)                                                                                           \
  MM_OPT_STR("tokenizer", &(r)->preset, NULL), MM_OPT_BOOL("lowercase", &(r)->lowercase, -1),                         \
      MM_OPT_BOOL("keep_punct", &(r)->keep_punct, -1), MM_OPT_BOOL("urls", &(r)->urls, -1),                           \
      MM_OPT_ANY("mentions", &(r)->mentions), MM_OPT_BOOL("rt", &(r)->rt, -1),                                        \
      MM_OPT_BOOL("hashtags", &(r)->hashtags, -1), MM_OPT_BOOL("emoticons", &(r)->emoticons, -1),                     \
      MM_OPT_BOOL("tones", &(r)->tones, -1), MM_OPT_BOOL("elongation", &(r)->elongation, -1)
/* apply what mm_lua_readopts read into raw from the table at idx (errors are
 * prefixed with fn) */
void mm_lua_tokopts(lua_State *L, int idx, const char *fn, const mm_lua_tokraw *raw, mm_tokenize_opts *o);
/* set every tokenizer option of o as a field of the table at the top */
void mm_lua_push_tokopts(lua_State *L, const mm_tokenize_opts *o);

/* -- registration ----------------------------------------------------------- */
/* set the functions of `fns` into the table at the top of the stack */
void mm_lua_setfuncs(lua_State *L, const luaL_Reg *fns);
/* create core[name] = {} filled with fns (leaves stack balanced) */
void mm_lua_subtable(lua_State *L, const char *name, const luaL_Reg *fns);

/* -- area openers (one per l_*.c) ------------------------------------------ */
void mm_lua_open_tensor(lua_State *L);
/* mm.Tensor's arithmetic (l_tensor_math.c), registered by mm_lua_open_tensor */
extern const luaL_Reg mm_lua_tensor_math_meta[], mm_lua_tensor_math_methods[], mm_lua_tensor_math_funcs[];
void mm_lua_open_nn(lua_State *L);
void mm_lua_open_text(lua_State *L);
void mm_lua_open_image(lua_State *L);
void mm_lua_open_tfjs(lua_State *L);
void mm_lua_open_backbone(lua_State *L); /* l_backbone.c: core.image.backbone, opened by mm_lua_open_image */
void mm_lua_open_io(lua_State *L);
void mm_lua_open_data(lua_State *L);
void mm_lua_open_model(lua_State *L);
void mm_lua_open_stream(lua_State *L);

#endif
