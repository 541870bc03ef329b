#!/bin/bash
# One training run on a lent GPU machine, end to end in one command (the lease is minutes, not hours):
#   1. export training patches from phantom seeds with the bundled TypeScript exporter, one process per core;
#   2. train one network per BASE in BASES at the same time on the GPU, each fitted to a wall-time budget;
#   3. leave each run's weights (plain arrays), log and data index under OUT for export.py here.
# Usage (on the GPU machine, from the repository root, .gpu/ carried; see prepare.sh):
#   STUDIES_PER_PROC=30 PROCS=15 GEN_S=180 TRAIN_MIN=4.5 BASES="8 16" OUT=/path bash models/train/gpu/run.sh
set -u
OUT=${OUT:?OUT must name the folder for results}
PROCS=${PROCS:-15}
STUDIES_PER_PROC=${STUDIES_PER_PROC:-30}
SEED0=${SEED0:-100000}
JITTER=${JITTER:-2}
GEN_S=${GEN_S:-180}
TRAIN_MIN=${TRAIN_MIN:-4.5}
BASES=${BASES:-8}
STEPS=${STEPS:-200000}
BATCH=${BATCH:-32}
WORK=${WORK:-/tmp/vbmd-gpu}
# Run folders (checkpoints, weights, logs); under OUT they come back even if the lease ends mid-run.
RUNS=${RUNS:-$WORK}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$WORK/data" "$OUT"
t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$OUT/run.log"; }

xz -dc .gpu/node.xz > "$WORK/node" && chmod +x "$WORK/node"
say "node $("$WORK/node" --version); $(nproc) cores; $("$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")')"

pids=()
for i in $(seq 0 $((PROCS - 1))); do
  timeout "$GEN_S" "$WORK/node" .gpu/export-patches.mjs export-patches --out "$WORK/data/p$i" \
    --phantoms "$STUDIES_PER_PROC" --seed $((SEED0 + i * STUDIES_PER_PROC)) --jitter "$JITTER" 2> "$WORK/export-$i.log" &
  pids+=($!)
done
wait "${pids[@]}"
folders=$(ls -d "$WORK"/data/p* | paste -sd, -)
say "exported $(cat "$WORK"/data/p*/index.jsonl | wc -l) patches from $(cat "$WORK"/export-*.log | grep -c '^seed ') studies; last lines: $(tail -qn1 "$WORK"/export-*.log | head -3 | tr '\n' ' ')"

tpids=()
for b in $BASES; do
  "$PY" models/train/train.py --data "$folders" --run "$RUNS/run-b$b" --device "$DEVICE" --base "$b" --batch "$BATCH" \
    --steps "$STEPS" --budget-minutes "$TRAIN_MIN" --eval-every "${EVAL_EVERY:-2000}" --ckpt-every "${CKPT_EVERY:-2000}" --threads 2 > "$WORK/train-b$b.out" 2>&1 &
  tpids+=($!)
done
wait "${tpids[@]}"
for b in $BASES; do
  cp "$RUNS/run-b$b/train.log" "$OUT/train-b$b.log" 2>/dev/null
  cp "$RUNS/run-b$b/last.weights.npz" "$OUT/b$b.weights.npz" 2>/dev/null
  tail -n 3 "$WORK/train-b$b.out" | tee -a "$OUT/run.log"
done
cat "$WORK"/data/p*/index.jsonl | gzip > "$OUT/index.jsonl.gz"
say "done"
