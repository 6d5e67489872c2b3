#!/usr/bin/env bash
# Table 3, GOPro's loss ablation on base-to-new: for every row, dataset and seed, train GOPro with that
# row's losses on the base classes, then evaluate the last-epoch model on the new classes.
# Usage: bash scripts/tables/table3_ablation.sh
# Rows (ROWS, default all; cross-entropy is always on; x1 = the MoCo v3 view, x2 = the AugMix view):
#   ce        L_ce                         -> output folder <CFG>_loss_ce
#   ce_con    L_ce + L_con                 -> <CFG>_loss_ce_con
#   ce_sem1   L_ce + L_sem(x1)             -> <CFG>_loss_ce_sem1
#   ce_sem2   L_ce + L_sem(x2)             -> <CFG>_loss_ce_sem2
#   ce_sem12  L_ce + L_sem(x1 + x2)        -> <CFG>_loss_ce_sem12
#   full      L_ce + L_sem + L_con         -> <CFG>, the same runs as GOPro in table1_base2new.sh
# SEEDS (default "1 2 3"; GOPro's official scripts used "1 2 3 4 5") and DATASETS (default: the 11
# datasets) choose the runs; OPTS and TAG, when set, apply to every row; other settings as in
# scripts/common.sh. Print the tables with: python scripts/make_tables.py
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../common.sh"

row_switches() {  # ROW: the values of LOSS_SEM_MOCO LOSS_SEM_AUGMIX LOSS_CON
  case "$1" in
    ce) echo "False False False" ;;
    ce_con) echo "False False True" ;;
    ce_sem1) echo "True False False" ;;
    ce_sem2) echo "False True False" ;;
    ce_sem12) echo "True True False" ;;
    full) echo "True True True" ;;
    *) die "unknown ablation row \"$1\" (choose from: ce ce_con ce_sem1 ce_sem2 ce_sem12 full)" ;;
  esac
}

read_list ROWS "${ROWS:-ce ce_con ce_sem1 ce_sem2 ce_sem12 full}"
rows=("${LIST[@]}")
read_list DATASETS "${DATASETS:-$B2N_DATASETS}"
datasets=("${LIST[@]}")
read_list SEEDS "$SEEDS"
seeds=("${LIST[@]}")
for row in "${rows[@]}"; do
  row_switches "$row" > /dev/null
done

for row in "${rows[@]}"; do
  read -r moco augmix con <<< "$(row_switches "$row")"
  row_opts="TRAINER.GOPRO.LOSS_SEM_MOCO $moco TRAINER.GOPRO.LOSS_SEM_AUGMIX $augmix TRAINER.GOPRO.LOSS_CON $con"
  row_tag="$TAG"
  [ "$row" = full ] || row_tag="${TAG}_loss_$row"
  for dataset in "${datasets[@]}"; do
    for seed in "${seeds[@]}"; do
      OPTS="$OPTS $row_opts" TAG="$row_tag" run_script gopro base2new_train.sh "$dataset" "$seed"
      OPTS="$OPTS $row_opts" TAG="$row_tag" run_script gopro base2new_test.sh "$dataset" "$seed"
    done
  done
done
