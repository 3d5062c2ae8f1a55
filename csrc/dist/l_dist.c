/* l_dist.c - the Lua module mmfuse.dist (build/mmfuse/dist.so, linked against
 * Open MPI): requiring it joins the MPI job (comm_mpi.h says how the job ends).
 *
 *   dist.rank, dist.size, dist.host   this process, the job's size, its host
 *   dist.comm                         the communicator model:fit / evaluate /
 *                                     predict take (comm.h, a userdata)
 *   dist.barrier()
 *   dist.allreduce({x, ...}, "sum"|"min"|"max") -> {x, ...} (doubles, every process the same)
 *   dist.any(flag) -> true when any process passed a true flag
 *   dist.bcast(s, root) -> root's string s on every process
 *   dist.send(s, dest [, tag]), dist.recv(source [, tag]) -> s
 *   dist.stats() -> {calls, bytes, allreduce_bytes, gather_bytes, bcast_bytes, p2p_bytes, seconds}
 *   dist.reset_stats()
 * Every function but stats is collective or point to point as MPI's is;
 * failures raise a Lua error with MPI's message. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "comm_mpi.h"

typedef struct lcomm {
  mm_comm c; /* first: the core reads the userdata's block as an mm_comm */
} lcomm;

static int raise_err(lua_State *L, const mm_err *e) { return luaL_error(L, "%s", e->msg); }

static int l_barrier(lua_State *L) {
  mm_err e = {0};
  if (mm_mpi_barrier(&e)) return raise_err(L, &e);
  return 0;
}

static int check_op(lua_State *L, int idx) {
  static const char *const ops[] = {"sum", "min", "max", NULL};
  static const int codes[] = {MM_COMM_SUM, MM_COMM_MIN, MM_COMM_MAX};
  return codes[luaL_checkoption(L, idx, "sum", ops)];
}

static int l_allreduce(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int op = check_op(L, 2);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  double *v = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *v, 0);
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, 1, i + 1);
    int ok = 0;
    v[i] = lua_tonumberx(L, -1, &ok);
    if (!ok) return luaL_error(L, "dist.allreduce: value %d is not a number", (int)i + 1);
    lua_pop(L, 1);
  }
  mm_err e = {0};
  if (mm_mpi_allreduce(v, n, MM_COMM_F64, op, &e)) return raise_err(L, &e);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 0; i < n; i++) {
    lua_pushnumber(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int l_any(lua_State *L) {
  int64_t v = lua_toboolean(L, 1);
  mm_err e = {0};
  if (mm_mpi_allreduce(&v, 1, MM_COMM_I64, MM_COMM_MAX, &e)) return raise_err(L, &e);
  lua_pushboolean(L, v != 0);
  return 1;
}

static int check_rank(lua_State *L, int idx, int size) {
  lua_Integer r = luaL_checkinteger(L, idx);
  luaL_argcheck(L, r >= 0 && r < size, idx, "not a rank of the job");
  return (int)r;
}

static int l_bcast(lua_State *L) {
  lua_getfield(L, lua_upvalueindex(1), "size");
  int size = (int)lua_tointeger(L, -1), rank;
  lua_getfield(L, lua_upvalueindex(1), "rank");
  rank = (int)lua_tointeger(L, -1);
  lua_pop(L, 2);
  int root = check_rank(L, 2, size);
  size_t len = 0;
  const char *s = rank == root ? luaL_checklstring(L, 1, &len) : NULL;
  int64_t n = (int64_t)len;
  mm_err e = {0};
  if (mm_mpi_bcast(&n, sizeof n, root, &e)) return raise_err(L, &e);
  char *buf = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1), 0);
  if (rank == root) memcpy(buf, s, (size_t)n);
  if (mm_mpi_bcast(buf, n, root, &e)) return raise_err(L, &e);
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

static int l_send(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_getfield(L, lua_upvalueindex(1), "size");
  int size = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  int dest = check_rank(L, 2, size);
  int tag = (int)luaL_optinteger(L, 3, 0);
  mm_err e = {0};
  if (mm_mpi_send(s, (int64_t)len, dest, tag, &e)) return raise_err(L, &e);
  return 0;
}

static int l_recv(lua_State *L) {
  lua_getfield(L, lua_upvalueindex(1), "size");
  int size = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  int src = check_rank(L, 1, size);
  int tag = (int)luaL_optinteger(L, 2, 0);
  void *buf = NULL;
  int64_t n = 0;
  mm_err e = {0};
  if (mm_mpi_recv(src, tag, &buf, &n, &e)) return raise_err(L, &e);
  lua_pushlstring(L, buf, (size_t)n);
  free(buf);
  return 1;
}

static int l_stats(lua_State *L) {
  const mm_mpi_stats *s = mm_mpi_stats_of();
  lua_createtable(L, 0, 7);
  lua_pushinteger(L, s->calls), lua_setfield(L, -2, "calls");
  lua_pushinteger(L, s->bytes), lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, s->allreduce_bytes), lua_setfield(L, -2, "allreduce_bytes");
  lua_pushinteger(L, s->gather_bytes), lua_setfield(L, -2, "gather_bytes");
  lua_pushinteger(L, s->bcast_bytes), lua_setfield(L, -2, "bcast_bytes");
  lua_pushinteger(L, s->p2p_bytes), lua_setfield(L, -2, "p2p_bytes");
  lua_pushnumber(L, s->seconds), lua_setfield(L, -2, "seconds");
  return 1;
}

static int l_reset_stats(lua_State *L) {
  (void)L;
  memset(mm_mpi_stats_of(), 0, sizeof(mm_mpi_stats));
  return 0;
}

static int comm_tostring(lua_State *L) {
  const lcomm *u = luaL_checkudata(L, 1, MM_COMM_MT);
  lua_pushfstring(L, "mmfuse.Comm (rank %d of %d)", u->c.rank, u->c.size);
  return 1;
}

__attribute__((visibility("default"))) int luaopen_mmfuse_dist(lua_State *L) {
  int rank, size;
  mm_err e = {0};
  if (mm_mpi_start(&rank, &size, &e)) return raise_err(L, &e);
  static const luaL_Reg fns[] = {{"barrier", l_barrier}, {"allreduce", l_allreduce}, {"any", l_any},
                                 {"bcast", l_bcast},     {"send", l_send},           {"recv", l_recv},
                                 {"stats", l_stats},     {"reset_stats", l_reset_stats}, {NULL, NULL}};
  lua_newtable(L);
  lua_pushinteger(L, rank), lua_setfield(L, -2, "rank");
  lua_pushinteger(L, size), lua_setfield(L, -2, "size");
  char host[256];
  mm_mpi_host(host, (int)sizeof host);
  lua_pushstring(L, host), lua_setfield(L, -2, "host");
  lcomm *u = lua_newuserdatauv(L, sizeof *u, 0);
  mm_mpi_comm(&u->c, rank, size);
  if (luaL_newmetatable(L, MM_COMM_MT)) {
    lua_pushcfunction(L, comm_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "comm");
  lua_pushvalue(L, -1);
  luaL_setfuncs(L, fns, 1); /* upvalue: the module table (rank, size) */
  return 1;
}
