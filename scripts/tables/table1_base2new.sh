#!/usr/bin/env bash
# Table 1 and the per-dataset base-to-new results: for every dataset, method and seed, train on the base
# classes, then evaluate the last-epoch model on the new classes (zero-shot CLIP: evaluate on both).
# Usage: bash scripts/tables/table1_base2new.sh [METHOD...]   (default: zsclip slip coop cocoop maple gopro)
# SEEDS (default "1 2 3"; GOPro's official scripts used "1 2 3 4 5") and DATASETS (default: the 11
# datasets) choose the runs; other settings as in scripts/common.sh. Finished jobs are skipped, so running
# the sweep again continues where it stopped. Print the tables with: python scripts/make_tables.py
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../common.sh"

select_methods "$@"
read_list DATASETS "${DATASETS:-$B2N_DATASETS}"
datasets=("${LIST[@]}")
read_list SEEDS "$SEEDS"
seeds=("${LIST[@]}")

for dataset in "${datasets[@]}"; do
  for method in "${METHODS[@]}"; do
    if [ "$method" = zsclip ]; then
      run_script zsclip zeroshot.sh "$dataset" base
      run_script zsclip zeroshot.sh "$dataset" new
      continue
    fi
    for seed in "${seeds[@]}"; do
      run_script "$method" base2new_train.sh "$dataset" "$seed"
      run_script "$method" base2new_test.sh "$dataset" "$seed"
    done
  done
done
