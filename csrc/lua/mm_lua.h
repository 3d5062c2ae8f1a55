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

/* -- errors --------------------------------------------------------------- */
int mm_lua_raise(lua_State *L, const mm_err *e);
/* raise if any element is NaN or +-Inf: "<fn>: <name> contains NaN at index i" */
void mm_lua_checkfinite(lua_State *L, const mm_tensor *t, const char *fn, const char *name);

/* -- option tables (argument idx may be nil/none) ------------------------- */
lua_Integer mm_lua_optintfield(lua_State *L, int idx, const char *key, lua_Integer def);
lua_Number mm_lua_optnumfield(lua_State *L, int idx, const char *key, lua_Number def);
int mm_lua_optboolfield(lua_State *L, int idx, const char *key, int def);
/* the returned string stays valid while the option table is alive */
const char *mm_lua_optstrfield(lua_State *L, int idx, const char *key, const char *def);

/* set the functions of `fns` into the table at the top of the stack */
void mm_lua_setfuncs(lua_State *L, const luaL_Reg *fns);
/* create core[name] = {} filled with fns (leaves stack balanced) */
void mm_lua_subtable(lua_State *L, const char *name, const luaL_Reg *fns);

/* -- area openers (one per l_*.c) ------------------------------------------ */
void mm_lua_open_tensor(lua_State *L);
void mm_lua_open_nn(lua_State *L);
void mm_lua_open_text(lua_State *L);
void mm_lua_open_image(lua_State *L);
void mm_lua_open_tfjs(lua_State *L);
void mm_lua_open_io(lua_State *L);
void mm_lua_open_data(lua_State *L);
void mm_lua_open_model(lua_State *L);

#endif
