# shellcheck shell=bash disable=SC2034  # the variables are read by scripts/common.sh
# SLIP's settings for the scripts of this folder (sourced): this codebase's reading of GOPro's SLIP row
# (README, "SLIP"): vit_b16 (10 epochs) for base-to-new; vit_b16_xd for the ImageNet model of cross-dataset
# and domain generalization, trained on all 1,000 classes. Evaluations load the last epoch.
METHOD=slip
TRAINER=SLIP
CONFIG_DIR=SLIP
B2N_CFG=vit_b16
XD_CFG=vit_b16_xd
