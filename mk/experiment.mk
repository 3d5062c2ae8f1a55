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
