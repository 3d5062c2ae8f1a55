-- The paper's experiment on real posts: MVSA-Single (Niu et al., MMM 2016), tweets with
-- their photos labelled positive / negative / neutral. Unimodal, early, late, joint (max /
-- mean) and common-space fusion, five seeds, each evaluated with both modalities, text only
-- and image only. The data is not part of mmfuse (its licence is unknown): give its folder
-- (ID.txt / ID.jpg + labels.csv, read by mm.data.import_posts) or a manifest with --data.
--
--   make pretrained                                    (GloVe and Inception-v3, once)
--   make paper-mvsa MVSA=../shared/data/mvsa           (report in report-mvsa/)
--   make paper-mvsa-learned MVSA=../shared/data/mvsa   (report in report-mvsa/learned/)
--   bin/mmfuse experiment examples/paper_mvsa.lua --data DIR --out report-mvsa
--
-- The default run is the paper's setup: a text encoder whose word embeddings start from
-- GloVe 6B 100d (trained further) over post-aware tokens (text.tokenizer = "posts": URLs,
-- @mentions, RT, hashtags, emoticons) and the frozen pooled features of nsfwjs's Inception-v3
-- (fine-tuned for moderation classes, not for sentiment), computed once by mmfuse and cached
-- outside the checkout (--cache DIR, default ~/.cache/mmfuse; a cache entry is keyed by the
-- model's fingerprint and the image paths). The "learned" variant uses only what mmfuse
-- learns from these posts: hashed word and bigram embeddings from scratch and the default
-- image encoder on 32 px pictures.
--
-- Split: the fold of a post is FNV-1a 32 of its id mod 10 (a split that depends on the ids
-- alone, not on the row order or a seed); fold 0 is the test set, fold 1 the validation set
-- (early stopping, and every choice between models), folds 2-9 train.
--
-- Paths in model options (vectors, image encoder) are relative to the working directory:
-- run it from the checkout's root.
return {
  title = "mmfuse on real posts: MVSA-Single sentiment (text + photo), reproducing Duong, Lebret & Aberer 2017",
  data = {
    manifest = "mvsa", -- a folder of posts (or a manifest with id, text, image, label columns); --data
    text = "text", image = "image", label = "label",
    split = "id%10:0:1",
    image_encoder = "data/pretrained/inception_v3/model.json",
  },
  tasks = {
    { name = "sentiment", label = "label", title = "Sentiment of the post (negative / neutral / positive)",
      metrics = { "accuracy", "macro_f1" }, metric = "accuracy" },
  },
  models = { "text", "image", "early", "late", "joint-max", "joint-mean", "commonspace" },
  seeds = { 1, 2, 3, 4, 5 },
  conditions = { "both", "text", "image" },
  -- every other setting (epochs, learning rate, early stopping, modality dropout, ...) is
  -- mmfuse's default: this is the untuned condition
  model = { dim = 100, text = { vectors = "data/pretrained/glove-6B-100d.bin", tokenizer = "posts" } },
  fit = {},
  notes = {
    "Text encoder: word embeddings initialised from GloVe 6B 100d (Wikipedia + Gigaword) and trained further. "
      .. "Image encoder: the frozen 2048-d pooled features of nsfwjs's Inception-v3, fine-tuned for moderation "
      .. "classes (drawing / hentai / neutral / porn / sexy), not for sentiment.",
  },
  variants = {
    learned = {
      data = { image_encoder = false, image_size = 32 },
      model = { dim = 64, text = { tokenizer = "posts" } },
      notes = { "Learned encoders only: hashed word + bigram embeddings trained from scratch on these posts and "
        .. "the default image encoder on 32 px pictures; no pretrained weights." },
    },
  },
}
