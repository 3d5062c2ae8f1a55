# mmfuse - build, test, demo, bench, fuzz, deps.
# `make` builds build/mmfuse/core.so. Every csrc/**/*.c is part of the module
# (no list to keep in sync) except csrc/dist, the MPI module (mk/dist.mk:
# build/mmfuse/dist.so, built when Open MPI is installed); areas add their own
# targets in mk/*.mk.

LUA      ?= lua5.4
CC       ?= gcc
LUA_INC  ?= /usr/include/lua5.4
BUSTED   ?= $(LUA) /usr/bin/busted
PYTHON   ?= /usr/bin/python3

WARN     := -Wall -Wextra -Werror -Wno-unused-parameter
CSTD     := -std=c11 -D_GNU_SOURCE
INCS     := -I$(LUA_INC) -Icsrc
# CFLAGS may be replaced (luarocks passes its own); MMFLAGS is always added:
# sqrtf/expf inline without errno, loops vectorised at -O2
CFLAGS   ?= -O2 -g
MMFLAGS  := -fno-math-errno -ftree-vectorize
# each object's header dependencies, written by the compiler (build/obj/**/*.d)
DEPFLAGS := -MMD -MP
LIBS     := -lopenblas -lm -lpthread

# B / BA: build folders (a parallel build, e.g. of another kernel level, may use its own: make B=build-x)
B        ?= build
BA       ?= build-asan
SRCS     := $(shell find csrc -name '*.c' -not -path 'csrc/dist/*' | LC_ALL=C sort)
OBJS     := $(SRCS:csrc/%.c=$(B)/obj/%.o)
AOBJS    := $(SRCS:csrc/%.c=$(BA)/obj/%.o)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -DMM_POISON_UNINIT

# Debian packages the build, the tests and the demo need.
DEPS_PKGS := build-essential lua5.4 liblua5.4-dev luarocks lua-busted lua-cjson libopenblas-dev libstb-dev \
             python3-numpy chromium fonts-liberation clang libclang-rt-14-dev libopenmpi-dev openmpi-bin
# (chromium: the report spec renders report.html; clang: the fuzz targets; Open MPI: mmfuse.dist
# and its specs, mk/dist.mk)
# peers and fixture generators (bench, tools/)
EXTRA_PKGS := python3-torch python3-torchvision python3-pil fasttext lua-ldoc

.PHONY: install all deps deps-extra test test-long test-levels asan demo paper bench fuzz docs clean rock check-specs
all: $(B)/mmfuse/core.so

$(B)/obj/%.o: csrc/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(CFLAGS) $(MMFLAGS) $(WARN) $(DEPFLAGS) -fPIC $(INCS) -c $< -o $@

$(B)/mmfuse/core.so: $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJS) $(LIBS)

$(BA)/obj/%.o: csrc/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O1 -g $(MMFLAGS) $(SANFLAGS) $(WARN) $(DEPFLAGS) -fPIC $(INCS) -c $< -o $@

$(BA)/mmfuse/core.so: $(AOBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared $(SANFLAGS) -o $@ $(AOBJS) $(LIBS)

deps:
	@sh tools/deps.sh $(DEPS_PKGS)

deps-extra:
	@sh tools/deps.sh $(DEPS_PKGS) $(EXTRA_PKGS)

# The whole suite; the last line is "N passed, N failed". It runs at the best kernel level
# of this CPU, or at the one MMFUSE_KERNEL names (avx512, avx2, generic: csrc/core/cpu.h).
# The pretrained specs need data/pretrained (mk/pretrained.mk: fetched once, then a quick check).
test: deps all pretrained
	@MMFUSE_CPATH=./$(B)/?.so sh tools/run_specs.sh

# The slower specs (spec_long/: minutes of training, e.g. the untuned-defaults condition on
# data/emoji32); CI runs them (mk/ci.mk), `make test` does not.
test-long: deps all
	@MMFUSE_CPATH=./$(B)/?.so sh tools/run_specs.sh spec_long

# The suite once per kernel level this CPU runs (generic = OpenBLAS products and portable C,
# as on a CPU with neither AVX2 nor AVX-512; avx2 as on a Zen 2/3 or older Intel), each
# closing with its own "N passed, N failed"; stops at the first level that fails.
test-levels: deps all pretrained
	@for level in $$(MMFUSE_CPATH=./$(B)/?.so sh tools/kernel_levels.sh); do \
	  echo "== make test, MMFUSE_KERNEL=$$level"; \
	  MMFUSE_KERNEL=$$level MMFUSE_CPATH=./$(B)/?.so sh tools/run_specs.sh || exit 1; \
	done

asan: deps $(BA)/mmfuse/core.so pretrained
	@MMFUSE_CPATH=./$(BA)/?.so \
	 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=23 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp:print_suppressions=0 \
	 LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	 MMFUSE_ASAN=1 sh tools/run_specs.sh

# The main experiment on the embedded dataset, quick settings (mk/experiment.mk).
demo: deps all
	@$(MAKE) --no-print-directory demo-run B=$(B)

rock: deps
	luarocks --lua-version=5.4 make mmfuse-scm-1.rockspec

clean:
	rm -rf build build-asan build-fuzz build-*

-include $(OBJS:.o=.d) $(AOBJS:.o=.d)
-include $(wildcard mk/*.mk)

# used by `luarocks make` (LUADIR/LIBDIR/BINDIR come from the rockspec)
LUADIR ?= /usr/local/share/lua/5.4
LIBDIR ?= /usr/local/lib/lua/5.4
BINDIR ?= /usr/local/bin
install: all
	install -d $(LIBDIR)/mmfuse $(LUADIR)/mmfuse
	install -m 0755 $(B)/mmfuse/core.so $(LIBDIR)/mmfuse/core.so
	if [ -f $(B)/mmfuse/dist.so ]; then install -m 0755 $(B)/mmfuse/dist.so $(LIBDIR)/mmfuse/dist.so; fi
	install -m 0644 lua/mmfuse/*.lua $(LUADIR)/mmfuse/
	if [ -f bin/mmfuse ]; then install -d $(BINDIR) && install -m 0755 bin/mmfuse $(BINDIR)/mmfuse; fi
