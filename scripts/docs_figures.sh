#!/usr/bin/env bash
# The example pictures of the README (docs/*.png), made by the project's own commands from small runs on a CPU:
# base-to-new on one dataset for zero-shot CLIP, SLIP, CoOp and GOPro (seed 1), Figure 2's token sweep for GOPro
# on it, then the table maker's pictures (--out-dir) and the t-SNE command. Finished runs are skipped, so after
# `make demo` only the SLIP run and the sweep are trained (a few minutes on two CPU cores).
# Usage: bash scripts/docs_figures.sh
# Environment: DATASET (default mini_shapes), CFG (default mini_vit: every method needs
# configs/trainers/<Trainer>/<CFG>.yaml), OUTPUT (default output/demo), DOCS (default docs), METHODS (default
# "zsclip slip coop gopro"), TSNE_METHODS (default "zsclip slip gopro": the panels of the t-SNE picture),
# NCTX (default "1 2 4 8 16"), and the settings of scripts/common.sh (DATA, SHOTS, ...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export DATA="${DATA:-data}"
export OUTPUT="${OUTPUT:-output/demo}"
export CFG="${CFG:-mini_vit}"
export SHOTS="${SHOTS:-16}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"  # as in scripts/demo.sh
DATASET="${DATASET:-mini_shapes}"
DOCS="${DOCS:-docs}"
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python
export PYTHON

for method in ${METHODS:-zsclip slip coop gopro}; do
  echo "=== $method on $DATASET"
  if [ "$method" = zsclip ]; then
    bash scripts/zsclip/zeroshot.sh "$DATASET" base
    bash scripts/zsclip/zeroshot.sh "$DATASET" new
  else
    bash "scripts/$method/base2new_train.sh" "$DATASET" 1
    bash "scripts/$method/base2new_test.sh" "$DATASET" 1
  fi
done
echo "=== Figure 2 sweep (GOPro) on $DATASET"
DATASETS="$DATASET" SEEDS=1 bash scripts/tables/figure2_prompt_tokens.sh

tables_dir="$OUTPUT/tables"
"$PYTHON" scripts/make_tables.py "$OUTPUT" --tables b2n figure2 --shots "$SHOTS" --out-dir "$tables_dir" > /dev/null

models=()
for method in ${TSNE_METHODS:-zsclip slip gopro}; do
  read -r trainer config_dir <<< "$(source "scripts/$method/method.sh" && echo "$TRAINER $CONFIG_DIR")"
  models+=(--model "$trainer" "configs/trainers/$config_dir/$CFG.yaml")
  if [ "$method" != zsclip ]; then
    models+=("$OUTPUT/base2new/train_base/$DATASET/shots_$SHOTS/$trainer/$CFG/seed1")
  fi
done
"$PYTHON" scripts/plot_tsne.py --root "$DATA" --dataset-config-file "configs/datasets/$DATASET.yaml" --classes base \
  "${models[@]}" --out "$OUTPUT/figures/tsne_${DATASET}_base.png"

mkdir -p "$DOCS"
cp "$tables_dir/b2n_per_dataset.png" "$DOCS/example_b2n_per_dataset.png"
cp "$tables_dir/figure2_prompt_tokens_gopro_$CFG.png" "$DOCS/example_figure2_prompt_tokens.png"
cp "$OUTPUT/figures/tsne_${DATASET}_base.png" "$DOCS/example_tsne.png"
echo "Wrote $DOCS/example_b2n_per_dataset.png, $DOCS/example_figure2_prompt_tokens.png, $DOCS/example_tsne.png"
