# shellcheck shell=bash disable=SC2034  # the variables are read by scripts/common.sh
# MaPLe's settings for the scripts of this folder (sourced): prompts in 9 layers for 5 epochs for
# base-to-new; in 3 layers for 2 epochs for the ImageNet model of cross-dataset and domain generalization.
METHOD=maple
TRAINER=MaPLe
CONFIG_DIR=MaPLe
B2N_CFG=vit_b16_c2_ep5_batch4_2ctx
XD_CFG=vit_b16_c2_ep5_batch4_2ctx_cross_datasets
