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
