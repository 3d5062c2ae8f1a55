# Extra CI steps, run by .ci/run after the rock install: every fuzz target (two at a
# time on the 2 cores) from its committed corpus, with a fixed seed and a fixed number
# of inputs: CI replays exactly the run a developer checked with
# `make fuzz FUZZ_SEED=1 FUZZ_RUNS=20000`. Finding new bugs is `make fuzz`'s job
# (random seeds, time-limited). CI_FUZZ_SECONDS only caps a run that went wrong.
CI_FUZZ_RUNS    ?= 20000
CI_FUZZ_SECONDS ?= 300
.PHONY: ci-extra
ci-extra:
	$(MAKE) -j2 fuzz FUZZ_SECONDS=$(CI_FUZZ_SECONDS) FUZZ_SEED=1 FUZZ_RUNS=$(CI_FUZZ_RUNS)
