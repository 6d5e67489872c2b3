#!/usr/bin/env bash
# The embedded default, end to end on a CPU in a few minutes: base-to-new generalization on DemoShapes (10
# generated shape classes; 5 base, 5 new) with tiny-ViT-shapes, a tiny CLIP pre-trained on shape captions
# on first use (about a minute; cached). Zero-shot CLIP, CoOp and GOPro run through the same scripts as the
# paper's experiments (16 shots, seed 1): train on the base classes, evaluate the last epoch on the base and
# the new classes; then the base/new/HM table is printed from the runs' results.json files.
# Usage: bash scripts/demo.sh            (make demo sets up .venv first)
# Environment: DATA (default data; DemoShapes is generated there if missing), OUTPUT (default output/demo),
# METHODS (default "zsclip coop gopro"), and the settings of scripts/common.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export DATA="${DATA:-data}"
export OUTPUT="${OUTPUT:-output/demo}"
export CFG="${CFG:-tiny_vit_shapes_demo}"
export SHOTS="${SHOTS:-16}"
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python
export PYTHON

for method in ${METHODS:-zsclip coop gopro}; do
  echo "=== $method"
  if [ "$method" = zsclip ]; then
    bash scripts/zsclip/zeroshot.sh demo_shapes base
    bash scripts/zsclip/zeroshot.sh demo_shapes new
  else
    bash "scripts/$method/base2new_train.sh" demo_shapes 1
    bash "scripts/$method/base2new_test.sh" demo_shapes 1
  fi
done

echo "=== DemoShapes, base-to-new (accuracy %, seed 1)"
"$PYTHON" scripts/make_tables.py "$OUTPUT" --tables b2n --shots "$SHOTS"
echo "Runs, logs and checkpoints: $OUTPUT"
