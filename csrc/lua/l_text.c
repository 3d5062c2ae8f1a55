/* l_text.c - Lua binding of the text area: tokenizer, vocabulary, bags,
 * pretrained word vectors (core.text; Lua face in lua/mmfuse/text.lua). */
#include <stdlib.h>
#include <string.h>

#include "../text/encoding.h"
#include "../text/ngram.h"
#include "../text/tokenize.h"
#include "../text/vectors.h"
#include "../text/vocab.h"
#include "mm_lua.h"

#define SCRATCH_MT "mmfuse.TextScratch"
/* a vocabulary: full userdata holding an mm_vocab * */
#define VOCAB_MT "mmfuse.Vocab"

/* C resources used while a binding runs; owned by a userdata so a Lua error
 * (bad element, out of memory) in the middle never leaks them. */
typedef struct scratch {
  mm_tokens toks;
  mm_csr csr;
  mm_counter *cnt;
  void *mem;
} scratch;

static int scratch_gc(lua_State *L) {
  scratch *s = luaL_checkudata(L, 1, SCRATCH_MT);
  mm_tokens_free(&s->toks);
  mm_csr_free(&s->csr);
  mm_counter_free(s->cnt);
  s->cnt = NULL;
  free(s->mem);
  s->mem = NULL;
  return 0;
}

static scratch *push_scratch(lua_State *L) {
  scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  mm_tokens_init(&s->toks);
  mm_csr_init(&s->csr);
  luaL_setmetatable(L, SCRATCH_MT);
  return s;
}

typedef struct vocab_ud {
  mm_vocab *v;
} vocab_ud;

static mm_vocab *checkvocab(lua_State *L, int idx) {
  vocab_ud *u = luaL_testudata(L, idx, VOCAB_MT);
  if (!u) luaL_argerror(L, idx, lua_pushfstring(L, "vocabulary expected, got %s", luaL_typename(L, idx)));
  if (!u->v) luaL_argerror(L, idx, "vocabulary was closed");
  return u->v;
}

static void push_vocab(lua_State *L, mm_vocab *v) {
  vocab_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->v = v;
  luaL_setmetatable(L, VOCAB_MT);
}


