/* l_model.h - what the files of the model binding share: the model
 * userdata (l_model.c), its file functions (l_model_file.c) and its
 * parameters (l_model_params.c), all in core.fusion. */
#ifndef MM_L_MODEL_H
#define MM_L_MODEL_H

#include "../model/model.h"
#include "mm_lua.h"

#define MM_MODEL_MT "mmfuse.Model"

typedef struct mm_lua_model {
  mm_model *M;
} mm_lua_model;

/* the open model at idx, or a Lua error */
mm_model *mm_lua_checkmodel(lua_State *L, int idx);
/* the file functions (save, read, load_weights, load_vectors, vocab) into the
 * table on top of the stack, and the model-file metatable */
void mm_lua_open_model_file(lua_State *L);
/* the parameter functions (params, param, set_param, freeze, snapshot,
 * restore, loss_grad, grad) into the table on top of the stack */
void mm_lua_open_model_params(lua_State *L);
/* a new list {v[1], ..., v[n]} on the stack */
void mm_lua_push_ints(lua_State *L, const int64_t *v, int n);

#endif
