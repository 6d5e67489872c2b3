"""Default config: Dassl's keys and default values, plus the keys prompt learning adds.

A YAML file or a command-line ``KEY VALUE`` pair may only set keys that exist here (or that a
trainer adds in its ``extend_cfg``), so this file is the one place that lists every engine key.
"""
from yacs.config import CfgNode as CN

_C = CN()

_C.VERSION = 1
# Directory for the log, checkpoints, tensorboard events and results.json
_C.OUTPUT_DIR = "./output"
# Directory to resume from (default: OUTPUT_DIR itself)
_C.RESUME = ""
# A negative seed means no seeding
_C.SEED = -1
_C.USE_CUDA = True
_C.VERBOSE = True

###########################
# Input
###########################
_C.INPUT = CN()
_C.INPUT.SIZE = (224, 224)
# "bilinear", "bicubic" or "nearest"
_C.INPUT.INTERPOLATION = "bilinear"
# Names of the training transforms, in any order (see data/transforms)
_C.INPUT.TRANSFORMS = ()
_C.INPUT.NO_TRANSFORM = False
_C.INPUT.PIXEL_MEAN = [0.485, 0.456, 0.406]
_C.INPUT.PIXEL_STD = [0.229, 0.224, 0.225]
_C.INPUT.CROP_PADDING = 4
_C.INPUT.RRCROP_SCALE = (0.08, 1.0)
_C.INPUT.CUTOUT_N = 1
_C.INPUT.CUTOUT_LEN = 16
_C.INPUT.GN_MEAN = 0.0
_C.INPUT.GN_STD = 0.15
_C.INPUT.RANDAUGMENT_N = 2
_C.INPUT.RANDAUGMENT_M = 10
_C.INPUT.COLORJITTER_B = 0.4
_C.INPUT.COLORJITTER_C = 0.4
_C.INPUT.COLORJITTER_S = 0.4
_C.INPUT.COLORJITTER_H = 0.1
_C.INPUT.RGS_P = 0.2
_C.INPUT.GB_P = 0.5
_C.INPUT.GB_K = 21

###########################
# Dataset
###########################
_C.DATASET = CN()
_C.DATASET.ROOT = ""
_C.DATASET.NAME = ""
_C.DATASET.SOURCE_DOMAINS = ()
_C.DATASET.TARGET_DOMAINS = ()
_C.DATASET.NUM_LABELED = -1
# Number of images per class for few-shot training (-1: the whole training set)
_C.DATASET.NUM_SHOTS = -1
_C.DATASET.VAL_PERCENT = 0.1
_C.DATASET.STL10_FOLD = -1
_C.DATASET.CIFAR_C_TYPE = ""
_C.DATASET.CIFAR_C_LEVEL = 1
_C.DATASET.ALL_AS_UNLABELED = False
# "all", "base" (first half of the labels) or "new" (second half, relabeled from 0)
_C.DATASET.SUBSAMPLE_CLASSES = "all"

###########################
# Dataloader
###########################
_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 4
# Apply the training transform K times to an image (K > 1 gives a list of K views)
_C.DATALOADER.K_TRANSFORMS = 1
# Also return the image resized, without augmentation, as "img0"
_C.DATALOADER.RETURN_IMG0 = False
_C.DATALOADER.TRAIN_X = CN()
_C.DATALOADER.TRAIN_X.SAMPLER = "RandomSampler"
_C.DATALOADER.TRAIN_X.BATCH_SIZE = 32
_C.DATALOADER.TRAIN_X.N_DOMAIN = 0
_C.DATALOADER.TRAIN_X.N_INS = 16
_C.DATALOADER.TRAIN_U = CN()
_C.DATALOADER.TRAIN_U.SAME_AS_X = True
_C.DATALOADER.TRAIN_U.SAMPLER = "RandomSampler"
_C.DATALOADER.TRAIN_U.BATCH_SIZE = 32
_C.DATALOADER.TRAIN_U.N_DOMAIN = 0
_C.DATALOADER.TRAIN_U.N_INS = 16
_C.DATALOADER.TEST = CN()
_C.DATALOADER.TEST.SAMPLER = "SequentialSampler"
_C.DATALOADER.TEST.BATCH_SIZE = 32

