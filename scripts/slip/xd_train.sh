#!/usr/bin/env bash
# SLIP, cross-dataset and domain generalization: train on ImageNet, all 1,000 classes (16
# shots), with SEED into OUTPUT/imagenet/SLIP/<CFG>_16shots/seed<SEED>.
# Usage: bash scripts/slip/xd_train.sh SEED   (environment settings: scripts/common.sh)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/method.sh"
source "$HERE/../common.sh"
xd_train "$@"
