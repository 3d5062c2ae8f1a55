/* l_nn.c - Lua binding for the nn area (placeholder until the area lands). */
#include "mm_lua.h"

void mm_lua_open_nn(lua_State *L) { (void)L; }
