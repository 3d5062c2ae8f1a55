# Extra CI steps, run by .ci/run after the rock install: every fuzz target for
# CI_FUZZ_SECONDS (two at a time on the 2 cores), with a fixed seed: CI replays the
# mutations a developer ran with `make fuzz FUZZ_SEED=1`; random seeds stay for `make fuzz`.
CI_FUZZ_SECONDS ?= 60
.PHONY: ci-extra
ci-extra:
	$(MAKE) -j2 fuzz FUZZ_SECONDS=$(CI_FUZZ_SECONDS) FUZZ_SEED=1
