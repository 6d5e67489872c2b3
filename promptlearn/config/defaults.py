"""The default config: every key the engine reads, with Dassl's names and default values, plus the keys prompt
learning adds, and (last) the Dassl keys that only domain adaptation, semi-supervised learning or Dassl's CNN
classifier read, kept so that configs and trainers written for Dassl still merge.

A YAML file or a command-line ``KEY VALUE`` pair may only set keys that exist here (or that a trainer adds in
its ``extend_cfg``), so this file is the one place that lists every engine key.
"""
from yacs.config import CfgNode as CN

_C = CN()

_C.VERSION = 1
# Where the log, checkpoints, tensorboard events and results.json of a run go
_C.OUTPUT_DIR = "./output"
# Folder to resume from (empty: OUTPUT_DIR itself)
_C.RESUME = ""
# >= 0: seed Python, NumPy and torch with it; negative: no fixed seed
_C.SEED = -1
_C.USE_CUDA = True
# Log what is built (trainer, dataset, evaluator, dataset summary)
_C.VERBOSE = True

# ---------------------------------------------------------------------------------------------------- input
_C.INPUT = CN()
_C.INPUT.SIZE = (224, 224)
# Resampling of every resize: "bilinear", "bicubic" or "nearest"
_C.INPUT.INTERPOLATION = "bilinear"
# Names of the training transforms, any order (applied in the fixed order of data/transforms/transforms.py)
_C.INPUT.TRANSFORMS = ()
# No transform at all: the loaders return the decoded images
_C.INPUT.NO_TRANSFORM = False
# Normalization (ImageNet's statistics; CLIP configs set CLIP's)
_C.INPUT.PIXEL_MEAN = [0.485, 0.456, 0.406]
_C.INPUT.PIXEL_STD = [0.229, 0.224, 0.225]
# Parameters of the transforms that take one: random_crop, random_resized_crop, cutout, gaussian_noise,
# randaugment, colorjitter, randomgrayscale, gaussian_blur
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

# -------------------------------------------------------------------------------------------------- dataset
_C.DATASET = CN()
# The data root: the folder that holds one folder per dataset
_C.DATASET.ROOT = ""
# A reader registered in DATASET_REGISTRY
_C.DATASET.NAME = ""
# Images per class drawn for few-shot training, K >= 1 (a class with fewer gives all of its images, with a
# warning, as in Dassl); -1: the whole training split
_C.DATASET.NUM_SHOTS = -1
# "all", "base" (the lower half of the labels) or "new" (the upper half, relabeled from 0)
_C.DATASET.SUBSAMPLE_CLASSES = "all"

# ---------------------------------------------------------------------------------------------- dataloader
_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 4
# Views per training image: K > 1 makes each image key a list of K independently augmented views
_C.DATALOADER.K_TRANSFORMS = 1
# Also return each training image resized and normalized but not augmented, as "img0"
_C.DATALOADER.RETURN_IMG0 = False
_C.DATALOADER.TRAIN_X = CN()
# RandomSampler or SequentialSampler (under torchrun: a DistributedSampler, shuffled unless Sequential)
_C.DATALOADER.TRAIN_X.SAMPLER = "RandomSampler"
# Images per step of one process; under torchrun with N processes a step sees N times as many
_C.DATALOADER.TRAIN_X.BATCH_SIZE = 32
_C.DATALOADER.TEST = CN()
_C.DATALOADER.TEST.SAMPLER = "SequentialSampler"
_C.DATALOADER.TEST.BATCH_SIZE = 32

# ---------------------------------------------------------------------------------------------------- model
_C.MODEL = CN()
# Weights loaded into the learnable modules before training (tensors whose name and shape fit)
_C.MODEL.INIT_WEIGHTS = ""
_C.MODEL.BACKBONE = CN()
# CLIP backbone: "ViT-B/16", "ViT-B/32", "RN50", ..., or a tiny test backbone such as "tiny-ViT"
_C.MODEL.BACKBONE.NAME = ""
# Explicit CLIP weights file; empty: $CLIP_WEIGHTS_DIR/<file> or ~/.cache/clip/<file>
_C.MODEL.BACKBONE.PATH = ""
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

# ------------------------------------------------------------------------------------------------- optimizer
_C.OPTIM = CN()
# adam, amsgrad, sgd, rmsprop, radam or adamw
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
# With STAGED_LR, the child modules named in NEW_LAYERS train at LR and the others at LR * BASE_LR_MULT
_C.OPTIM.STAGED_LR = False
_C.OPTIM.NEW_LAYERS = ()
_C.OPTIM.BASE_LR_MULT = 0.1
# Stepped once per epoch: "single_step" (STEPSIZE[-1]; <= 0 means MAX_EPOCH), "multi_step" or "cosine"
_C.OPTIM.LR_SCHEDULER = "single_step"
_C.OPTIM.STEPSIZE = (-1,)
_C.OPTIM.GAMMA = 0.1
_C.OPTIM.MAX_EPOCH = 10
# WARMUP_EPOCH > 0 epochs before the schedule: "constant" (WARMUP_CONS_LR) or "linear" (from WARMUP_MIN_LR)
_C.OPTIM.WARMUP_EPOCH = -1
_C.OPTIM.WARMUP_TYPE = "linear"
_C.OPTIM.WARMUP_CONS_LR = 1e-5
_C.OPTIM.WARMUP_MIN_LR = 1e-5
# True: the schedule starts at its own epoch 0 after warmup; False: as if it had run during warmup
_C.OPTIM.WARMUP_RECOUNT = True

