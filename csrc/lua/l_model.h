/* l_model.h - what the two files of the model binding share: the model
 * userdata (l_model.c) and its file functions (l_model_file.c), both in
 * core.fusion. */
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

#endif
