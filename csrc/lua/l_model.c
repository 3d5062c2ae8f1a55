/* l_model.c - Lua binding for the model area (placeholder until the area lands). */
#include "mm_lua.h"

void mm_lua_open_model(lua_State *L) { (void)L; }
