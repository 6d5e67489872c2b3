# shellcheck shell=bash disable=SC2034  # the variables are read by scripts/common.sh
# CoCoOp's settings for the scripts of this folder (sourced): 4 context tokens from "a photo of a",
# batch 1, 10 epochs, for every protocol (as CoCoOp's own scripts).
METHOD=cocoop
TRAINER=CoCoOp
CONFIG_DIR=CoCoOp
B2N_CFG=vit_b16_c4_ep10_batch1_ctxv1
XD_CFG=vit_b16_c4_ep10_batch1_ctxv1
