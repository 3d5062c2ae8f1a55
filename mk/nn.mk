# nn area: regenerate the PyTorch reference fixtures (needs python3-torch;
# the suite itself only reads the committed JSON files).
.PHONY: fixtures-torch
fixtures-torch:
	$(PYTHON) tools/make_torch_fixtures.py
