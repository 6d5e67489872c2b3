"""Train and evaluate a CLIP prompt-learning method (CoOp's ``train.py`` command line).

    python train.py --root DATA --trainer GOPro \\
        --dataset-config-file configs/datasets/caltech101.yaml \\
        --config-file configs/trainers/GOPro/vit_b16.yaml \\
        --output-dir output/... [--seed 1] [--eval-only --model-dir DIR --load-epoch N] [KEY VALUE ...]

Under ``torchrun --nproc_per_node N train.py ...`` each process trains on its share of every batch (several
GPUs, or CPU processes).

The output folder records the run it holds (``run.json``) and is locked while a run uses it: a rerun of the same
run resumes it, one with other settings is refused unless ``--start-over`` is given (README, "Output folders").
Bad input ends the run with one line on stderr and exit code 1 (``PROMPTLEARN_DEBUG=1`` shows the traceback).
"""
import argparse
import contextlib
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
from promptlearn.config import check_values, get_cfg_default, merge_from_file, merge_from_list, warn_dassl_only_keys
from promptlearn.engine import build_trainer, extend_cfg_for_trainers
from promptlearn.engine.run_folder import output_folder
from promptlearn.errors import UserError
from promptlearn.modeling.backbones import prepare_clip
from promptlearn.run_record import EVALUATION, TRAINING
from promptlearn.utils import collect_env_info, set_random_seed, setup_logger
from promptlearn.utils.distributed import (
    LostRankError,
    claim_failure,
    get_rank,
    init_distributed_from_env,
    is_distributed,
    reporting_lost_ranks,
    shared_random_seed,
)
from promptlearn.utils.logger import write_to_log_file

logger = logging.getLogger("promptlearn.train")
#: set to 1 to see the traceback of an error instead of its one line
DEBUG_VARIABLE = "PROMPTLEARN_DEBUG"
# the application's loggers, whose records go to the console and the log file with the engine's
APPLICATION_LOGGERS = ("datasets", "trainers")

