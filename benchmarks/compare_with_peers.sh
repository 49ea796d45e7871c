#!/usr/bin/env bash
# unigen_jax and the peer implementations, timed in the same session on this machine over a
# batch sweep, then benchmarks/RESULTS.md. Needs ../shared/peers (its setup.sh makes
# /tmp/peers-*).
#   bash benchmarks/compare_with_peers.sh          # ~1 h 15 min on 2 cores (BATCHES=64,128: ~30 min)
# Knobs: SKIP_PEERS=1 (reuse $OUT/peers.jsonl), PEER_ONLY=regex (default: the peers with a
# matched configuration here; PEER_ONLY=. runs all of run.sh), OUT=dir,
# BATCHES=32,64,128,256,512,1024 (the default).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS_DIR:-$ROOT/../shared/peers}
OUT=${OUT:-$ROOT/benchmarks/results}
PY=${PY:-$ROOT/.venv/bin/python}
BATCHES=${BATCHES:-32,64,128,256,512,1024}
mkdir -p "$OUT"
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
if [ "${SKIP_PEERS:-0}" != 1 ]; then
  [ -x /tmp/peers-torch/bin/python ] || (cd "$PEERS" && ./setup.sh) || exit 1
  PEER_RESULTS_JSONL="$OUT/peers.jsonl" LOG="$OUT/peers_run.log" BATCHES=$BATCHES \
    ONLY="${PEER_ONLY:-flax_vae_jit|pythae_vae_mlp|pythae_iwae_mlp|pythae_vae_conv|torch_dcgan}" bash "$PEERS/run.sh" | tee "$OUT/peers.txt"
fi
"$PY" -m benchmarks.bench --suite=batch_sweep,flops,pipeline --batches="$BATCHES" \
  --out="$OUT/unigen.json" || exit 1
"$PY" -m benchmarks.bench --suite=eval --eval_images=1000 --eval_k=5000 --eval_batch=100 \
  --out="$OUT/unigen_eval.json"
/tmp/peers-torch/bin/python "$ROOT/benchmarks/pythae_nll_driver.py" --images=50 --k=5000 \
  > "$OUT/pythae_nll.json"
"$PY" -m benchmarks.report "$OUT" > "$ROOT/benchmarks/RESULTS.md"
echo "wrote $ROOT/benchmarks/RESULTS.md"
