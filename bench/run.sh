#!/bin/sh
# Side-by-side benchmarks: mmfuse vs PyTorch (eager) and fastText, one thread each.
# Usage: sh bench/run.sh [BUILD_DIR]      (make bench calls it after building)
#   BENCH_REPS   repetitions of every run (default 3; medians are reported)
#   BENCH_ONLY   space-separated subset of: p1 p2 p3 p4 conv mt p6 (default: all)
#                p6: image backbones at inference (Inception-v3, ResNet-18, MobileNetV2; batch 16
#                and 1; 1 and 2 threads) - ONNX Runtime (onnxruntime-node, npm) and PyTorch
# Writes BUILD_DIR/work/ (inputs), BUILD_DIR/results.jsonl (every run), prints the table
# (also saved as BUILD_DIR/bench-table.md).
set -eu
cd "$(dirname "$0")/.."
B=${1:-build-bench}
PY=${PYTHON:-/usr/bin/python3}
LUA=${LUA:-lua5.4}
REPS=${BENCH_REPS:-3}
ONLY=${BENCH_ONLY:-"p1 p2 p3 p4 conv mt p6"}
W=$B/work
R=$B/results.jsonl
export MMFUSE_CPATH="./$B/?.so"
# one thread everywhere (mm.threads(1) / torch.set_num_threads(1) / -thread 1 are also passed)
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1

want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
# the inputs prep.py writes (from data/bench64) serve every benchmark but p6
emoji=no
for p in p1 p2 p3 p4 conv mt; do want $p && emoji=yes; done

[ $emoji = no ] || [ -f data/bench64/manifest.tsv ] || { echo "bench: data/bench64 missing (make bench-data)" >&2; exit 1; }
[ -f "$B/mmfuse/core.so" ] || { echo "bench: $B/mmfuse/core.so missing (make B=$B)" >&2; exit 1; }

run() { tag=$1; shift; $PY bench/peers/wall.py "$R" "$tag" -- "$@"; }
MM="$LUA bench/mm_bench.lua $W"
TB="$PY bench/peers/torch_bench.py $W"

mkdir -p "$W"
[ $emoji = no ] || $PY bench/peers/prep.py "$W"
if want p6; then
  # the ONNX files (torch.onnx.export, kept in $W/p6) and the ONNX Runtime install, once
  $PY bench/peers/backbone_bench.py "$W" export >/dev/null
  node bench/peers/ort_bench.js --install >&2
fi
: > "$R"
echo "bench: $REPS repetitions, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
i=1
while [ "$i" -le "$REPS" ]; do
  echo "bench: repetition $i/$REPS" >&2
  if want p1; then
    for f in joint commonspace; do
      run "p1-$f-mmfuse" $MM p1 --fusion $f --epochs 5
      run "p1-$f-torch" $TB p1 --fusion $f --epochs 5
    done
  fi
  if want p2; then
    run p2-mmfuse $MM p2
    run p2-fasttext $PY bench/peers/fasttext_bench.py "$W"
    run p2-fasttext-b100k $PY bench/peers/fasttext_bench.py "$W" --bucket 100000
  fi
  if want p3; then
    run p3-mmfuse $MM p3 --epochs 5
    run p3-torch $TB p3 --epochs 5
  fi
  if want p4; then
    run p4-mmfuse $MM p4 --reps 3
    run p4-torch $TB p4 --reps 3
  fi
  if want conv; then
    run conv-mmfuse $MM conv
    run conv-torch $TB conv
  fi
  if want mt; then
    run p1-joint-mmfuse-t2 $MM p1 --fusion joint --epochs 5 --threads 2
    run p3-mmfuse-t2 $MM p3 --epochs 5 --threads 2
    run p4-mmfuse-t2 $MM p4 --reps 3 --threads 2
  fi
  if want p6; then
    # threads: torch.set_num_threads / intraOpNumThreads, and OMP_NUM_THREADS to match.
    # $KEEP: glibc malloc keeps freed blocks instead of unmapping them; PyTorch allocates every
    # activation afresh, and without it spends most of its time in page faults on this VM
    # (MobileNetV2 b16: about 5 images/s instead of 40-75). Both peers run with it.
    KEEP=GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295
    for m in inception_v3 resnet18 mobilenet_v2; do
      for t in 1 2; do
        for b in 16 1; do
          run "p6-$m-b$b-t$t-mmfuse" $MM p6 --model $m --batch $b --threads $t
          run "p6-$m-b$b-t$t-ort" env OMP_NUM_THREADS=$t $KEEP node bench/peers/ort_bench.js "$W" $m --batch $b --threads $t
          run "p6-$m-b$b-t$t-torch" env OMP_NUM_THREADS=$t $KEEP $PY bench/peers/backbone_bench.py "$W" run $m \
            --batch $b --threads $t
        done
      done
    done
  fi
  i=$((i + 1))
done
echo "bench: load average after $(cut -d' ' -f1-3 /proc/loadavg)" >&2
{ $PY bench/peers/summary.py "$R"; echo; $PY bench/peers/machine.py; } | tee "$B/bench-table.md"