# flag (argparse attribute) -> the config key it sets when given; --seed is handled apart (0 is a seed)
FLAG_KEYS = {
    "root": "DATASET.ROOT",
    "output_dir": "OUTPUT_DIR",
    "resume": "RESUME",
    "transforms": "INPUT.TRANSFORMS",
    "trainer": "TRAINER.NAME",
    "backbone": "MODEL.BACKBONE.NAME",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--root", default="", help="data root: the folder holding one folder per dataset (DATASET.ROOT)")
    add("--output-dir", default="", help="folder for the log, checkpoints and results.json (OUTPUT_DIR)")
    add("--resume", default="", help="resume from the checkpoints in this folder instead of --output-dir (RESUME)")
    add("--seed", type=int, default=-1, help="seed of every random generator; 0 or more fixes it (SEED)")
    add("--transforms", nargs="+", help="training transforms, e.g. random_flip normalize (INPUT.TRANSFORMS)")
    add("--config-file", default="", help="the method's YAML (configs/trainers/<Trainer>/)")
    add("--dataset-config-file", default="", help="the dataset's YAML (configs/datasets/)")
    add("--trainer", default="", help="a registered trainer: ZeroshotCLIP, CoOp, CoCoOp, MaPLe, GOPro (TRAINER.NAME)")
    add("--backbone", default="", help="CLIP backbone, e.g. ViT-B/16 (MODEL.BACKBONE.NAME)")
    add("--eval-only", action="store_true", help="evaluate (the weights of --model-dir, if given) and stop")
    add("--model-dir", default="", help="with --eval-only: the output folder of a training run to load")
    add("--load-epoch", type=int, help="with --model-dir: load model.pth.tar-N (default: model-best.pth.tar)")
    add("--no-train", action="store_true", help="build everything, train nothing")
    add("--start-over", action="store_true", help="start a new run in --output-dir even if it holds another one "
                                                  "(its files are moved to <output-dir>/replaced/<time>/)")
    add("opts", nargs=argparse.REMAINDER, default=None, help="trailing KEY VALUE pairs that override the config")
    return parser


def reset_cfg(cfg, args) -> None:
    """Write the given flags into ``cfg`` (between the YAML files and the trailing KEY VALUE pairs)."""
    for attr, key in FLAG_KEYS.items():
        value = getattr(args, attr)
        if value:
            node, leaf = cfg, key.split(".")
            for name in leaf[:-1]:
                node = node[name]
            node[leaf[-1]] = value
    if args.seed >= 0:  # CoOp's `if args.seed:` would take --seed 0 for "no seed"
        cfg.SEED = args.seed


def setup_cfg(args):
    """Defaults + every trainer's keys, then the dataset YAML, the method YAML, the flags and the trailing opts."""
    cfg = get_cfg_default()
    extend_cfg_for_trainers(cfg)
    for path in (args.dataset_config_file, args.config_file):
        if path:
            merge_from_file(cfg, path)
    reset_cfg(cfg, args)
    merge_from_list(cfg, args.opts or [])
    if not cfg.TRAINER.NAME:
        raise UserError("no trainer given: pass --trainer (ZeroshotCLIP, CoOp, CoCoOp, MaPLe, GOPro, ...)")
    if not cfg.DATASET.NAME:
        raise UserError("no dataset given: pass --dataset-config-file configs/datasets/<name>.yaml")
    check_values(cfg)
    cfg.freeze()
    return cfg


def run_kind(args):
    """What the run writes into its folder: a training's or an evaluation's results (None: nothing)."""
    if args.eval_only:
        return EVALUATION
    return None if args.no_train else TRAINING


def seed_run(cfg) -> None:
    """Seed every generator; in a distributed run without a seed, rank 0 draws one for all ranks (they must
    draw the same few-shot images and start from the same weights)."""
    if cfg.SEED >= 0:
        logger.info(f"Setting fixed seed: {cfg.SEED}")
        set_random_seed(cfg.SEED)
    elif is_distributed():
        seed = shared_random_seed()
        logger.info(f"No seed given: every rank uses the random seed {seed}")
        set_random_seed(seed)


def log_run_settings(args, cfg) -> None:
    given = "\n".join(f"  {key}: {value}" for key, value in sorted(vars(args).items()))
    logger.info(f"Command line:\n{given}")
    logger.info(f"Config:\n{cfg}")
    logger.info(f"Environment:\n{collect_env_info()}\n")


def evaluate(trainer, args) -> None:
    """--eval-only: the weights of --model-dir (none to load only for a trainer that learns nothing)."""
    if not args.model_dir and trainer.get_model_names():
        raise UserError(f"{trainer.cfg.TRAINER.NAME} learns {', '.join(trainer.get_model_names())}, so --eval-only "
                        "needs the weights to evaluate: pass --model-dir <its training folder> [--load-epoch N]. "
                        "Only a trainer that learns nothing (ZeroshotCLIP, ZeroshotCLIP2) is evaluated as built")
    trainer.load_model(args.model_dir, epoch=args.load_epoch)
    trainer.test()


def main(args, argv=()) -> None:
    cfg = setup_cfg(args)
    prepare_clip(cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.PATH)  # a bad weights file stops before any output
    init_distributed_from_env(cfg.USE_CUDA)
    with reporting_lost_ranks(), output_folder(cfg, run_kind(args), argv, args.start_over, args.model_dir,
                                               args.load_epoch) as notes:
        setup_logger(cfg.OUTPUT_DIR, rank=get_rank(), extra_loggers=APPLICATION_LOGGERS)
        for note in notes:
            logger.info(note)
        seed_run(cfg)
        if torch.cuda.is_available() and cfg.USE_CUDA:
            torch.backends.cudnn.benchmark = True
        log_run_settings(args, cfg)
        warn_dassl_only_keys(cfg)

        trainer = build_trainer(cfg)
        if args.eval_only:
            evaluate(trainer, args)
        elif not args.no_train:
            trainer.train()


def report_error(err: Exception) -> None:
    """The error's line in the log and, from one process only, on stderr: under torchrun the first rank that
    fails says why, and the ranks that stop with it (or because of it) stay quiet; before the process group
    exists every rank has the same error, and rank 0 says it."""
    message = f"error: {err}"
    write_to_log_file(message)
    if is_distributed():
        first = claim_failure()
    else:  # a process torchrun started, failing before it joined the group, is rank RANK of WORLD_SIZE
        first = os.environ.get("WORLD_SIZE", "1") in ("", "0", "1") or os.environ.get("RANK", "0") == "0"
    if first:
        print(message, file=sys.stderr)


def cli(argv=None) -> int:
    """``python train.py``: exit code 0, or 1 with one line on stderr (and in the log) for a user's error."""
    argv = sys.argv[1:] if argv is None else [str(word) for word in argv]
    args = build_parser().parse_args(argv)
    try:
        main(args, argv)
    except (UserError, LostRankError) as err:
        if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
            raise
        report_error(err)
        return 1
    except BaseException:
        if is_distributed():
            claim_failure()  # this rank's traceback says what happened: the others stay quiet
        raise
    finally:
        if is_distributed():
            # the group is broken when a rank was lost; the process ends anyway
            with contextlib.suppress(RuntimeError):
                torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(cli())
