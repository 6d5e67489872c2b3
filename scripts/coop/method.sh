# shellcheck shell=bash disable=SC2034  # the variables are read by scripts/common.sh
# CoOp's settings for the scripts of this folder (sourced). Base-to-new uses the setting CoCoOp's paper
# compares with: 4 context tokens initialised from "a photo of a", 200 epochs, 50 on ImageNet; the
# ImageNet model of the cross-dataset and domain-generalization protocols is trained for 50 epochs.
METHOD=coop
TRAINER=CoOp
CONFIG_DIR=CoOp
B2N_CFG=vit_b16_ctxv1
B2N_CFG_IMAGENET=vit_b16_ep50_ctxv1
XD_CFG=vit_b16_ep50_ctxv1
