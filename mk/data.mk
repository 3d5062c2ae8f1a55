# The embedded dataset. See data/emoji32/README.md.
#   make data         rebuild data/emoji32 in a temp dir from the pinned npm tarballs
#                     (sha256-checked) and fail unless it is byte-identical to the committed copy
#   make data-update  regenerate data/emoji32/manifest.tsv and images/ in place
#   make bench-data   four vendors at 64 px + multilingual captions into data/bench64 (git-ignored;
#                     BENCH_SKINS=1 adds the skin-tone variants)
# The tarballs are cached in NPM_CACHE (fetched with `npm pack` when absent).
NPM_CACHE  ?= $(HOME)/.cache/mmfuse/npm
DATA_TOOL  := $(PYTHON) tools/build_emoji32.py --cache $(NPM_CACHE)

.PHONY: data data-update bench-data
data:
	$(DATA_TOOL) check --against data/emoji32

data-update:
	$(DATA_TOOL) emoji32 --out data/emoji32

bench-data:
	$(DATA_TOOL) bench --out data/bench64 $(if $(filter 1,$(BENCH_SKINS)),--skins,)
