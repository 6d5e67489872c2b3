#!/usr/bin/env bash
# Zero-shot CLIP: evaluate on the test set of DATASET, restricted to the base or new classes or all of
# them (default: all), into OUTPUT/ZeroshotCLIP/<CFG>/<CLASSES>/DATASET. Nothing is trained.
# Usage: bash scripts/zsclip/zeroshot.sh DATASET [base|new|all]   (environment settings: scripts/common.sh)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/method.sh"
source "$HERE/../common.sh"
zeroshot "$@"
