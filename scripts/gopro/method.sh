# shellcheck shell=bash disable=SC2034  # the variables are read by scripts/common.sh
# GOPro's settings for the scripts of this folder (sourced): the paper's formulation (vit_b16, 50 epochs)
# for base-to-new; vit_b16_xd for the ImageNet model of cross-dataset and domain generalization, trained
# on all 1,000 classes. Evaluations load the last epoch, never a checkpoint chosen on test data.
# CFG=vit_b16_official runs the official code's structure instead.
METHOD=gopro
TRAINER=GOPro
CONFIG_DIR=GOPro
B2N_CFG=vit_b16
XD_CFG=vit_b16_xd
