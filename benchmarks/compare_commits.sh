#!/usr/bin/env bash
# Two commits of the library and the compiled peers, timed in one session over a batch sweep
# (what a change to a step's speed is measured with). Each commit runs from a temporary
# `git worktree`; the peers from ../shared/peers (its setup.sh makes /tmp/peers-*).
#   bash benchmarks/compare_commits.sh BEFORE AFTER OUT_DIR
# Knobs: ONLY=substring of the bench rows (default convchunk), BATCHES=256,512,1024,
# PEER_ONLY=regex of the peer jobs (default: the compiled conv VAE and DCGAN peers). BEFORE and
# AFTER may be the same commit: it is measured once (rows against the peers only).
# Writes OUT_DIR/{peers.jsonl,unigen_BEFORE.json,unigen_AFTER.json,README.md} (README.md is
# rewritten each time: notes on a run go to OUT_DIR/NOTES.md).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BEFORE=$1; AFTER=$2; OUT=$(mkdir -p "$3" && cd "$3" && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
BATCHES=${BATCHES:-256,512,1024}
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
if [ "${REPORT_ONLY:-0}" != 1 ]; then  # REPORT_ONLY=1: rewrite README.md from OUT_DIR's files
PEER_RESULTS_JSONL="$OUT/peers.jsonl" LOG="$OUT/peers_run.log" BATCHES=$BATCHES \
  ONLY="${PEER_ONLY:-compile:heavy:pythae_vae_conv|compile:torch_dcgan}" \
  bash "$ROOT/../shared/peers/run.sh" > "$OUT/peers.txt" 2>&1 || exit 1
for commit in $(printf '%s\n' "$BEFORE" "$AFTER" | awk '!seen[$0]++'); do  # one run per commit
  wt=$(mktemp -d); git -C "$ROOT" worktree add -q --detach "$wt" "$commit" || exit 1
  (cd "$wt" && "$PY" -m benchmarks.bench --suite=batch_sweep --only="${ONLY:-convchunk}" \
     --batches="$BATCHES" --out="$OUT/unigen_$commit.json") > "$OUT/unigen_$commit.log" 2>&1
  rc=$?; git -C "$ROOT" worktree remove --force "$wt"; [ $rc = 0 ] || exit $rc
done
fi
(cd "$ROOT" && "$PY" - "$OUT" "$BEFORE" "$AFTER") <<'PYEOF'
import json, pathlib, sys
out, before, after = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
# Each row's peers (report.PAIRS); the fastest of them measured is the reference.
sys.path.insert(0, ".")  # the repository (the heredoc runs there)
from benchmarks import report  # noqa: E402
peer_of = {name: names for name, names, *_ in report.PAIRS}
peers = {}
for line in (out / "peers.jsonl").read_text().splitlines():
  r = json.loads(line)
  peers[(r["name"], int(r["batch"]))] = float(r["median_steps_per_s"])
rows = {c: json.loads((out / f"unigen_{c}.json").read_text())["rows"] for c in (before, after)}
two = before != after
lines = [f"# Commit {before}" + (f" vs {after}" if two else "") + ", steps/s, with the peers "
         "in the same session", "",
         f"Command: `bash benchmarks/compare_commits.sh {before} {after} {out.name}` "
         "(experiments paused: an otherwise idle 2-core machine).", "",
         f"| row | batch | peer | peer steps/s | {before} | ratio |"
         + (f" {after} | ratio | {after} / {before} |" if two else ""),
         "|---|---|---|---|---|---|" + ("---|---|---|" if two else "")]
for a, b in zip(rows[before], rows[after]):
  # A row no longer in report.PAIRS (an option tried and dropped): its longest-prefix row's peers.
  names = peer_of.get(a["name"]) or next((v for k, v in sorted(peer_of.items(), key=lambda kv: -len(kv[0]))
                                          if a["name"].startswith(k)), [])
  measured = {n: peers[(n, a["batch"])] for n in names if (n, a["batch"]) in peers}
  peer = max(measured, key=measured.get) if measured else "-"
  ps = measured.get(peer, float("nan"))
  x, y = a["steps_per_s"], b["steps_per_s"]
  lines.append(f"| {a['name']} | {a['batch']} | {peer} | {ps:.3f} | {x:.3f} | {x / ps:.2f}x |"
               + (f" {y:.3f} | {y / ps:.2f}x | {y / x:.2f} |" if two else ""))
(out / "README.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
