#!/usr/bin/env bash
# The study of docs/preregistration.md (amendment 2), as run: two lanes at once on a 2-core machine, one torch
# thread each. Lane 1: the base model's evaluation, then forward seeds 100, 101, ...; lane 2: reverse seeds
# 100, 101, ...; each seed is trained, then evaluated, before the next starts. No seed is started after CUTOFF
# (a clock time fixed before the first run; the seeds that finish are analysed, in seed order, none dropped).
#   CUTOFF=16:45 INSTRUMENT=rubrics/probes/FILE.safetensors bash docs/results/prereg/run_study.sh
# from a checkout of the commit of the last amendment (docs/preregistration.md).
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-outputs/prereg}; RUNS=${RUNS:-outputs/runs}; CUTOFF=$(date -d "${CUTOFF:?a clock time, e.g. 16:45}" +%s)
export OMP_NUM_THREADS=1 WANDB_MODE=offline
HMX=${HMX:-hmx}
INSTRUMENT=${INSTRUMENT:?the instrument head chosen by amendment 2}
SUITE=(suite.benchmarks=[] suite.sycophancy.enabled=false suite.expression.limit=null suite.expression.max_new_tokens=64
  judge=probe "judge.probe.head=$PWD/rubrics/probes/hmx_feel.smollm2-135m.safetensors"
  +judge@suite.expression.judge=probe
  "suite.expression.judge.probe.head=$PWD/$INSTRUMENT")
mkdir -p "$OUT/logs"

lane() {  # lane ARM EXTRA...: train and evaluate seeds 100..109 of one arm until the cut-off
  local arm=$1; shift
  for seed in $(seq 100 109); do
    if (( $(date +%s) >= CUTOFF )); then echo "$(date +%T) $arm: cut-off reached before seed $seed"; break; fi
    local name=$arm-s$seed
    echo "$(date +%T) $name: train"
    $HMX train experiment=hmx_feel_smollm2_probe_cpu seed=$seed run_name=$name "paths.runs_dir=$RUNS" logger=none "$@" \
      >"$OUT/logs/$name.train.log" 2>&1 || { echo "$(date +%T) $name: training failed"; continue; }
    echo "$(date +%T) $name: eval"
    $HMX eval "run_dir=$RUNS/$name" "output_dir=$OUT/$name" "${SUITE[@]}" >"$OUT/logs/$name.eval.log" 2>&1 \
      || echo "$(date +%T) $name: evaluation failed"
  done
  echo "$(date +%T) $arm: done"
}

(
  echo "$(date +%T) base: eval"
  $HMX eval model=smollm2-135m "output_dir=$OUT/base" "${SUITE[@]}" >"$OUT/logs/base.eval.log" 2>&1 || echo "base: failed"
  lane fwd
) > "$OUT/logs/lane1.log" 2>&1 &
lane rev rubric.direction=reverse > "$OUT/logs/lane2.log" 2>&1 &
wait
