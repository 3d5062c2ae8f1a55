# The paper's experiment (examples/paper.lua; writes report/report.html,
# report/results.md and report/results.json).
#   make paper      the full grid: 7 models x 5 seeds x 3 conditions, both tasks
#   make demo-run   the quick version `make demo` calls (fewer seeds and epochs)
PAPER_ARGS ?=

.PHONY: paper demo-run
paper: deps all
	@MMFUSE_CPATH=./$(B)/?.so $(LUA) examples/paper.lua $(PAPER_ARGS)

demo-run: all
	@MMFUSE_CPATH=./$(B)/?.so $(LUA) examples/paper.lua --demo $(PAPER_ARGS)
