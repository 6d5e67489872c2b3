#!/usr/bin/env bash
# SLIP, base-to-new: evaluate the last-epoch model of base2new_train.sh on the new classes
# of DATASET, into OUTPUT/base2new/test_new/DATASET/shots_16/SLIP/<CFG>/seed<SEED>.
# Usage: bash scripts/slip/base2new_test.sh DATASET SEED   (environment settings: scripts/common.sh)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/method.sh"
source "$HERE/../common.sh"
base2new_test "$@"
