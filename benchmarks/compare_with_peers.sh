#!/usr/bin/env bash
# unigen_jax and the peer implementations, timed in the same session on this machine,
# then benchmarks/RESULTS.md. Needs ../shared/peers (its setup.sh makes /tmp/peers-*).
#   bash benchmarks/compare_with_peers.sh          # ~35 min on 2 cores
# Knobs: SKIP_PEERS=1 (reuse $OUT/peers.jsonl), PEER_ONLY=regex, OUT=dir.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS_DIR:-$ROOT/../shared/peers}
OUT=${OUT:-$ROOT/benchmarks/results}
PY=${PY:-$ROOT/.venv/bin/python}
mkdir -p "$OUT"
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
if [ "${SKIP_PEERS:-0}" != 1 ]; then
  [ -x /tmp/peers-torch/bin/python ] || (cd "$PEERS" && ./setup.sh) || exit 1
  PEER_RESULTS_JSONL="$OUT/peers.jsonl" LOG="$OUT/peers_run.log" BATCHES=64,128 \
    ONLY="${PEER_ONLY:-}" bash "$PEERS/run.sh" | tee "$OUT/peers.txt"
fi
"$PY" -m benchmarks.bench --suite=peers,flops,pipeline --batches=64,128 --skip=conv \
  --out="$OUT/unigen.json"
# The 17.2M-parameter conv VAE takes seconds per step on this CPU: three timed steps.
"$PY" -m benchmarks.conv_vae_step_time --batch=64 > "$OUT/unigen_conv_direct.json"
"$PY" -m benchmarks.bench --suite=eval --eval_images=1000 --eval_k=5000 --out="$OUT/unigen_eval.json"
/tmp/peers-torch/bin/python "$ROOT/benchmarks/pythae_nll_driver.py" --images=50 --k=5000 \
  > "$OUT/pythae_nll.json"
"$PY" -m benchmarks.report "$OUT" > "$ROOT/benchmarks/RESULTS.md"
echo "wrote $ROOT/benchmarks/RESULTS.md"
