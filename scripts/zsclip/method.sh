# shellcheck shell=bash disable=SC2034  # the variables are read by scripts/common.sh
# Zero-shot CLIP's settings for the scripts of this folder (sourced). Only the input and backbone settings
# of the config matter; ZS_TRAINER=ZeroshotCLIP2 gives the prompt ensemble instead of the dataset's template.
METHOD=zsclip
TRAINER="${ZS_TRAINER:-ZeroshotCLIP}"
CONFIG_DIR=CoOp
ZS_CFG=vit_b16
