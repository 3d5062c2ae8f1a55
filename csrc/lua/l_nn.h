/* l_nn.h - what the files of the nn binding share (private to csrc/lua/l_nn*.c).
 *
 * Conventions of core.nn (the Lua face lua/mmfuse/nn.lua documents them):
 *  - arguments follow torch.nn.functional, weights in PyTorch's layouts;
 *  - tensors may be given as tensors or nested Lua tables;
 *  - <op>_backward(<inputs>, grad_out[, opts]) returns the gradient of each
 *    differentiable input in order (parameter grads start from zero);
 *  - labels and ids are 1-based; C kernels get 0-based int64;
 *  - every bad argument is a Lua error "<op>: <argument> ... (shapes)";
 *  - scratch memory is Lua userdata, so an error never leaks it;
 *  - every entry point sees exactly NN_NARGS stack slots (missing arguments
 *    are nil), so argument indices stay valid while scratch userdata and
 *    results are pushed above them.
 */
#ifndef MM_L_NN_H
#define MM_L_NN_H

#include "mm_lua.h"

#define NN_NARGS 8
#define SH(t) mm_lua_shapestr(t)

/* ---- arguments (l_nn_args.c) ------------------------------------------------------ */
/* a tensor (or a nested table, converted in place) at idx; opt_: NULL when nil */
mm_tensor *nn_tensor(lua_State *L, int idx, const char *name);
mm_tensor *nn_opt_tensor(lua_State *L, int idx, const char *name);
/* zeroed scratch memory owned by a userdata pushed on the stack */
void *nn_scratch(lua_State *L, size_t bytes);
float *nn_fscratch(lua_State *L, int64_t n);
/* a zeroed tensor shaped like t pushed on the stack (its gradient); returns
 * its stack index, or 0 (nothing pushed, *g = NULL) when t is NULL */
int nn_grad_like(lua_State *L, const mm_tensor *t, mm_tensor **g);
/* push the values at the absolute indices idx[0..n) (0: nil) and return n */
int nn_return(lua_State *L, int n, const int *idx);
/* grad_out of a loss: a number (default 1) or a one-element tensor */
float nn_grad_scalar(lua_State *L, int idx, const char *fn);
/* a list of integers (a sequence or a tensor read flat) as int64 scratch; *n its length */
int64_t *nn_int_list(lua_State *L, int idx, const char *fn, const char *name, int64_t *n);
/* class labels 1..c (c = 0: any) for n rows -> 0-based int64 scratch; what / x
 * name the input the labels go with in messages */
int64_t *nn_labels(lua_State *L, int idx, int64_t n, int64_t c, const char *fn, const char *what, const mm_tensor *x);
/* presence mask [rows] (cols = 0) or [rows, cols]: a tensor or a (nested)
 * table of booleans / numbers (non-zero = present), as uint8 scratch */
uint8_t *nn_mask(lua_State *L, int idx, int64_t rows, int64_t cols, const char *fn, const char *name, const char *what,
                 const mm_tensor *x);
/* "fn: nb has shape S but na has shape T" unless a and b have the same shape */
void nn_same_shape(lua_State *L, const mm_tensor *a, const mm_tensor *b, const char *fn, const char *na, const char *nb);

/* ---- the functions of each file, registered by mm_lua_open_nn (l_nn.c) ------------ */
extern const luaL_Reg mm_lua_nn_conv[]; /* l_nn_conv.c: convolution and pooling */
extern const luaL_Reg mm_lua_nn_loss[]; /* l_nn_loss.c: losses and cosine similarity */

#endif
