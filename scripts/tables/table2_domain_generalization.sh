#!/usr/bin/env bash
# Table 2, domain generalization: for every method and seed, train on ImageNet (all 1,000 classes, 16
# shots), then evaluate the last-epoch model on ImageNet-V2, -Sketch, -A and -R (zero-shot CLIP: evaluate
# ImageNet and the four variants).
# Usage: bash scripts/tables/table2_domain_generalization.sh [METHOD...]   (default: every method)
# SEEDS (default "1 2 3"; GOPro's official scripts used "1 2 3 4 5") and DATASETS (default: the four
# variants) choose the runs; other settings as in scripts/common.sh. The ImageNet models are shared with
# table_cross_dataset.sh. Print the tables with: python scripts/make_tables.py
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../common.sh"

transfer_sweep "$DG_TARGETS" "$@"
