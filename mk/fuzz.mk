# libFuzzer targets (fuzz/fuzz_*.c), built with clang + ASan + UBSan.
# `make fuzz` runs each for FUZZ_SECONDS (default 60) starting from its committed
# seed corpus fuzz/corpus/<name>/ (new inputs go to build-fuzz/corpus/<name>/, crashes
# to build-fuzz/crash-*); use -j2 to run two at a time.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
# 0: a random libFuzzer seed per run; CI fixes it so that a run replays what was checked
FUZZ_SEED    ?= 0
# -1: as many inputs as FUZZ_SECONDS allow. CI sets a count (with the seed, the same
# inputs every time, whatever the machine's speed: a time limit alone made CI explore
# further on a fast run and fail on a new find instead of replaying the checked run)
FUZZ_RUNS    ?= -1
FUZZ_FLAGS   := -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined $(INCS)
FUZZ_NAMES   := $(basename $(notdir $(wildcard fuzz/fuzz_*.c)))
FOBJS        := $(SRCS:csrc/%.c=build-fuzz/obj/%.o)

build-fuzz/obj/%.o: csrc/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(DEPFLAGS) -fsanitize=fuzzer-no-link -fPIC -c $< -o $@

-include $(FOBJS:.o=.d)

build-fuzz/%: fuzz/%.c fuzz/fuzz_lua.h $(FOBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(FOBJS) -o $@ -llua5.4 $(LIBS)

.PHONY: fuzz fuzz-build $(FUZZ_NAMES:%=fuzz-run-%)
.SECONDARY: $(FOBJS)
fuzz-build: $(FUZZ_NAMES:%=build-fuzz/%)

fuzz: $(FUZZ_NAMES:%=fuzz-run-%)

$(FUZZ_NAMES:%=fuzz-run-%): fuzz-run-%: build-fuzz/%
	@mkdir -p build-fuzz/corpus/$* build-fuzz/crashes
	@echo "fuzz: $* for $(FUZZ_SECONDS) s$(if $(filter-out -1,$(FUZZ_RUNS)), or $(FUZZ_RUNS) inputs)"
	@ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
	 ./build-fuzz/$* -seed=$(FUZZ_SEED) -runs=$(FUZZ_RUNS) -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -max_len=65536 -timeout=20 \
	   -artifact_prefix=build-fuzz/crashes/$*- -print_final_stats=1 \
	   build-fuzz/corpus/$* fuzz/corpus/$* > build-fuzz/$*.log 2>&1 \
	 || { tail -n 60 build-fuzz/$*.log; echo "fuzz: $* FAILED (input in build-fuzz/crashes/)"; exit 1; }
	@grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" build-fuzz/$*.log | sed 's/^/  $*: /'
