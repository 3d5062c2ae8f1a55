rockspec_format = "3.0"
package = "mmfuse"
version = "scm-1"
source = {
   url = "git+file:///work/main",
}
description = {
   summary = "Multimodal (text + image) classification of social-media posts, with a C core",
   detailed = [[
mmfuse classifies posts from their text and their image and keeps working when
one of them is missing: unimodal baselines, early and late fusion, joint
(pooling) fusion and common-space fusion with an auxiliary ranking loss, after
Duong, Lebret & Aberer (ECML-PKDD 2017).
]],
   license = "MIT",
}
-- lua-cjson and busted come from Debian (lua-cjson, lua-busted); they are not
-- declared here because declaring them makes luarocks go online.
dependencies = {
   "lua >= 5.4",
}
external_dependencies = {
   OPENBLAS = { library = "openblas" },
   STB = { header = "stb/stb_image.h" },
}
build = {
   type = "make",
   build_target = "all",
   build_variables = {
      CFLAGS = "$(CFLAGS)",
      LUA_INC = "$(LUA_INCDIR)",
   },
   install_target = "install",
   install_variables = {
      LUADIR = "$(LUADIR)",
      LIBDIR = "$(LIBDIR)",
      BINDIR = "$(BINDIR)",
   },
}
test = {
   type = "command",
   command = "make test",
}
