# Extra CI steps, run by .ci/run after the rock install: every fuzz target (two at a
# time on the 2 cores) from its committed corpus, with a fixed seed and a fixed number
# of inputs: CI replays exactly the run a developer checked with
# `make fuzz FUZZ_SEED=1 FUZZ_RUNS=20000`. Finding new bugs is `make fuzz`'s job
# (random seeds, time-limited). CI_FUZZ_SECONDS only caps a run that went wrong.
CI_FUZZ_RUNS    ?= 20000
CI_FUZZ_SECONDS ?= 300
.PHONY: ci-extra tsan
ci-extra: tsan test-long
	$(MAKE) -j2 fuzz FUZZ_SECONDS=$(CI_FUZZ_SECONDS) FUZZ_SEED=1 FUZZ_RUNS=$(CI_FUZZ_RUNS)

# The thread pool (csrc/core/parallel.c) under ThreadSanitizer: tools/pool_stress.c
# (ranges run once with their bounds and tid at 1-6 threads, two callers at once, a fork:
# a forked child starting threads is what die_after_fork=0 allows).
tsan: build-tsan/pool_stress
	@TSAN_OPTIONS="die_after_fork=0 halt_on_error=1" build-tsan/pool_stress
build-tsan/pool_stress: tools/pool_stress.c csrc/core/parallel.c csrc/core/parallel.h csrc/core/error.c csrc/core/error.h
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=thread -Icsrc -o $@ tools/pool_stress.c csrc/core/parallel.c csrc/core/error.c \
	  -lopenblas -lpthread
