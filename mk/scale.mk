# Training on more posts than memory holds (issue 20, streaming): see bench/README.md.
#   make bench-scale              the 10 M-post corpus (tools/gen_scale.py, ~5.7 GB in build-scale/,
#                                 written once, git-ignored), then bench/scale.lua's table: one epoch
#                                 of a joint model in memory vs streamed on the first SCALE_FIRST
#                                 shards (1 M posts each), then streamed over all of them
#   make bench-scale-small        the same on 200,000 posts (shards of 50,000; ~2 min)
#   make bench-scale SCALE_DIR=/big/disk SCALE_POSTS=2000000   another place or size
SCALE_DIR   ?= build-scale
SCALE_POSTS ?= 10000000
SCALE_SHARD ?= 1000000
SCALE_FIRST ?= 1
SCALE_REPS  ?= 3

.PHONY: bench-scale bench-scale-small
bench-scale:
	@[ -f data/bench64/captions_multi.tsv ] || $(MAKE) bench-data
	@$(MAKE) --no-print-directory B=$(BENCH_B) $(BENCH_B)/mmfuse/core.so
	@grep -qx "posts $(SCALE_POSTS) shard $(SCALE_SHARD) seed 1 .*" $(SCALE_DIR)/corpus.txt 2>/dev/null || \
	  { rm -f $(SCALE_DIR)/posts-*.tsv $(SCALE_DIR)/corpus.txt; \
	    $(PYTHON) tools/gen_scale.py --out $(SCALE_DIR) --posts $(SCALE_POSTS) --shard $(SCALE_SHARD) --seed 1; }
	@MMFUSE_CPATH=./$(BENCH_B)/?.so LUA=$(LUA) $(LUA) bench/scale.lua table $(SCALE_DIR) $(SCALE_FIRST) $(SCALE_REPS)

bench-scale-small:
	@$(MAKE) --no-print-directory bench-scale SCALE_DIR=build-scale-small SCALE_POSTS=200000 SCALE_SHARD=50000 \
	  SCALE_FIRST=2
