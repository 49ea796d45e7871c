#!/usr/bin/env bash
# The conv rows (pythae conv VAE, PyTorch-GAN DCGAN in the peer's order) under XLA:CPU's
# alternative kernel paths, one session, each setting in its own process:
#   bash benchmarks/xla_cpu_flags.sh        # ~10 min on 2 cores
# then benchmarks/RESULTS_xla_flags.md (python -m benchmarks.report_flags DIR).
# Settings: the default, oneDNN (--xla_cpu_use_onednn), XNNPACK (--xla_cpu_use_xnnpack),
# oneDNN custom calls (--xla_cpu_experimental_onednn_custom_call), the flags this jaxlib's
# XLA accepts (an unknown flag aborts XLA, so the run proves each exists).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-benchmarks/results_xla_flags}
PY=${PY:-$ROOT/.venv/bin/python}
BATCHES=${BATCHES:-64,256}
cd "$ROOT"
mkdir -p "$OUT"
for setting in default onednn xnnpack onednn_custom_call; do
  case $setting in
    default) flags="" ;;
    onednn) flags="--xla_cpu_use_onednn=true" ;;
    xnnpack) flags="--xla_cpu_use_xnnpack=true" ;;
    onednn_custom_call) flags="--xla_cpu_experimental_onednn_custom_call=true" ;;
  esac
  for row in unigen_vae_conv_pythae unigen_gan_dcgan32_pytorchgan; do
    XLA_FLAGS="$flags" "$PY" -m benchmarks.bench --suite=batch_sweep --only="$row" \
      --skip=dfirst --batches="$BATCHES" --out="$OUT/${setting}_${row}.json"
  done
done
"$PY" -m benchmarks.report_flags "$OUT" > benchmarks/RESULTS_xla_flags.md
echo "wrote benchmarks/RESULTS_xla_flags.md"
