# Side-by-side benchmarks: mmfuse vs PyTorch eager and fastText, one thread
# each, BENCH_REPS repetitions (default 3), medians and ratios in one table.
#   make bench                    install the peers (Debian), build, run everything (~10 min on 2 cores
#                                 without p6; p6 adds ~15 min with 3 repetitions)
#   make bench BENCH_ONLY="p1 p4"   a subset (p1 p2 p3 p4 conv mt p6)
#   make bench-p6-peers           P6 alone: mmfuse beside ONNX Runtime and PyTorch on the image backbones
# Inputs come from data/bench64 (built with `make bench-data` when missing); results land in
# $(BENCH_B)/results.jsonl and $(BENCH_B)/bench-table.md. See bench/README.md.
BENCH_B    ?= build-bench
BENCH_REPS ?= 3
BENCH_PEERS := python3-torch python3-torchvision python3-pil python3-numpy fasttext lua-cjson

.PHONY: bench bench-peers bench-p6-peers
bench-peers:
	@sh tools/deps.sh $(BENCH_PEERS)

bench: bench-peers
	@[ -f data/bench64/manifest.tsv ] && [ -f data/bench64/captions_multi.tsv ] || $(MAKE) bench-data
	@$(MAKE) --no-print-directory B=$(BENCH_B) $(BENCH_B)/mmfuse/core.so
	@BENCH_REPS=$(BENCH_REPS) $(if $(BENCH_ONLY),BENCH_ONLY="$(BENCH_ONLY)") PYTHON=$(PYTHON) LUA=$(LUA) \
	  sh bench/run.sh $(BENCH_B)

bench-p6-peers: bench-peers
	@$(MAKE) --no-print-directory B=$(BENCH_B) $(BENCH_B)/mmfuse/core.so
	@BENCH_REPS=$(BENCH_REPS) BENCH_ONLY=p6 PYTHON=$(PYTHON) LUA=$(LUA) sh bench/run.sh $(BENCH_B)
