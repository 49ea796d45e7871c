#!/usr/bin/env bash
# The MLP rows (Flax VAE example, pythae MLP VAE and IWAE K=5) over a batch sweep, peers and
# unigen_jax in one session, then benchmarks/RESULTS_mlp_sweep.md:
#   bash benchmarks/mlp_sweep_vs_peers.sh          # ~15 min on 2 cores
# Needs ../shared/peers (its setup.sh makes /tmp/peers-*). Knobs: BATCHES (32,...,1024),
# PEER_ONLY (peer jobs, a regex), ONLY (our rows whose name contains it), RESULTS (the report).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS_DIR:-$ROOT/../shared/peers}
OUT=${OUT:-benchmarks/results_mlp_sweep}
PY=${PY:-$ROOT/.venv/bin/python}
BATCHES=${BATCHES:-32,64,128,256,512,1024}
RESULTS=${RESULTS:-benchmarks/RESULTS_mlp_sweep.md}
cd "$ROOT"
mkdir -p "$OUT"
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
[ -x /tmp/peers-torch/bin/python ] || (cd "$PEERS" && ./setup.sh) || exit 1
PEER_RESULTS_JSONL="$ROOT/$OUT/peers.jsonl" LOG="$ROOT/$OUT/peers_run.log" BATCHES=$BATCHES \
  ONLY="${PEER_ONLY:-flax_vae_jit|pythae_vae_mlp|pythae_iwae_mlp}" bash "$PEERS/run.sh" > "$OUT/peers.txt"
"$PY" -m benchmarks.bench --suite=batch_sweep --only="${ONLY:-mlp}" --batches="$BATCHES" \
  --out="$OUT/unigen.json" || exit 1
SWEEP_COMMAND="BATCHES=$BATCHES PEER_ONLY='${PEER_ONLY:-}' ONLY='${ONLY:-}' OUT=$OUT RESULTS=$RESULTS bash benchmarks/mlp_sweep_vs_peers.sh" \
  "$PY" -m benchmarks.report "$OUT" sweep > "$RESULTS"
echo "wrote $RESULTS"
