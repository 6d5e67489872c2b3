"""Train and evaluate a CLIP prompt-learning method (CoOp's ``train.py`` command line).

    python train.py --root DATA --trainer GOPro \\
        --dataset-config-file configs/datasets/caltech101.yaml \\
        --config-file configs/trainers/GOPro/vit_b16.yaml \\
        --output-dir output/... [--seed 1] [--eval-only --model-dir DIR --load-epoch N] [KEY VALUE ...]

Runs under ``torchrun --nproc_per_node N train.py ...`` for several GPUs (or CPU processes).
"""
import argparse
import logging
import os
import sys

# OpenMP threads that reach a barrier sleep instead of spinning. On a CPU that other processes share, spinning
# threads wait for one that lost its core: steps ran several times slower (benchmarks/contention.py). Read when
# torch loads OpenMP, hence before the import; an OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

import datasets  # noqa: F401  (registers the dataset readers)
import trainers  # noqa: F401  (registers the trainers)
from promptlearn.config import get_cfg_default, merge_from_file, merge_from_list
from promptlearn.engine import build_trainer, extend_cfg_for_trainers
from promptlearn.errors import UserError
from promptlearn.utils import collect_env_info, set_random_seed, setup_logger
from promptlearn.utils.distributed import get_rank, init_distributed_from_env, is_distributed, shared_random_seed
from promptlearn.utils.logger import write_to_log_file

logger = logging.getLogger("promptlearn.train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=str, default="", help="path to dataset")
    parser.add_argument("--output-dir", type=str, default="", help="output directory")
    parser.add_argument("--resume", type=str, default="", help="checkpoint directory (from which the training resumes)")
    parser.add_argument("--seed", type=int, default=-1, help="only non-negative value enables a fixed seed")
    parser.add_argument("--source-domains", type=str, nargs="+", help="source domains for DA/DG")
    parser.add_argument("--target-domains", type=str, nargs="+", help="target domains for DA/DG")
    parser.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    parser.add_argument("--config-file", type=str, default="", help="path to config file")
    parser.add_argument("--dataset-config-file", type=str, default="", help="path to config file for dataset setup")
    parser.add_argument("--trainer", type=str, default="", help="name of trainer")
    parser.add_argument("--backbone", type=str, default="", help="name of CNN backbone")
    parser.add_argument("--head", type=str, default="", help="name of head")
    parser.add_argument("--eval-only", action="store_true", help="evaluation only")
    parser.add_argument("--model-dir", type=str, default="", help="load model from this directory for eval-only mode")
    parser.add_argument("--load-epoch", type=int, help="load model weights at this epoch for evaluation")
    parser.add_argument("--no-train", action="store_true", help="do not call trainer.train()")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER,
                        help="modify config options using the command-line")
    return parser


def reset_cfg(cfg, args) -> None:
    if args.root:
        cfg.DATASET.ROOT = args.root
    if args.output_dir:
        cfg.OUTPUT_DIR = args.output_dir
    if args.resume:
        cfg.RESUME = args.resume
    if args.seed >= 0:  # unlike CoOp's `if args.seed:`, --seed 0 is a seed too
        cfg.SEED = args.seed
    if args.source_domains:
        cfg.DATASET.SOURCE_DOMAINS = args.source_domains
    if args.target_domains:
        cfg.DATASET.TARGET_DOMAINS = args.target_domains
    if args.transforms:
        cfg.INPUT.TRANSFORMS = args.transforms
    if args.trainer:
        cfg.TRAINER.NAME = args.trainer
    if args.backbone:
        cfg.MODEL.BACKBONE.NAME = args.backbone
    if args.head:
        cfg.MODEL.HEAD.NAME = args.head


def setup_cfg(args):
    cfg = get_cfg_default()
    extend_cfg_for_trainers(cfg)
    if args.dataset_config_file:
        merge_from_file(cfg, args.dataset_config_file)
    if args.config_file:
        merge_from_file(cfg, args.config_file)
    reset_cfg(cfg, args)
    merge_from_list(cfg, args.opts or [])
    if not cfg.TRAINER.NAME:
        raise UserError("no trainer given: pass --trainer (ZeroshotCLIP, CoOp, CoCoOp, MaPLe, GOPro, ...)")
    if not cfg.DATASET.NAME:
        raise UserError("no dataset given: pass --dataset-config-file configs/datasets/<name>.yaml")
    cfg.freeze()
    return cfg


def main(args) -> None:
    cfg = setup_cfg(args)
    init_distributed_from_env(cfg.USE_CUDA)
    setup_logger(cfg.OUTPUT_DIR, rank=get_rank())
    if cfg.SEED >= 0:
        logger.info(f"Setting fixed seed: {cfg.SEED}")
        set_random_seed(cfg.SEED)
    elif is_distributed():
        # ranks must draw the same few-shot subset and the same initial weights
        seed = shared_random_seed()
        logger.info(f"No seed given: every rank uses the random seed {seed}")
        set_random_seed(seed)
    if torch.cuda.is_available() and cfg.USE_CUDA:
        torch.backends.cudnn.benchmark = True

    logger.info("***************")
    logger.info("** Arguments **")
    logger.info("***************")
    for key in sorted(vars(args)):
        logger.info(f"{key}: {getattr(args, key)}")
    logger.info("************")
    logger.info("** Config **")
    logger.info("************")
    logger.info(cfg)
    logger.info("Collecting env info ...")
    logger.info(f"** System info **\n{collect_env_info()}\n")

    trainer = build_trainer(cfg)
    if args.eval_only:
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
        trainer.test()
        return
    if not args.no_train:
        trainer.train()


def cli(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        main(args)
    except UserError as err:
        message = f"error: {err}"
        write_to_log_file(message)
        print(message, file=sys.stderr)
        return 1
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(cli())
