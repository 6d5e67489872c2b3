#!/usr/bin/env bash
# Mini-B2N: every method (zero-shot CLIP, SLIP, CoOp, CoCoOp, MaPLe, GOPro) on every Mini-B2N dataset with
# seeds 1 2 3, base-to-new with mini-ViT, through the sweep of the paper's Table 1 (scripts/tables/
# table1_base2new.sh); then the tables (base, new, HM: mean ± std over the seeds, per dataset) as Markdown,
# CSV and a plot, and the check of the benchmark's targets with the average over the datasets. Finished
# jobs are skipped, so an interrupted benchmark continues where it stopped.
# The datasets are shared among LANES sweeps that run side by side (each job on one thread: on two cores,
# two lanes of one-thread jobs finish sooner than one lane of two-thread jobs); each lane's output goes to
# OUTPUT/logs/lane<N>.log.
# Usage: bash scripts/benchmark.sh [METHOD...]     (make benchmark sets up .venv first)
# Environment: DATA (default data; the datasets are generated there if missing), OUTPUT (default
# output/mini_b2n; the tables go to OUTPUT/tables), DATASETS, SEEDS, LANES (default 2), OMP_NUM_THREADS
# (default 1), and the settings of scripts/common.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export DATA="${DATA:-data}"
export OUTPUT="${OUTPUT:-output/mini_b2n}"
export CFG="${CFG:-mini_vit}"
export SHOTS="${SHOTS:-16}"
export SEEDS="${SEEDS:-1 2 3}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# in this order the two lanes get about the same work (classes per half: 8 + 8 and 10 + 5)
DATASETS="${DATASETS:-mini_shapes mini_colour_shapes mini_textures mini_digits}"
LANES="${LANES:-2}"
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python
export PYTHON
[[ "$LANES" =~ ^[1-9][0-9]*$ ]] || { echo "error: LANES must be a positive integer, got \"$LANES\"" >&2; exit 1; }

read -ra datasets <<< "$DATASETS"
start=$SECONDS
if [ "${DRY_RUN:-0}" = 1 ] || [ "$LANES" = 1 ]; then
  DATASETS="${datasets[*]}" bash scripts/tables/table1_base2new.sh "$@"
else
  mkdir -p "$OUTPUT/logs"
  # background jobs of a script ignore Ctrl-C: on an interrupt, stop every lane (this process group) too,
  # so that the next start resumes the jobs instead of racing with orphaned ones
  trap 'trap - INT TERM; echo "interrupted: run the same command again to continue" >&2; kill 0' INT TERM
  pids=()
  for ((lane = 0; lane < LANES; lane++)); do
    mine=()
    for ((i = lane; i < ${#datasets[@]}; i += LANES)); do mine+=("${datasets[i]}"); done
    [ ${#mine[@]} -gt 0 ] || continue
    log="$OUTPUT/logs/lane$((lane + 1)).log"
    echo "lane $((lane + 1)): ${mine[*]} (log: $log)"
    DATASETS="${mine[*]}" bash scripts/tables/table1_base2new.sh "$@" > "$log" 2>&1 &
    pids+=("$!:$log")
  done
  failed=0
  for entry in "${pids[@]}"; do
    if ! wait "${entry%%:*}"; then
      failed=1
      echo "error: a lane stopped; the end of its log (${entry#*:}):" >&2
      tail -n 15 "${entry#*:}" >&2
    fi
  done
  [ "$failed" = 0 ] || exit 1
fi
elapsed=$((SECONDS - start))
[ "${DRY_RUN:-0}" = 1 ] && exit 0

tables="$OUTPUT/tables"
mkdir -p "$tables"
"$PYTHON" scripts/make_tables.py "$OUTPUT" --tables b2n --shots "$SHOTS" --out-dir "$tables"
echo
"$PYTHON" -m promptlearn.demo.report "$OUTPUT" --shots "$SHOTS" --datasets "${datasets[@]}" --out "$tables/targets.md"
echo "Runs: $OUTPUT; tables: $tables (sweep: ${elapsed} s)"
