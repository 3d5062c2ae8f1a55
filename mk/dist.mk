# mmfuse.dist: data-parallel training across processes and machines (csrc/dist, Open MPI).
# build/mmfuse/dist.so is its own module, linked against libmpi, so the core builds and
# works without MPI; `make` builds it whenever Open MPI's compiler wrapper is installed
# (`make deps` installs libopenmpi-dev and openmpi-bin). Its specs (spec/dist_spec.lua) run
# the processes under mpirun.
MPICC      ?= mpicc
MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null)
MPI_LIBS   := $(shell $(MPICC) --showme:link 2>/dev/null)
DIST_SRCS  := $(wildcard csrc/dist/*.c)
DIST_OBJS  := $(DIST_SRCS:csrc/%.c=$(B)/obj/%.o) $(B)/obj/dist/error.o

ifneq ($(MPI_LIBS),)
all: $(B)/mmfuse/dist.so
endif

# hidden symbols but luaopen_mmfuse_dist: its own copy of error.c never meets core.so's
$(B)/obj/dist/%.o: csrc/dist/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(CFLAGS) $(MMFLAGS) $(WARN) $(DEPFLAGS) -fPIC -fvisibility=hidden $(INCS) $(MPI_CFLAGS) -c $< -o $@
$(B)/obj/dist/error.o: csrc/core/error.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(CFLAGS) $(MMFLAGS) $(WARN) $(DEPFLAGS) -fPIC -fvisibility=hidden $(INCS) -c $< -o $@

# -z nodelete: Lua unloads C modules when it closes, and the exit handler (comm_mpi.h) runs after
$(B)/mmfuse/dist.so: $(DIST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-z,nodelete -o $@ $(DIST_OBJS) $(MPI_LIBS)

-include $(DIST_OBJS:.o=.d)

# make bench-dist: -np 2 against one process (bench/dist_run.sh; rows in
# $(BENCH_B)/dist.jsonl, the table in $(BENCH_B)/dist-table.md). bench-scale, the
# table of bigger-than-memory and many-process runs, takes these rows as one part.
.PHONY: bench-dist bench-scale
bench-dist: all
	@BENCH_REPS=$(BENCH_REPS) MMFUSE_BUILD=$(B) LUA=$(LUA) nice sh bench/dist_run.sh $(BENCH_B)
bench-scale: bench-dist

# the same module for `make asan` (the MPI processes of spec/dist_spec.lua load it there)
DIST_AOBJS := $(DIST_SRCS:csrc/%.c=$(BA)/obj/%.o) $(BA)/obj/dist/error.o
$(BA)/obj/dist/%.o: csrc/dist/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O1 -g $(MMFLAGS) $(SANFLAGS) $(WARN) $(DEPFLAGS) -fPIC -fvisibility=hidden $(INCS) $(MPI_CFLAGS) -c $< -o $@
$(BA)/obj/dist/error.o: csrc/core/error.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O1 -g $(MMFLAGS) $(SANFLAGS) $(WARN) $(DEPFLAGS) -fPIC -fvisibility=hidden $(INCS) -c $< -o $@
$(BA)/mmfuse/dist.so: $(DIST_AOBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared $(SANFLAGS) -Wl,-z,nodelete -o $@ $(DIST_AOBJS) $(MPI_LIBS)
ifneq ($(MPI_LIBS),)
asan: $(BA)/mmfuse/dist.so
endif
-include $(DIST_AOBJS:.o=.d)
