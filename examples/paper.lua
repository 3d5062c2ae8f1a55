-- The paper's experiment on the embedded dataset (Duong, Lebret & Aberer 2017):
-- unimodal, early, late, joint (max / mean) and common-space fusion, five
-- seeds, each evaluated with both modalities, text only and image only, on
-- the group task and the sentiment task of data/emoji32. An experiment config
-- (plain data, read in a sandbox), run by the experiment command:
--
--   bin/mmfuse experiment examples/paper.lua --out report                  (make paper)
--   bin/mmfuse experiment examples/paper.lua --variant demo --out report   (make demo)
--
-- --seeds N, --epochs N, --tasks, --models narrow it (mmfuse experiment --help).
return {
  title = "mmfuse: multimodal fusion on data/emoji32 (reproducing Duong, Lebret & Aberer 2017)",
  data = { manifest = "../data/emoji32/manifest.tsv", text = "caption", image = "image", split = "fold:0:1" },
  tasks = {
    { name = "group", label = "group", title = "Group task (Unicode emoji group, 9 classes)",
      metrics = { "accuracy", "macro_f1" }, metric = "accuracy" },
    -- rows without a rating have no label and are left out by the loader;
    -- 158 positive / 64 neutral / 26 negative: without class weights every
    -- model drifts to "positive" (fixed before looking at any test score)
    { name = "sentiment", label = "sentiment", title = "Sentiment task (negative / neutral / positive; rated emoji only)",
      metrics = { "macro_f1" }, metric = "macro_f1", fit = { class_weights = "balanced" } },
  },
  models = { "text", "image", "early", "late", "joint-max", "joint-mean", "commonspace" },
  seeds = { 1, 2, 3, 4, 5 },
  conditions = { "both", "text", "image" },
  model = { dim = 64, image = { encoder = "cnn" } },
  fit = { epochs = 30, batch = 32, lr = 0.01, patience = 6 },
  variants = {
    demo = {
      model = { image = { encoder = "histogram" } },
      fit = { epochs = 20, patience = 5 },
      notes = { "The demo swaps the CNN, trained from scratch, for the HSV colour histogram (hand-crafted, no "
        .. "training; the CNN is about 50x slower per epoch); the rest of the protocol is the paper run's." },
    },
  },
}