# ---------------------------------------------------------------------------------------------------- train
_C.TRAIN = CN()
# Keep a checkpoint of every CHECKPOINT_FREQ-th epoch (<= 0: only of the last epoch)
_C.TRAIN.CHECKPOINT_FREQ = 0
# Between those, a resume point at the end of the first epoch that ends CHECKPOINT_MINUTES or more after the
# last checkpoint (0: after every epoch; negative: never), removed when the next checkpoint is written: a killed
# run loses at most an epoch or CHECKPOINT_MINUTES of training, whichever is longer
_C.TRAIN.CHECKPOINT_MINUTES = 5.0
# Log a progress line every PRINT_FREQ batches (and after the last batch of each epoch)
_C.TRAIN.PRINT_FREQ = 10

# ----------------------------------------------------------------------------------------------------- test
_C.TEST = CN()
# An evaluator registered in EVALUATOR_REGISTRY
_C.TEST.EVALUATOR = "Classification"
# Also report every class's accuracy and their mean
_C.TEST.PER_CLASS_RESULT = False
# Also save the normalized confusion matrix to OUTPUT_DIR/cmat.pt
_C.TEST.COMPUTE_CMAT = False
# Skip every evaluation during and after training
_C.TEST.NO_TEST = False
# The split of the final evaluation: "test" or "val"
_C.TEST.SPLIT = "test"
# The weights of the final evaluation: "last_step" or "best_val" (the epoch with the best accuracy on the
# validation split, which is then evaluated after every epoch)
_C.TEST.FINAL_MODEL = "last_step"

# -------------------------------------------------------------------------------------------------- trainer
_C.TRAINER = CN()
# A trainer registered in TRAINER_REGISTRY; each adds its own node TRAINER.<NODE>
_C.TRAINER.NAME = ""

# ------------------------------------------------------------------------------- Dassl keys read by nothing here
# Domain adaptation and generalization (source/target domains, the domain sampler), semi-supervised learning
# (the unlabelled loader, labelled-subset sizes, dataset-specific folds), the class-balanced sampler and
# Dassl's CNN classifier head. This engine has none of those; the keys remain, with Dassl's defaults, so that
# a config or trainer written for Dassl merges unchanged. A run warns about each one set to another value
# (``promptlearn.config.warn_dassl_only_keys``): it has no effect.
DASSL_ONLY_KEYS = {
    "DATASET.SOURCE_DOMAINS": (),
    "DATASET.TARGET_DOMAINS": (),
    "DATASET.NUM_LABELED": -1,
    "DATASET.VAL_PERCENT": 0.1,
    "DATASET.STL10_FOLD": -1,
    "DATASET.CIFAR_C_TYPE": "",
    "DATASET.CIFAR_C_LEVEL": 1,
    "DATASET.ALL_AS_UNLABELED": False,
    "DATALOADER.TRAIN_X.N_DOMAIN": 0,
    "DATALOADER.TRAIN_X.N_INS": 16,
    "DATALOADER.TRAIN_U.SAME_AS_X": True,
    "DATALOADER.TRAIN_U.SAMPLER": "RandomSampler",
    "DATALOADER.TRAIN_U.BATCH_SIZE": 32,
    "DATALOADER.TRAIN_U.N_DOMAIN": 0,
    "DATALOADER.TRAIN_U.N_INS": 16,
    "MODEL.BACKBONE.PRETRAINED": True,
    "MODEL.HEAD.NAME": "",
    "MODEL.HEAD.HIDDEN_LAYERS": (),
    "MODEL.HEAD.ACTIVATION": "relu",
    "MODEL.HEAD.BN": True,
    "MODEL.HEAD.DROPOUT": 0.0,
    "TRAIN.COUNT_ITER": "train_x",
}


# Keys that say where and how a run is carried out, not what it computes: a rerun into a run's folder may change
# them (every other key, with the trainer's own TRAINER.<NODE>, is part of the run's definition; see
# promptlearn/engine/run_folder.py). The Dassl-only keys above have no effect, so they define nothing either.
NOT_DEFINING_KEYS = ("OUTPUT_DIR", "RESUME", "DATASET.ROOT", "MODEL.BACKBONE.PATH", "USE_CUDA", "VERBOSE",
                     "DATALOADER.NUM_WORKERS", "TRAIN.PRINT_FREQ", "TRAIN.CHECKPOINT_MINUTES", *DASSL_ONLY_KEYS)


def _add_key(node: CN, key: str, value) -> None:
    *parents, leaf = key.split(".")
    for name in parents:
        if name not in node:
            node[name] = CN()
        node = node[name]
    node[leaf] = value


for _key, _value in DASSL_ONLY_KEYS.items():
    _add_key(_C, _key, _value)
