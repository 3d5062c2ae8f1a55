rockspec_format = "3.0"
package = "mmfuse"
version = "scm-1"
-- `luarocks make` (how this rock is built and installed: from a checkout, see
-- README) builds the directory it runs in and never fetches source.url; "."
-- is that checkout, whatever its path.
source = {
   url = "git+file://.",
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
   -- luarocks' CFLAGS (-O2 -fPIC) replace the Makefile's default -O2 -g; the
   -- flags the code relies on (MMFLAGS: -fno-math-errno -ftree-vectorize) are
   -- added by the Makefile to any CFLAGS
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
