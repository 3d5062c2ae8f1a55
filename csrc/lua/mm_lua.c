/* mm_lua.c - the helpers of mm_lua.h that are not about tensors: core errors
 * to Lua errors, owned C memory, registration, and the option reader every binding function
 * uses (mm_lua_readopts). */
#include "mm_lua.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int mm_lua_raise(lua_State *L, const mm_err *e) { return luaL_error(L, "%s", e->msg); }

#define OWNER_MT "mmfuse.owner"

static int owner_gc(lua_State *L) {
  void **slot = luaL_checkudata(L, 1, OWNER_MT);
  free(*slot);
  *slot = NULL;
  return 0;
}

void **mm_lua_newowner(lua_State *L) {
  void **slot = lua_newuserdatauv(L, sizeof *slot, 0);
  *slot = NULL;
  if (luaL_newmetatable(L, OWNER_MT)) {
    lua_pushcfunction(L, owner_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return slot;
}

void mm_lua_setfuncs(lua_State *L, const luaL_Reg *fns) { luaL_setfuncs(L, fns, 0); }

void mm_lua_subtable(lua_State *L, const char *name, const luaL_Reg *fns) {
  lua_getfield(L, -1, name);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, name);
  }
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}

/* ---- the option reader ----------------------------------------------------- */

/* "fn: " or "" (the prefix of every message) */
#define FN_FMT "%s%s"
#define FN_ARGS(fn) (fn) ? (fn) : "", (fn) ? ": " : ""

/* the names of an enum, as `"a", "b" or "c"`, pushed */
static const char *push_names(lua_State *L, const char *const *names) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; names[i]; i++) {
    if (i) luaL_addstring(&b, names[i + 1] ? ", " : " or ");
    luaL_addchar(&b, '"');
    luaL_addstring(&b, names[i]);
    luaL_addchar(&b, '"');
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

static void set_default(const mm_lua_opt *o) {
  switch (o->type) {
    case MM_LUA_INT: *(lua_Integer *)o->out = (lua_Integer)o->def; break;
    case MM_LUA_NUM: *(lua_Number *)o->out = o->def; break;
    case MM_LUA_BOOL:
    case MM_LUA_ENUM: *(int *)o->out = (int)o->def; break;
    case MM_LUA_STR: *(const char **)o->out = o->sdef; break;
    case MM_LUA_ANY:
      if (o->out) *(int *)o->out = LUA_TNIL;
      break;
  }
}

static int has_range(const mm_lua_opt *o) { return o->lo <= o->hi; }

static lua_Integer read_int(lua_State *L, int v, const char *fn, const mm_lua_opt *o) {
  int ok = 0;
  lua_Integer x = 0;
  if (lua_type(L, v) == LUA_TNUMBER) x = lua_tointegerx(L, v, &ok);
  if (!ok)
    luaL_error(L, FN_FMT "option '%s' must be an integer, got %s", FN_ARGS(fn), o->key,
               lua_type(L, v) == LUA_TNUMBER ? "a fraction" : luaL_typename(L, v));
  if (has_range(o) && !((lua_Number)x >= o->lo && (lua_Number)x <= o->hi)) {
    if (o->hi >= (lua_Number)LUA_MAXINTEGER)
      luaL_error(L, FN_FMT "option '%s' must be >= %I, got %I", FN_ARGS(fn), o->key, (lua_Integer)o->lo, x);
    luaL_error(L, FN_FMT "option '%s' must be in %I..%I, got %I", FN_ARGS(fn), o->key, (lua_Integer)o->lo,
               (lua_Integer)o->hi, x);
  }
  return x;
}

static lua_Number read_num(lua_State *L, int v, const char *fn, const mm_lua_opt *o) {
  if (lua_type(L, v) != LUA_TNUMBER)
    luaL_error(L, FN_FMT "option '%s' must be a number, got %s", FN_ARGS(fn), o->key, luaL_typename(L, v));
  lua_Number x = lua_tonumber(L, v);
  if (isnan(x)) luaL_error(L, FN_FMT "option '%s' must be a number, got NaN", FN_ARGS(fn), o->key);
  if (has_range(o) && !(x >= o->lo && x <= o->hi)) {
    if (o->hi == HUGE_VAL)
      luaL_error(L, FN_FMT "option '%s' must be >= %f, got %f", FN_ARGS(fn), o->key, o->lo, x);
    luaL_error(L, FN_FMT "option '%s' must be in [%f, %f], got %f", FN_ARGS(fn), o->key, o->lo, o->hi, x);
  }
  return x;
}

static int read_enum(lua_State *L, int v, const char *fn, const mm_lua_opt *o) {
  if (lua_type(L, v) == LUA_TSTRING) {
    const char *s = lua_tostring(L, v);
    for (int i = 0; o->names[i]; i++)
      if (strcmp(s, o->names[i]) == 0) return i;
    luaL_error(L, FN_FMT "option '%s' must be %s, got \"%s\"", FN_ARGS(fn), o->key, push_names(L, o->names), s);
  }
  return luaL_error(L, FN_FMT "option '%s' must be %s, got %s", FN_ARGS(fn), o->key, push_names(L, o->names),
                    luaL_typename(L, v));
}

/* the value at v (not nil) into o->out, checked */
static void read_value(lua_State *L, int v, const char *fn, const mm_lua_opt *o) {
  switch (o->type) {
    case MM_LUA_INT: *(lua_Integer *)o->out = read_int(L, v, fn, o); break;
    case MM_LUA_NUM: *(lua_Number *)o->out = read_num(L, v, fn, o); break;
    case MM_LUA_BOOL:
      if (!lua_isboolean(L, v))
        luaL_error(L, FN_FMT "option '%s' must be a boolean, got %s", FN_ARGS(fn), o->key, luaL_typename(L, v));
      *(int *)o->out = lua_toboolean(L, v);
      break;
    case MM_LUA_STR:
      if (lua_type(L, v) != LUA_TSTRING)
        luaL_error(L, FN_FMT "option '%s' must be a string, got %s", FN_ARGS(fn), o->key, luaL_typename(L, v));
      *(const char **)o->out = lua_tostring(L, v); /* anchored by the option table */
      break;
    case MM_LUA_ENUM: *(int *)o->out = read_enum(L, v, fn, o); break;
    case MM_LUA_ANY:
      if (o->out) *(int *)o->out = lua_type(L, v);
      break;
  }
}

static int find_opt(const mm_lua_opt *opts, const char *key) {
  for (int i = 0; opts[i].key; i++)
    if (strcmp(opts[i].key, key) == 0) return i;
  return -1;
}

static int unknown_opt(lua_State *L, int kidx, const char *fn, const mm_lua_opt *opts) {
  luaL_Buffer b;
  const char *key = lua_type(L, kidx) == LUA_TSTRING ? lua_tostring(L, kidx) : NULL;
  if (!key) luaL_tolstring(L, kidx, NULL); /* [1], [true], ... */
  luaL_buffinit(L, &b);
  for (int i = 0; opts[i].key; i++) {
    if (i) luaL_addstring(&b, ", ");
    luaL_addstring(&b, opts[i].key);
  }
  luaL_pushresult(&b);
  if (key)
    return luaL_error(L, FN_FMT "unknown option '%s' (known: %s)", FN_ARGS(fn), key, lua_tostring(L, -1));
  return luaL_error(L, FN_FMT "options must be named: key [%s] is not a name (known: %s)", FN_ARGS(fn),
                    lua_tostring(L, -2), lua_tostring(L, -1));
}

unsigned mm_lua_readopts(lua_State *L, int idx, const char *fn, const mm_lua_opt *opts) {
  for (int i = 0; opts[i].key; i++) set_default(&opts[i]);
  if (lua_isnoneornil(L, idx)) return 0;
  if (!lua_istable(L, idx))
    luaL_error(L, FN_FMT "options (argument #%d) must be a table, got %s", FN_ARGS(fn), idx, luaL_typename(L, idx));
  idx = lua_absindex(L, idx);
  unsigned given = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int i = lua_type(L, -2) == LUA_TSTRING ? find_opt(opts, lua_tostring(L, -2)) : -1;
    if (i < 0) unknown_opt(L, lua_gettop(L) - 1, fn, opts);
    read_value(L, lua_gettop(L), fn, &opts[i]);
    if (i < 32) given |= 1u << i;
    lua_pop(L, 1);
  }
  return given;
}


