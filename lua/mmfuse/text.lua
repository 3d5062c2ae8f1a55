--- mmfuse.text: tokenizer, vocabulary with hashed word n-grams, pretrained
-- word vectors. The work is done in C (csrc/text/, binding csrc/lua/l_text.c);
-- this file only fills in defaults.
--
--   mm.text.tokenize(s [, {lowercase=true, keep_punct=false}]) -> {tokens}
--   mm.text.vocab(texts, {min_count=1, max_size=0, unk="unk"|"drop",
--                         ngrams=1, buckets=2000000, lowercase=, keep_punct=})
--       texts: an array whose items are strings, token lists or false
--       -> vocab with :size() :rows() :words() :counts() :id(w) :word(i)
--          :options() :tokenize(s) :encode(texts) -> ids, offsets, missing
--   mm.text.vocab_from_words(words, options) -> vocab   (restore a saved one:
--       words = v:words(), options = v:options())
--   mm.text.load_vectors(path, vocab [, {format="auto"|"glove"|"word2vec"|
--       "word2vec-bin"|"vec", tensor=t}]) -> tensor [V, d], coverage table
--   mm.text.decode(bytes [, {"utf-8", "gb18030", "latin-1"}]) -> UTF-8 string,
--       the encoding that decoded it, whether a UTF-8 BOM was dropped; the
--       first encoding of the list that accepts every byte wins (an error when
--       none does); csrc/text/encoding.h
local core = require "mmfuse.core"
local C = core.text

local text = {}

text.tokenize = C.tokenize
text.vocab = C.vocab
text.vocab_from_words = C.vocab_from_words
text.probe_vectors = C.probe_vectors
text.decode = C.decode

--- Stream a vector file into rows of a [V, d] tensor (a new one, zeros for
-- the words not found, or opts.tensor, whose other rows stay as they are).
-- Returns the tensor and {found, total, coverage, dim, format, file_words,
-- found_mask}.
function text.load_vectors(path, vocab, opts)
  if type(path) ~= "string" then
    error("load_vectors: bad argument #1 (path: string expected, got " .. type(path) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("load_vectors: bad argument #3 (options: table expected, got " .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  return C.load_vectors(path, vocab, opts.tensor, { format = opts.format })
end

return text
