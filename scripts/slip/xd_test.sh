#!/usr/bin/env bash
# SLIP, cross-dataset and domain generalization: evaluate the last-epoch model of xd_train.sh
# on the whole test set of DATASET, into OUTPUT/evaluation/SLIP/<CFG>_16shots/DATASET/seed<SEED>.
# Usage: bash scripts/slip/xd_test.sh DATASET SEED   (environment settings: scripts/common.sh)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/method.sh"
source "$HERE/../common.sh"
xd_test "$@"
