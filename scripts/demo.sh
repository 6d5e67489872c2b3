#!/usr/bin/env bash
# The embedded default, end to end on a CPU in a few minutes: base-to-new generalization on one Mini-B2N
# dataset (default MiniShapes: 16 generated shape classes, 8 base and 8 new) with mini-ViT, the tiny CLIP
# this project pre-trained on a generated image-caption corpus (promptlearn/demo/weights/mini-ViT.pt).
# Zero-shot CLIP, CoOp, CoCoOp, MaPLe and GOPro run through the same scripts as the paper's experiments
# (16 shots, seed 1): train on the base classes, evaluate the last epoch on the base and the new classes;
# then the base/new/HM table is printed from the runs' results.json files. Finished jobs are skipped, so an
# interrupted demo continues where it stopped.
# Usage: bash scripts/demo.sh            (make demo sets up .venv first)
# Environment: DATA (default data; the dataset is generated there if missing), OUTPUT (default output/demo),
# DATASET (default mini_shapes; or mini_textures, mini_colour_shapes, mini_digits), METHODS (default
# "zsclip coop cocoop maple gopro"), OMP_NUM_THREADS (default 1), and the settings of scripts/common.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export DATA="${DATA:-data}"
export OUTPUT="${OUTPUT:-output/demo}"
export CFG="${CFG:-mini_vit}"
export SHOTS="${SHOTS:-16}"
# one thread per job: mini-ViT is too small to gain from a second one, which costs three times as much
# wall time as soon as another process wants the core
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
DATASET="${DATASET:-mini_shapes}"
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python
export PYTHON

start=$SECONDS
for method in ${METHODS:-zsclip coop cocoop maple gopro}; do
  echo "=== $method"
  if [ "$method" = zsclip ]; then
    bash scripts/zsclip/zeroshot.sh "$DATASET" base
    bash scripts/zsclip/zeroshot.sh "$DATASET" new
  else
    bash "scripts/$method/base2new_train.sh" "$DATASET" 1
    bash "scripts/$method/base2new_test.sh" "$DATASET" 1
  fi
done

[ "${DRY_RUN:-0}" = 1 ] && exit 0
echo "=== $DATASET, base-to-new (accuracy %, seed 1)"
"$PYTHON" scripts/make_tables.py "$OUTPUT" --tables b2n --shots "$SHOTS"
echo "Runs, logs and checkpoints: $OUTPUT ($((SECONDS - start)) s)"
