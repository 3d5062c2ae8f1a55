# mk/docs.mk - `make docs`: the API reference (LDoc, Debian lua-ldoc) in doc/api/.
# config.ld lists what is documented; doc/api/ is git-ignored.
LDOC ?= ldoc

docs:
	@sh tools/deps.sh lua-ldoc lua-discount
	@rm -rf doc/api
	$(LDOC) .
	@echo "API reference: doc/api/index.html"
