# The paper's experiment: the config examples/paper.lua, run by `mmfuse
# experiment` (writes report/report.html, report/results.md and report/results.json).
#   make paper      the full grid: 7 models x 5 seeds x 3 conditions, both tasks
#   make demo-run   its demo variant, which `make demo` calls (the colour histogram for the CNN)
# PAPER_ARGS: more options of `mmfuse experiment` (--seeds N, --epochs N, --tasks, --models, ...)
PAPER_ARGS ?=

.PHONY: paper demo-run
paper: deps all
	@MMFUSE_CPATH=./$(B)/?.so $(LUA) bin/mmfuse experiment examples/paper.lua --out report $(PAPER_ARGS)

demo-run: all
	@MMFUSE_CPATH=./$(B)/?.so $(LUA) bin/mmfuse experiment examples/paper.lua --variant demo --out report $(PAPER_ARGS)

# The paper's experiment on real posts (examples/paper_mvsa.lua): MVSA-Single, which is not
# part of mmfuse; MVSA names its copy. Writes report-mvsa/ (git-ignored); the Inception-v3
# features are cached once in MVSA_CACHE (outside the checkout).
#   make paper-mvsa MVSA=../shared/data/mvsa           GloVe text encoder + frozen Inception-v3
#   make paper-mvsa-learned MVSA=../shared/data/mvsa   encoders learned from the posts alone
MVSA ?=
MVSA_CACHE ?= $(HOME)/.cache/mmfuse/mvsa

.PHONY: paper-mvsa paper-mvsa-learned
paper-mvsa: deps all pretrained
	@test -n "$(MVSA)" || { echo "make paper-mvsa: give the data, e.g. MVSA=../shared/data/mvsa"; exit 2; }
	@mkdir -p $(MVSA_CACHE)
	@MMFUSE_CPATH=./$(B)/?.so $(LUA) bin/mmfuse experiment examples/paper_mvsa.lua --data $(MVSA) \
	  --cache $(MVSA_CACHE) --out report-mvsa $(PAPER_ARGS)

paper-mvsa-learned: deps all
	@test -n "$(MVSA)" || { echo "make paper-mvsa-learned: give the data, e.g. MVSA=../shared/data/mvsa"; exit 2; }
	@MMFUSE_CPATH=./$(B)/?.so $(LUA) bin/mmfuse experiment examples/paper_mvsa.lua --variant learned --data $(MVSA) \
	  --out report-mvsa/learned $(PAPER_ARGS)
