/* l_text.c - Lua binding for the text area (placeholder until the area lands). */
#include "mm_lua.h"

void mm_lua_open_text(lua_State *L) { (void)L; }
