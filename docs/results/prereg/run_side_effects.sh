#!/usr/bin/env bash
# Addition 1 of docs/preregistration.md: BBQ (first 300 rows) on the base model and on forward seeds 100-104,
# re-trained with the study's command. Two lanes, one torch thread each; lane 2 starts when WAIT_FOR (a file)
# says "done" (another job's log), so that no more than two processes share the two cores. No training is
# started after CUTOFF. ARM=rev does the same for the reverse arm (rubric.direction=reverse, as the study), with
# BASE=0 when the base's BBQ evaluation exists already.
#   CUTOFF=19:15 WAIT_FOR=/path/to/log bash docs/results/prereg/run_side_effects.sh
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-outputs/side_effects}; RUNS=${RUNS:-outputs/runs}; CUTOFF=$(date -d "${CUTOFF:?a clock time}" +%s)
export OMP_NUM_THREADS=1 WANDB_MODE=offline
HMX=${HMX:-hmx}
ARM=${ARM:-fwd}; BASE=${BASE:-1}
EXTRA=(); [ "$ARM" = rev ] && EXTRA=(rubric.direction=reverse)
BBQ=(suite.benchmarks=[bbq] suite.limit=300 suite.sycophancy.enabled=false suite.expression.enabled=false)
mkdir -p "$OUT/logs"

seeds() {  # seeds SEED...: train each seed of the arm as the study did, then its BBQ evaluation
  for seed in "$@"; do
    if (( $(date +%s) >= CUTOFF )); then echo "$(date +%T) cut-off reached before $ARM-s$seed"; break; fi
    local name=$ARM-s$seed
    echo "$(date +%T) $name: train"
    $HMX train experiment=hmx_feel_smollm2_probe_cpu seed=$seed run_name=$name "paths.runs_dir=$RUNS" logger=none "${EXTRA[@]}" \
      >"$OUT/logs/$name.train.log" 2>&1 || { echo "$(date +%T) $name: training failed"; continue; }
    echo "$(date +%T) $name: bbq"
    $HMX eval "run_dir=$RUNS/$name" "output_dir=$OUT/$name" "${BBQ[@]}" >"$OUT/logs/$name.eval.log" 2>&1 \
      || echo "$(date +%T) $name: evaluation failed"
  done
}

seeds 100 102 104 > "$OUT/logs/lane1.log" 2>&1 &
(
  if [ -n "${WAIT_FOR:-}" ]; then until grep -q "done" "$WAIT_FOR" 2>/dev/null; do sleep 20; done; fi
  if [ "$BASE" = 1 ]; then
    echo "$(date +%T) base: bbq"
    $HMX eval model=smollm2-135m "output_dir=$OUT/base" "${BBQ[@]}" >"$OUT/logs/base.eval.log" 2>&1 || echo "base: failed"
  fi
  seeds 101 103
) > "$OUT/logs/lane2.log" 2>&1 &
wait
