#!/usr/bin/env bash
# SLIP, base-to-new: train on the base classes of DATASET with SEED (16 shots) into
# OUTPUT/base2new/train_base/DATASET/shots_16/SLIP/<CFG>/seed<SEED>.
# Usage: bash scripts/slip/base2new_train.sh DATASET SEED   (environment settings: scripts/common.sh)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/method.sh"
source "$HERE/../common.sh"
base2new_train "$@"