/* -- tokenizer options ------------------------------------------------------- */

void mm_lua_tokopts(lua_State *L, int idx, const char *fn, const mm_lua_tokraw *r, mm_tokenize_opts *o) {
  if (r->preset && mm_tokenize_preset(r->preset, o))
    luaL_error(L, "%s: option 'tokenizer' must be \"plain\" or \"posts\", got \"%s\"", fn, r->preset);
  const struct {
    int v;
    int *dst;
  } flags[] = {{r->lowercase, &o->lowercase},   {r->keep_punct, &o->keep_punct},     {r->urls, &o->post.urls},
               {r->rt, &o->post.rt},             {r->hashtags, &o->post.hashtags},    {r->emoticons, &o->post.emoticons},
               {r->tones, &o->post.tones},       {r->elongation, &o->post.elongation}};
  for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
    if (flags[i].v >= 0) *flags[i].dst = flags[i].v;
  if (r->mentions == LUA_TNIL) return;
  idx = lua_absindex(L, idx);
  lua_getfield(L, idx, "mentions");
  if (lua_type(L, -1) == LUA_TBOOLEAN) {
    o->post.mentions = lua_toboolean(L, -1) ? MM_MENTION_USER : MM_MENTION_OFF;
  } else {
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    int found = -1;
    for (int k = 0; s && mm_mention_names[k]; k++)
      if (!strcmp(s, mm_mention_names[k])) found = k;
    if (found < 0)
      luaL_error(L, "%s: option 'mentions' must be \"user\", \"keep\", \"off\" or a boolean, got %s", fn,
                 s ? lua_pushfstring(L, "\"%s\"", s) : luaL_typename(L, -1));
    o->post.mentions = found;
  }
  lua_pop(L, 1);
}

void mm_lua_push_tokopts(lua_State *L, const mm_tokenize_opts *o) {
  const struct {
    const char *key;
    int v;
  } flags[] = {{"lowercase", o->lowercase},     {"keep_punct", o->keep_punct},       {"urls", o->post.urls},
               {"rt", o->post.rt},               {"hashtags", o->post.hashtags},      {"emoticons", o->post.emoticons},
               {"tones", o->post.tones},         {"elongation", o->post.elongation}};
  for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
    lua_pushboolean(L, flags[i].v);
    lua_setfield(L, -2, flags[i].key);
  }
  lua_pushstring(L, mm_mention_names[o->post.mentions >= 0 && o->post.mentions < MM_MENTION_COUNT ? o->post.mentions : 0]);
  lua_setfield(L, -2, "mentions");
}
