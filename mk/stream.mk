# The threads of a stream (csrc/model/stream.h) under ThreadSanitizer: tools/stream_stress.c
# (epochs read whole and ended early, 2 builder threads on a ring of 2 slots, bad rows, splits,
# ranks, a stream freed mid-epoch). The core without the Lua binding, built with clang.
.PHONY: tsan-stream
STREAM_TSAN_SRCS := $(filter-out csrc/lua/%,$(SRCS))
tsan-stream: build-tsan/stream_stress
	@TSAN_OPTIONS="halt_on_error=1" build-tsan/stream_stress
build-tsan/stream_stress: tools/stream_stress.c $(STREAM_TSAN_SRCS)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=thread -Wall -Wextra -Wno-unused-parameter -Icsrc -o $@ \
	  tools/stream_stress.c $(STREAM_TSAN_SRCS) -lopenblas -lm -lpthread
