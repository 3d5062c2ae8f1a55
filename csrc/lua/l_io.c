/* l_io.c - Lua binding for the io area (placeholder until the area lands). */
#include "mm_lua.h"

void mm_lua_open_io(lua_State *L) { (void)L; }