###########################
# Model
###########################
_C.MODEL = CN()
# Path to weights loaded into the trainable modules before training
_C.MODEL.INIT_WEIGHTS = ""
_C.MODEL.BACKBONE = CN()
# CLIP backbone: "ViT-B/16", "ViT-B/32", "RN50", ..., or a tiny test backbone such as "tiny-ViT"
_C.MODEL.BACKBONE.NAME = ""
_C.MODEL.BACKBONE.PRETRAINED = True
# Explicit CLIP weights file; empty: $CLIP_WEIGHTS_DIR/<file> or ~/.cache/clip/<file>
_C.MODEL.BACKBONE.PATH = ""
_C.MODEL.HEAD = CN()
_C.MODEL.HEAD.NAME = ""
_C.MODEL.HEAD.HIDDEN_LAYERS = ()
_C.MODEL.HEAD.ACTIVATION = "relu"
_C.MODEL.HEAD.BN = True
_C.MODEL.HEAD.DROPOUT = 0.0
# Largest number of prompt sequences given to the text encoder in one call at evaluation time
# (bounds memory when every image has its own prompt per class); 0 = no limit
_C.MODEL.TEXT_BATCH_SIZE = 8192
# > 0: text-encoder passes that need gradients run in chunks of this many prompt sequences, each keeping
# only its input and recomputing its activations in backward (per-image prompts at ImageNet's class
# counts: GOPro, CoCoOp); costs one more text forward per step. 0 = keep every activation
_C.MODEL.TEXT_RECOMPUTE_BATCH = 0
# TRAINER.<X>.PREC "amp" on a CPU with bfloat16 instructions (AVX512-BF16 or AMX): autocast to bfloat16
# instead of running in fp32 (opt-in: results agree with fp32 within bfloat16's precision)
_C.MODEL.CPU_AMP = False

###########################
# Optimization
###########################
_C.OPTIM = CN()
_C.OPTIM.NAME = "adam"
_C.OPTIM.LR = 0.0003
_C.OPTIM.WEIGHT_DECAY = 5e-4
_C.OPTIM.MOMENTUM = 0.9
_C.OPTIM.SGD_DAMPNING = 0
_C.OPTIM.SGD_NESTEROV = False
_C.OPTIM.RMSPROP_ALPHA = 0.99
_C.OPTIM.ADAM_BETA1 = 0.9
_C.OPTIM.ADAM_BETA2 = 0.999
# PyTorch's fused optimizer step for sgd, adam, amsgrad and adamw (the same update, one pass per parameter)
_C.OPTIM.FUSED = True
# Staged LR: layers named in NEW_LAYERS get LR, the others LR * BASE_LR_MULT
_C.OPTIM.STAGED_LR = False
_C.OPTIM.NEW_LAYERS = ()
_C.OPTIM.BASE_LR_MULT = 0.1
# "single_step", "multi_step" or "cosine"
_C.OPTIM.LR_SCHEDULER = "single_step"
_C.OPTIM.STEPSIZE = (-1,)
_C.OPTIM.GAMMA = 0.1
_C.OPTIM.MAX_EPOCH = 10
# Warmup epochs (-1: no warmup), "constant" or "linear"
_C.OPTIM.WARMUP_EPOCH = -1
_C.OPTIM.WARMUP_TYPE = "linear"
_C.OPTIM.WARMUP_CONS_LR = 1e-5
_C.OPTIM.WARMUP_MIN_LR = 1e-5
# Restart the successor scheduler's epoch count after warmup
_C.OPTIM.WARMUP_RECOUNT = True

###########################
# Train
###########################
_C.TRAIN = CN()
# Save a checkpoint every CHECKPOINT_FREQ epochs (0: only after the last epoch)
_C.TRAIN.CHECKPOINT_FREQ = 0
# Print a progress line every PRINT_FREQ batches
_C.TRAIN.PRINT_FREQ = 10
_C.TRAIN.COUNT_ITER = "train_x"

###########################
# Test
###########################
_C.TEST = CN()
_C.TEST.EVALUATOR = "Classification"
_C.TEST.PER_CLASS_RESULT = False
_C.TEST.COMPUTE_CMAT = False
_C.TEST.NO_TEST = False
_C.TEST.SPLIT = "test"
# Model deployed for the final test: "last_step" or "best_val" (selected on the validation split)
_C.TEST.FINAL_MODEL = "last_step"

###########################
# Trainer
###########################
_C.TRAINER = CN()
_C.TRAINER.NAME = ""
