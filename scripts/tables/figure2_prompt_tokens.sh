#!/usr/bin/env bash
# Figure 2, GOPro's sensitivity to the number of prompt tokens (base-to-new): for every token count, dataset
# and seed, train GOPro on the base classes with TRAINER.GOPRO.N_CTX set to it, then evaluate the last-epoch
# model on the new classes.
# Usage: bash scripts/tables/figure2_prompt_tokens.sh
# NCTX (default "1 2 4 8 16") gives the token counts; each runs into folders <CFG>_nctx<N> (its own runs, also
# for the config's own count). With the init phrase "a photo of a" (4 tokens), fewer tokens learn the first
# words and keep the rest as fixed text, more tokens put random vectors before the phrase.
# SEEDS (default "1 2 3") and DATASETS (default: the 11 datasets) choose the runs; OPTS and TAG, when set,
# apply to every point; other settings as in scripts/common.sh.
# Plot it with: python scripts/make_tables.py output --tables figure2 --out-dir output/tables
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../common.sh"

read_list NCTX "${NCTX:-1 2 4 8 16}"
counts=("${LIST[@]}")
read_list DATASETS "${DATASETS:-$B2N_DATASETS}"
datasets=("${LIST[@]}")
read_list SEEDS "$SEEDS"
seeds=("${LIST[@]}")
for n in "${counts[@]}"; do
  check_count NCTX "$n"
  [ "$n" -ge 1 ] || die "NCTX: a prompt needs at least 1 token, got $n"
done

for n in "${counts[@]}"; do
  for dataset in "${datasets[@]}"; do
    for seed in "${seeds[@]}"; do
      OPTS="$OPTS TRAINER.GOPRO.N_CTX $n" TAG="${TAG}_nctx$n" run_script gopro base2new_train.sh "$dataset" "$seed"
      OPTS="$OPTS TRAINER.GOPRO.N_CTX $n" TAG="${TAG}_nctx$n" run_script gopro base2new_test.sh "$dataset" "$seed"
    done
  done
done
