#!/usr/bin/env bash
# Cross-dataset transfer: for every method and seed, train on ImageNet (all 1,000 classes, 16 shots), then
# evaluate the last-epoch model on the whole test set of each target dataset (zero-shot CLIP: evaluate
# ImageNet and the targets).
# Usage: bash scripts/tables/table_cross_dataset.sh [METHOD...]   (default: zsclip slip coop cocoop maple gopro)
# SEEDS (default "1 2 3"; GOPro's official scripts used "1 2 3 4 5") and DATASETS (default: the 10
# targets) choose the runs; other settings as in scripts/common.sh. The ImageNet models are shared with
# table2_domain_generalization.sh. Print the tables with: python scripts/make_tables.py
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../common.sh"

transfer_sweep "$XD_TARGETS" "$@"
