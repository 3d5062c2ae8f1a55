/* l_image.c - Lua binding for the image area (placeholder until the area lands). */
#include "mm_lua.h"

void mm_lua_open_image(lua_State *L) { (void)L; }
