/* l_data.c - Lua binding for the data area (placeholder until the area lands). */
#include "mm_lua.h"

void mm_lua_open_data(lua_State *L) { (void)L; }
