#!/bin/sh
# make bench-dist (and bench-scale's MPI rows): data-parallel training over Open MPI
# processes (mmfuse.dist) against one process, on this machine.
#   sh bench/dist_run.sh OUTDIR      (BENCH_REPS=3, MMFUSE_BUILD=build)
# Every configuration is one run of bench/dist_bench.lua (alone, or under mpirun -np 2 with
# one thread per process); the configurations alternate inside each repetition, so load
# from the rest of the machine falls on all of them. Rows go to OUTDIR/dist.jsonl, the
# medians and ranges to OUTDIR/dist-table.md.
set -eu
OUT=${1:-build-bench}
REPS=${BENCH_REPS:-3}
BUILD=${MMFUSE_BUILD:-build}
LUA=${LUA:-lua5.4}
mkdir -p "$OUT"
LUA_CPATH="./$BUILD/?.so;;"
export LUA_CPATH
[ -f "$BUILD/mmfuse/dist.so" ] || { echo "dist_run.sh: $BUILD/mmfuse/dist.so is missing (make deps && make)" >&2; exit 1; }
RUN=$(mktemp)
trap 'rm -f "$RUN"' EXIT

one() { # label, np, dist_bench arguments
  label=$1 np=$2
  shift 2
  if [ "$np" = 1 ]; then
    $LUA bench/dist_bench.lua "$@" dist=0 >"$RUN"
  else
    mpirun --allow-run-as-root --oversubscribe -np "$np" -x LUA_CPATH $LUA bench/dist_bench.lua "$@" dist=1 >"$RUN"
  fi
  sed "s/^{/{\"label\": \"$label\", \"rep\": $rep, /" "$RUN" | tee -a "$OUT/dist.jsonl"
}

rep=1
while [ "$rep" -le "$REPS" ]; do
  for b in 32 256; do
    b2=$((2 * b))
    one "head b$b np1" 1 head batch=$b
    one "head b$b np2" 2 head batch=$b
    one "head b$b2 np1" 1 head batch=$b2
    one "head b$b2 np1 t2" 1 head batch=$b2 threads=2
  done
  one "text b64 np1" 1 text batch=64 rows=2000
  one "text b32 np2 rows" 2 text batch=32 rows=2000 sparse=rows
  one "text b32 np2 table" 2 text batch=32 rows=2000 sparse=table
  rep=$((rep + 1))
done
$LUA bench/dist_bench.lua table "$OUT/dist.jsonl" | tee "$OUT/dist-table.md"
