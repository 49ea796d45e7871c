#!/usr/bin/env bash
# The evaluation benchmark in one session: unigen_jax's importance-sampled log-likelihood
# (K = 5000, the roofline against a matmul measured in the same invocation) and pythae's
# get_nll on the same model size, then benchmarks/RESULTS_eval.md. ~2 min on 2 cores.
# Needs the peers' torch venv (../shared/peers/setup.sh makes /tmp/peers-torch).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-benchmarks/results_eval}
PY=${PY:-$ROOT/.venv/bin/python}
cd "$ROOT"
mkdir -p "$OUT"
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
"$PY" -m benchmarks.bench --suite=eval --eval_images=1000 --eval_k=5000 --eval_batch=100 \
  --out="$OUT/unigen_eval.json"
/tmp/peers-torch/bin/python benchmarks/pythae_nll_driver.py --images=50 --k=5000 > "$OUT/pythae_nll.json"
"$PY" -m benchmarks.report "$OUT" eval > benchmarks/RESULTS_eval.md
echo "wrote benchmarks/RESULTS_eval.md"