static void push_tokens(lua_State *L, const mm_tokens *t) {
  lua_createtable(L, (int)t->n, 0);
  for (int64_t i = 0; i < t->n; i++) {
    lua_pushlstring(L, t->buf + t->off[i], t->len[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static const char *check_text(lua_State *L, int idx, size_t *n) {
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_argerror(L, idx, lua_pushfstring(L, "text: string expected, got %s", luaL_typename(L, idx)));
  return lua_tolstring(L, idx, n);
}

/* core.text.tokenize(s [, {tokenizer="plain"|"posts", lowercase=true, keep_punct=false, urls=, mentions=, rt=,
 * hashtags=, emoticons=, tones=, elongation=}]) -> {tokens} (mm_lua.h: MM_OPT_TOKENIZER) */
static int l_tokenize(lua_State *L) {
  size_t n;
  const char *s = check_text(L, 1, &n);
  mm_tokenize_opts o = mm_tokenize_defaults();
  mm_lua_tokraw raw;
  const mm_lua_opt opts[] = {MM_OPT_TOKENIZER(&raw), MM_OPT_END};
  mm_lua_readopts(L, 2, "tokenize", opts);
  mm_lua_tokopts(L, 2, "tokenize", &raw, &o);
  scratch *z = push_scratch(L);
  mm_err e = {0};
  if (mm_tokenize_buffer(s, n, &o, &z->toks, &e)) return mm_lua_raise(L, &e);
  push_tokens(L, &z->toks);
  return 1;
}

/* Fill z->toks from element i of the table at idx: a string (tokenized with
 * o), a token list (copied), or false (no text). Raises on anything else. */
static void element_tokens(lua_State *L, int idx, lua_Integer i, const char *argname, const mm_tokenize_opts *o,
                           scratch *z) {
  mm_err e = {0};
  mm_tokens_clear(&z->toks);
  int t = lua_geti(L, idx, i);
  if (t == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    if (mm_tokenize_buffer(s, n, o, &z->toks, &e)) mm_lua_raise(L, &e);
  } else if (t == LUA_TTABLE) {
    lua_Integer m = luaL_len(L, -1);
    for (lua_Integer j = 1; j <= m; j++) {
      if (lua_geti(L, -1, j) != LUA_TSTRING)
        luaL_error(L, "%s[%d][%d]: token (string) expected, got %s", argname, (int)i, (int)j, luaL_typename(L, -1));
      size_t n;
      const char *w = lua_tolstring(L, -1, &n);
      if (n == 0) luaL_error(L, "%s[%d][%d]: empty token", argname, (int)i, (int)j);
      if (memchr(w, 0, n)) luaL_error(L, "%s[%d][%d]: token contains a NUL byte", argname, (int)i, (int)j);
      if (mm_tokens_push(&z->toks, w, n, &e)) mm_lua_raise(L, &e);
      lua_pop(L, 1);
    }
  } else if (!(t == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
    luaL_error(L, "%s[%d]: text (string), token list (table) or false expected, got %s", argname, (int)i,
               luaL_typename(L, -1));
  }
  lua_pop(L, 1);
}

static lua_Integer check_list(lua_State *L, int idx, const char *name) {
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_argerror(L, idx, lua_pushfstring(L, "%s: table of texts expected, got %s", name, luaL_typename(L, idx)));
  return luaL_len(L, idx);
}

/* the vocabulary options at idx (the core checks their ranges) */
static mm_vocab_opts vocab_opts(lua_State *L, int idx, const char *fn) {
  mm_vocab_opts o = mm_vocab_defaults();
  lua_Integer min_count, max_size, ngrams, buckets;
  mm_lua_tokraw raw;
  const mm_lua_opt opts[] = {MM_OPT_INT("min_count", &min_count, o.min_count),
                             MM_OPT_INT("max_size", &max_size, o.max_size),
                             MM_OPT_INT("ngrams", &ngrams, o.ngrams),
                             MM_OPT_INT("buckets", &buckets, o.buckets),
                             MM_OPT_ENUM("unk", &o.unk, o.unk, mm_vocab_unk_names),
                             MM_OPT_TOKENIZER(&raw),
                             MM_OPT_END};
  mm_lua_readopts(L, idx, fn, opts);
  mm_lua_tokopts(L, idx, fn, &raw, &o.tok);
  o.min_count = min_count, o.max_size = max_size, o.ngrams = ngrams, o.buckets = buckets;
  return o;
}

/* core.text.vocab(texts, opts) -> vocabulary; texts: strings / token lists */
static int l_vocab(lua_State *L) {
  lua_Integer n = check_list(L, 1, "texts");
  mm_vocab_opts o = vocab_opts(L, 2, "vocab");
  mm_err e = {0};
  scratch *z = push_scratch(L);
  z->cnt = mm_counter_new(&e);
  if (!z->cnt) return mm_lua_raise(L, &e);
  for (lua_Integer i = 1; i <= n; i++) {
    element_tokens(L, 1, i, "texts", &o.tok, z);
    for (int64_t k = 0; k < z->toks.n; k++)
      if (mm_counter_add(z->cnt, z->toks.buf + z->toks.off[k], z->toks.len[k], &e)) return mm_lua_raise(L, &e);
  }
  mm_vocab *v = mm_vocab_build(z->cnt, &o, &e);
  if (!v) return mm_lua_raise(L, &e);
  push_vocab(L, v);
  return 1;
}

/* core.text.vocab_from_words(words, opts) -> vocabulary (restore a saved one) */
static int l_vocab_from_words(lua_State *L) {
  lua_Integer n = check_list(L, 1, "words");
  mm_vocab_opts o = vocab_opts(L, 2, "vocab_from_words");
  scratch *z = push_scratch(L);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_geti(L, 1, i) != LUA_TSTRING)
      return luaL_error(L, "words[%d]: string expected, got %s", (int)i, luaL_typename(L, -1));
    size_t len;
    const char *w = lua_tolstring(L, -1, &len);
    mm_err e = {0};
    if (mm_tokens_push(&z->toks, w, len, &e)) return mm_lua_raise(L, &e);
    lua_pop(L, 1);
  }
  const char **ws = malloc((size_t)(n ? n : 1) * sizeof *ws);
  if (!ws) return luaL_error(L, "vocab_from_words: out of memory");
  z->mem = ws;
  for (lua_Integer i = 0; i < n; i++) ws[i] = z->toks.buf + z->toks.off[i];
  mm_err e = {0};
  mm_vocab *v = mm_vocab_from_words(ws, z->toks.len, (int64_t)n, &o, &e);
  if (!v) return mm_lua_raise(L, &e);
  push_vocab(L, v);
  return 1;
}

/* -- vocabulary methods ------------------------------------------------------ */
static int v_size(lua_State *L) {
  lua_pushinteger(L, mm_vocab_size(checkvocab(L, 1)));
  return 1;
}

static int v_rows(lua_State *L) {
  lua_pushinteger(L, mm_vocab_rows(checkvocab(L, 1)));
  return 1;
}

static int v_words(lua_State *L) {
  mm_vocab *v = checkvocab(L, 1);
  int64_t n = mm_vocab_size(v);
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    size_t len;
    const char *w = mm_vocab_word(v, i, &len);
    lua_pushlstring(L, w, len);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int v_counts(lua_State *L) {
  mm_vocab *v = checkvocab(L, 1);
  int64_t n = mm_vocab_size(v);
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    lua_pushinteger(L, mm_vocab_count(v, i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* v:id(word) -> 1-based id, or nil when absent (no unk rule) */
static int v_id(lua_State *L) {
  mm_vocab *v = checkvocab(L, 1);
  size_t n;
  const char *w = luaL_checklstring(L, 2, &n);
  int64_t id = mm_vocab_find(v, w, n);
  if (id < 0) lua_pushnil(L);
  else lua_pushinteger(L, id + 1);
  return 1;
}

/* v:word(id) -> word of 1-based id */
static int v_word(lua_State *L) {
  mm_vocab *v = checkvocab(L, 1);
  lua_Integer id = luaL_checkinteger(L, 2);
  size_t n;
  const char *w = mm_vocab_word(v, id - 1, &n);
  if (!w)
    return luaL_argerror(L, 2, lua_pushfstring(L, "id %d out of range 1..%d", (int)id, (int)mm_vocab_size(v)));
  lua_pushlstring(L, w, n);
  return 1;
}

static int v_options(lua_State *L) {
  mm_vocab *v = checkvocab(L, 1);
  const mm_vocab_opts *o = mm_vocab_options(v);
  lua_createtable(L, 0, 14);
  lua_pushinteger(L, o->min_count);
  lua_setfield(L, -2, "min_count");
  lua_pushinteger(L, o->max_size);
  lua_setfield(L, -2, "max_size");
  lua_pushstring(L, mm_vocab_unk_names[o->unk]);
  lua_setfield(L, -2, "unk");
  lua_pushinteger(L, o->ngrams);
  lua_setfield(L, -2, "ngrams");
  lua_pushinteger(L, o->buckets);
  lua_setfield(L, -2, "buckets");
  mm_lua_push_tokopts(L, &o->tok);
  return 1;
}

/* v:tokenize(s) with the vocabulary's tokenizer options */
static int v_tokenize(lua_State *L) {
  mm_vocab *v = checkvocab(L, 1);
  size_t n;
  const char *s = check_text(L, 2, &n);
  scratch *z = push_scratch(L);
  mm_err e = {0};
  if (mm_tokenize_buffer(s, n, &mm_vocab_options(v)->tok, &z->toks, &e)) return mm_lua_raise(L, &e);
  push_tokens(L, &z->toks);
  return 1;
}

/* v:encode(texts) -> ids, offsets, missing (Lua arrays):
 *   ids: 1-based embedding rows (words, then n-grams), offsets: n+1 0-based
 *   CSR offsets (bag i = ids[offsets[i]+1 .. offsets[i+1]]), missing[i]: true
 *   when bag i is empty. A single string is encoded as a batch of one. */
static int v_encode(lua_State *L) {
  mm_vocab *v = checkvocab(L, 1);
  const mm_tokenize_opts *to = &mm_vocab_options(v)->tok;
  int single = lua_type(L, 2) == LUA_TSTRING || (lua_type(L, 2) == LUA_TBOOLEAN && !lua_toboolean(L, 2));
  if (single) { /* wrap into {s} */
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 1);
    lua_replace(L, 2);
  }
  lua_Integer n = check_list(L, 2, "texts");
  scratch *z = push_scratch(L);
  mm_err e = {0};
  if (n == 0) { /* a valid empty CSR */
    lua_newtable(L);
    lua_createtable(L, 1, 0);
    lua_pushinteger(L, 0);
    lua_rawseti(L, -2, 1);
    lua_newtable(L);
    return 3;
  }
  /* a batch of plain texts goes through mm_vocab_encode (the C entry the
   * model uses); token lists are encoded one by one */
  int plain = 1;
  for (lua_Integer i = 1; i <= n && plain; i++) {
    int t = lua_geti(L, 2, i);
    plain = t == LUA_TSTRING || (t == LUA_TBOOLEAN && !lua_toboolean(L, -1));
    lua_pop(L, 1);
  }
  if (plain) {
    z->mem = malloc((size_t)n * (sizeof(const char *) + sizeof(size_t)));
    if (!z->mem) return luaL_error(L, "encode: out of memory");
    const char **texts = z->mem;
    size_t *lens = (size_t *)(texts + n);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, 2, i); /* strings stay anchored by the texts table */
      texts[i - 1] = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &lens[i - 1]) : NULL;
      if (!texts[i - 1]) lens[i - 1] = 0;
      lua_pop(L, 1);
    }
    if (mm_vocab_encode(v, texts, lens, (int64_t)n, &z->csr, &e)) return mm_lua_raise(L, &e);
  } else {
    for (lua_Integer i = 1; i <= n; i++) {
      element_tokens(L, 2, i, "texts", to, z);
      if (mm_vocab_encode_tokens(v, &z->toks, &z->csr, &e)) return mm_lua_raise(L, &e);
    }
  }
  mm_csr *c = &z->csr;
  lua_createtable(L, (int)c->nids, 0);
  for (int64_t i = 0; i < c->nids; i++) {
    lua_pushinteger(L, c->ids[i] + 1);
    lua_rawseti(L, -2, i + 1);
  }
  lua_createtable(L, (int)c->n + 1, 0);
  for (int64_t i = 0; i <= c->n; i++) {
    lua_pushinteger(L, c->offsets[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_createtable(L, (int)c->n, 0);
  for (int64_t i = 0; i < c->n; i++) {
    lua_pushboolean(L, c->missing[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 3;
}

static int v_tostring(lua_State *L) {
  vocab_ud *u = luaL_checkudata(L, 1, VOCAB_MT);
  if (!u->v) {
    lua_pushliteral(L, "Vocab(closed)");
    return 1;
  }
  const mm_vocab_opts *o = mm_vocab_options(u->v);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "Vocab(%d words%s, ngrams=%d", (int)mm_vocab_size(u->v), o->unk ? " incl. <unk>" : "",
                  (int)o->ngrams);
  luaL_addvalue(&b);
  if (o->ngrams > 1) {
    lua_pushfstring(L, ", buckets=%d, rows=%d", (int)o->buckets, (int)mm_vocab_rows(u->v));
    luaL_addvalue(&b);
  }
  lua_pushfstring(L, ", min_count=%d, unknown=%s", (int)o->min_count, mm_vocab_unk_names[o->unk]);
  luaL_addvalue(&b);
  int64_t n = mm_vocab_size(u->v), shown = 0;
  if (n > (o->unk ? 1 : 0)) luaL_addstring(&b, "; top:");
  for (int64_t i = o->unk ? 1 : 0; i < n && shown < 8; i++, shown++) {
    size_t len;
    const char *w = mm_vocab_word(u->v, i, &len);
    luaL_addchar(&b, ' ');
    luaL_addlstring(&b, w, len > 40 ? 40 : len);
  }
  if (n - (o->unk ? 1 : 0) > shown) luaL_addstring(&b, " ...");
  luaL_addchar(&b, ')');
  luaL_pushresult(&b);
  return 1;
}

static int v_gc(lua_State *L) {
  vocab_ud *u = luaL_checkudata(L, 1, VOCAB_MT);
  mm_vocab_free(u->v);
  u->v = NULL;
  return 0;
}

/* -- word vectors ------------------------------------------------------------- */
/* the options {format = "auto" | "glove" | ...} at idx */
static mm_vec_format check_format(lua_State *L, int idx, const char *fn) {
  int fmt;
  const mm_lua_opt opts[] = {MM_OPT_ENUM("format", &fmt, MM_VEC_AUTO, mm_vec_format_names), MM_OPT_END};
  mm_lua_readopts(L, idx, fn, opts);
  return (mm_vec_format)fmt;
}

/* core.text.probe_vectors(path [, {format=}]) -> {dim=, format=} */
static int l_probe_vectors(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  mm_vec_format fmt = check_format(L, 2, "probe_vectors");
  mm_vec_stats st;
  mm_err e = {0};
  if (mm_vectors_probe(path, fmt, &st, &e)) return mm_lua_raise(L, &e);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, st.dim);
  lua_setfield(L, -2, "dim");
  lua_pushstring(L, mm_vec_format_name(st.format));
  lua_setfield(L, -2, "format");
  return 1;
}

/* core.text.load_vectors(path, vocab, tensor_or_nil [, {format=}])
 *   -> tensor, {found=, total=, coverage=, dim=, format=, file_words=, missing={words}} */
static int l_load_vectors(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  mm_vocab *v = checkvocab(L, 2);
  mm_vec_format fmt = check_format(L, 4, "load_vectors");
  mm_tensor *out;
  mm_err e = {0};
  if (lua_isnoneornil(L, 3)) {
    mm_vec_stats st;
    if (mm_vectors_probe(path, fmt, &st, &e)) return mm_lua_raise(L, &e);
    int64_t shape[2] = {mm_vocab_size(v), st.dim};
    out = mm_lua_newtensor(L, 2, shape);
  } else {
    out = mm_lua_checktensor(L, 3, "tensor");
    lua_pushvalue(L, 3);
  }
  int top = lua_gettop(L);
  scratch *z = push_scratch(L);
  int64_t V = mm_vocab_size(v);
  z->mem = calloc((size_t)(V ? V : 1), 1);
  if (!z->mem) return luaL_error(L, "load_vectors: out of memory");
  mm_vec_stats st;
  if (mm_vectors_load(path, fmt, v, out, z->mem, &st, &e)) return mm_lua_raise(L, &e);
  lua_createtable(L, 0, 7);
  lua_pushinteger(L, st.found);
  lua_setfield(L, -2, "found");
  lua_pushinteger(L, st.total);
  lua_setfield(L, -2, "total");
  lua_pushnumber(L, st.total ? (lua_Number)st.found / (lua_Number)st.total : 0.0);
  lua_setfield(L, -2, "coverage");
  lua_pushinteger(L, st.dim);
  lua_setfield(L, -2, "dim");
  lua_pushstring(L, mm_vec_format_name(st.format));
  lua_setfield(L, -2, "format");
  lua_pushinteger(L, st.file_words);
  lua_setfield(L, -2, "file_words");
  /* found mask as a Lua array of booleans (1-based ids) */
  lua_createtable(L, (int)V, 0);
  const uint8_t *mask = z->mem;
  for (int64_t i = 0; i < V; i++) {
    lua_pushboolean(L, mask[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "found_mask");
  lua_pushvalue(L, top);
  lua_insert(L, -2);
  return 2;
}


/* text.decode(bytes [, encodings]) -> UTF-8 string, encoding name, bom
 * encodings: an array of "utf-8", "gb18030", "latin-1" tried in order
 * (default all three in that order); bom: true when a UTF-8 byte order mark
 * was dropped. An error when no encoding of the list accepts the bytes. */
static int l_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int encs[8] = {MM_ENC_UTF8, MM_ENC_GB18030, MM_ENC_LATIN1}, nenc = 3;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 2);
    if (n < 1 || n > 8) return luaL_error(L, "text.decode: encodings must list 1..8 names, got %d", (int)n);
    nenc = (int)n;
    for (int k = 0; k < nenc; k++) {
      lua_rawgeti(L, 2, k + 1);
      const char *nm = lua_tostring(L, -1);
      int found = -1;
      for (int j = 0; nm && j < MM_ENC_COUNT; j++)
        if (!strcmp(nm, mm_encoding_names[j])) found = j;
      if (found < 0)
        return luaL_error(L, "text.decode: unknown encoding '%s' (known: utf-8, gb18030, latin-1)",
                          nm ? nm : luaL_typename(L, -1));
      encs[k] = found;
      lua_pop(L, 1);
    }
  }
  void **owned = mm_lua_newowner(L);
  char *out;
  size_t outlen;
  int used, bom;
  mm_err e;
  if (mm_text_decode((const uint8_t *)s, len, encs, nenc, "text.decode", &out, &outlen, &used, &bom, &e))
    return mm_lua_raise(L, &e);
  *owned = out;
  lua_pushlstring(L, out, outlen);
  lua_pushstring(L, mm_encoding_names[used]);
  lua_pushboolean(L, bom);
  return 3;
}

void mm_lua_open_text(lua_State *L) {
  luaL_newmetatable(L, SCRATCH_MT);
  lua_pushcfunction(L, scratch_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  static const luaL_Reg methods[] = {{"size", v_size},         {"rows", v_rows},       {"words", v_words},
                                     {"counts", v_counts},     {"id", v_id},           {"word", v_word},
                                     {"options", v_options},   {"tokenize", v_tokenize}, {"encode", v_encode},
                                     {NULL, NULL}};
  luaL_newmetatable(L, VOCAB_MT);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, v_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, v_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, v_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, v_size);
  lua_setfield(L, -2, "__len");
  lua_pushliteral(L, "Vocab");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);

  static const luaL_Reg fns[] = {{"tokenize", l_tokenize},
                                 {"vocab", l_vocab},
                                 {"vocab_from_words", l_vocab_from_words},
                                 {"load_vectors", l_load_vectors},
                                 {"probe_vectors", l_probe_vectors},
                                 {"decode", l_decode},
                                 {NULL, NULL}};
  mm_lua_subtable(L, "text", fns);
}
