"""Figure 3: a t-SNE of the image embeddings each model classifies with, one panel per model, on one split of a
dataset (the paper's: EuroSAT's base classes, SLIP vs CoCoOp vs GOPro).

    RUNS=output/base2new/train_base/eurosat/shots_16
    python scripts/plot_tsne.py --root data --dataset-config-file configs/datasets/eurosat.yaml --classes base \\
        --model SLIP configs/trainers/SLIP/vit_b16.yaml $RUNS/SLIP/vit_b16/seed1 \\
        --model GOPro configs/trainers/GOPro/vit_b16.yaml $RUNS/GOPro/vit_b16/seed1 \\
        --model ZeroshotCLIP configs/trainers/CoOp/vit_b16.yaml --out figure3.png [KEY VALUE ...]

``--model TRAINER CONFIG [MODEL_DIR [EPOCH]]`` names a model as ``train.py`` builds it; MODEL_DIR is its training
folder (not for zero-shot CLIP) and EPOCH defaults to the one its ``results.json`` was evaluated at. Trailing
``KEY VALUE`` pairs apply to every model. Each model's embedding is ``PromptedCLIP.image_embedding`` (what its
logits compare with the class text features), L2-normalized as the cosine logits see it. Beside OUT go
``OUT.json`` (the settings, and for each model its checkpoint, epoch and embedding) and ``OUT.csv`` (the points).
"""
import argparse
import csv
import json
import os
import sys
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from ..engine import build_trainer
from ..errors import UserError
from ..utils.tools import atomic_write, read_json, set_random_seed
from ..utils.torchtools import load_checkpoint

SPLITS = ("test", "val")
CLASSES = ("base", "new", "all")
TITLE = "t-SNE of the image embeddings each model classifies with"


@dataclass
class ModelSpec:
    trainer: str
    config: str
    model_dir: str = ""
    epoch: Optional[int] = None


def parse_model(words: Sequence[str]) -> ModelSpec:
    if not 2 <= len(words) <= 4:
        raise UserError(f"--model takes TRAINER CONFIG [MODEL_DIR [EPOCH]], got {' '.join(words)}")
    epoch = None
    if len(words) == 4:
        if not words[3].isdigit():
            raise UserError(f"--model {' '.join(words)}: EPOCH must be a number, got {words[3]}")
        epoch = int(words[3])
    if not os.path.isfile(words[1]):
        raise UserError(f"--model {words[0]}: config file not found: {words[1]}")
    return ModelSpec(words[0], words[1], words[2] if len(words) > 2 else "", epoch)


def model_labels(specs: Sequence[ModelSpec]) -> List[str]:
    """The trainer's name, plus the config's when a trainer appears more than once."""
    names = [s.trainer for s in specs]
    return [s.trainer if names.count(s.trainer) == 1 else
            f"{s.trainer} ({os.path.splitext(os.path.basename(s.config))[0]})" for s in specs]


def trained_epoch(model_dir: str, model_name: str) -> int:
    """The epoch the training run in ``model_dir`` was evaluated at, else its latest checkpoint's."""
    results = os.path.join(model_dir, "results.json")
    if os.path.isfile(results):
        epoch = (read_json(results).get("test") or {}).get("epoch")
        if epoch:
            return int(epoch)
    pointer = os.path.join(model_dir, model_name, "checkpoint")
    if os.path.isfile(pointer):
        with open(pointer) as f:
            name = f.readline().strip()
        if name.startswith("model.pth.tar-") and name.rsplit("-", 1)[1].isdigit():
            return int(name.rsplit("-", 1)[1])
    raise UserError(f"no finished training in {model_dir} (no results.json, no {model_name}/checkpoint): give the "
                    "epoch to load as the fourth word of --model")


def check_trained_model(spec: ModelSpec, cfg, trainer, epoch: int) -> None:
    """A clear error when ``spec.model_dir`` holds another trainer's, backbone's or dataset's model."""
    name = trainer.MODEL_NAME
    results = os.path.join(spec.model_dir, "results.json")
    run = (read_json(results).get("run") or {}) if os.path.isfile(results) else {}
    if run.get("trainer") and run["trainer"] != cfg.TRAINER.NAME:
        raise UserError(f"{spec.model_dir} holds a {run['trainer']} model, not a {cfg.TRAINER.NAME} one: pass "
                        f"--model {run['trainer']} <its config> {spec.model_dir}")
    if run.get("backbone") and run["backbone"] != cfg.MODEL.BACKBONE.NAME:
        raise UserError(f"{spec.model_dir} was trained on {run['backbone']}, but {spec.config} builds "
                        f"{cfg.MODEL.BACKBONE.NAME}")
    if run.get("dataset") and run["dataset"] != cfg.DATASET.NAME and run.get("subsample_classes") != "all":
        raise UserError(f"{spec.model_dir} was trained on the {run.get('subsample_classes')} classes of "
                        f"{run['dataset']}, not on {cfg.DATASET.NAME}'s (only a model trained on all classes of a "
                        "dataset, such as the ImageNet model of cross-dataset transfer, is shown on another dataset)")
    if not os.path.isdir(os.path.join(spec.model_dir, name)):
        others = sorted(d for d in os.listdir(spec.model_dir) if os.path.isfile(
            os.path.join(spec.model_dir, d, "checkpoint"))) if os.path.isdir(spec.model_dir) else []
        found = f"it holds checkpoints of {', '.join(others)} (another trainer?)" if others else "it holds none"
        raise UserError(f"{spec.model_dir} has no {cfg.TRAINER.NAME} checkpoint folder '{name}': {found}")
    path = trainer.checkpoint_path(spec.model_dir, name, epoch)
    if os.path.isfile(path):  # (a missing epoch is reported by the loader, with the epochs that exist)
        saved = trainer.filter_loaded_state(name, load_checkpoint(path)["state_dict"])
        extra = sorted(set(saved) - set(trainer.model.learnable_module().state_dict()))
        if extra:
            raise UserError(f"{path} holds parameters that {cfg.TRAINER.NAME} with {spec.config} has no place for "
                            f"({', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''}): it was saved by another "
                            "trainer or config")


def per_class_indices(labels: Sequence[int], per_class: int, seed: int) -> List[int]:
    """At most ``per_class`` images of every class, drawn with ``seed``, in the split's order."""
    labels = np.asarray(labels)
    if per_class <= 0:
        return list(range(len(labels)))
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        chosen += list(rng.choice(where, size=per_class, replace=False)) if len(where) > per_class else list(where)
    return sorted(int(i) for i in chosen)


def embed(trainer, dataset, indices: Sequence[int], batch_size: int, workers: int) -> np.ndarray:
    """L2-normalized ``image_embedding`` of the chosen images, (N, E) float32."""
    loader = DataLoader(Subset(dataset, list(indices)), batch_size=batch_size, shuffle=False, num_workers=workers)
    model = trainer.model
    trainer.set_model_mode("eval")
    model.eval()
    out = []
    with torch.inference_mode(), trainer.autocast():
        for batch in loader:
            features = model.image_embedding(batch["img"].to(trainer.device))
            out.append(F.normalize(features.float(), dim=-1).cpu())
    return torch.cat(out).numpy()


def tsne(features: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                random_state=seed).fit_transform(features)


def embedding_doc(model) -> str:
    doc = type(model).image_embedding.__doc__ or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--root", required=True, help="dataset root")
    parser.add_argument("--dataset-config-file", required=True, help="configs/datasets/<name>.yaml")
    parser.add_argument("--model", nargs="+", action="append", required=True, metavar="WORD",
                        help="TRAINER CONFIG [MODEL_DIR [EPOCH]]; one panel each, in order")
    parser.add_argument("--labels", nargs="+", help="panel titles, one per --model (default: the trainers)")
    parser.add_argument("--classes", choices=CLASSES, default="base", help="classes shown (default: base)")
    parser.add_argument("--split", choices=SPLITS, default="test", help="split shown (default: test)")
    parser.add_argument("--per-class", type=int, default=200,
                        help="at most this many images per class, drawn with --seed; 0: all (default: 200)")
    parser.add_argument("--perplexity", type=float, default=30.0,
                        help="t-SNE perplexity, lowered to (images - 1) / 3 for few images (default: 30)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the image draw and of t-SNE (default: 1)")
    parser.add_argument("--out", required=True, help="the picture (.png); OUT.json and OUT.csv are written beside it")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config pairs for every model")
    return parser


def main(config_for: Callable, argv: Optional[List[str]] = None) -> int:
    """``config_for(train_py_argv)`` returns the config ``train.py`` would run with (scripts/plot_tsne.py passes
    train.py's own, which is why the command lives there: the library does not import the application)."""
    args = build_parser().parse_args(argv)
    try:
        run(args, config_for)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def run(args, config_for: Callable) -> None:
    specs = [parse_model(words) for words in args.model]
    labels = args.labels or model_labels(specs)
    if len(labels) != len(specs):
        raise UserError(f"--labels gives {len(labels)} titles for {len(specs)} models")
    if not args.out.lower().endswith(".png"):
        raise UserError(f"--out must name a .png file, got {args.out}")
    if len(args.opts) % 2:
        raise UserError(f"config options come in KEY VALUE pairs, got {' '.join(args.opts)}")

    embeddings, models, images = [], [], None
    for spec, label in zip(specs, labels):
        cfg = config_for(["--root", args.root, "--seed", str(args.seed), "--trainer", spec.trainer,
                          "--dataset-config-file", args.dataset_config_file, "--config-file", spec.config,
                          *args.opts, "DATASET.SUBSAMPLE_CLASSES", args.classes])
        set_random_seed(args.seed)
        trainer = build_trainer(cfg)
        learns = trainer.model.learnable_module() is not None
        if learns and not spec.model_dir:
            raise UserError(f"--model {spec.trainer} needs its training folder (MODEL_DIR): an untrained "
                            f"{spec.trainer} is not the model to show")
        if not learns and spec.model_dir:
            raise UserError(f"{spec.trainer} learns nothing: give it no MODEL_DIR")
        epoch = None
        if spec.model_dir:
            epoch = spec.epoch or trained_epoch(spec.model_dir, trainer.MODEL_NAME)
            check_trained_model(spec, cfg, trainer, epoch)
            trainer.load_model(spec.model_dir, epoch=epoch)
        loader = trainer.test_loader if args.split == "test" else trainer.val_loader
        if loader is None:
            raise UserError(f"{cfg.DATASET.NAME} has no {args.split} split")
        data = loader.dataset.data_source
        if images is None:  # the same images for every model (the same dataset config, classes and split)
            indices = per_class_indices([d.label for d in data], args.per_class, args.seed)
            images = [data[i] for i in indices]
            classnames = [trainer.lab2cname[c] for c in sorted(trainer.lab2cname)]
            dataset_name = cfg.DATASET.NAME
        elif [data[i].impath for i in indices] != [d.impath for d in images]:
            raise UserError(f"{spec.config} reads another {args.split} split than the first model's "
                            "(check its DATASET settings)")
        print(f"{label}: embedding {len(indices)} images of {dataset_name} ({args.classes} classes, {args.split})",
              file=sys.stderr)
        embeddings.append(embed(trainer, loader.dataset, indices, cfg.DATALOADER.TEST.BATCH_SIZE,
                                cfg.DATALOADER.NUM_WORKERS))
        models.append({"label": label, "trainer": spec.trainer, "config": spec.config,
                       "model_dir": spec.model_dir or None, "epoch": epoch,
                       "embedding": f"{type(trainer.model).__name__}.image_embedding: {embedding_doc(trainer.model)}"})

    if len(images) < 4:
        raise UserError(f"t-SNE needs at least 4 images, the {args.split} split has {len(images)}")
    perplexity = min(args.perplexity, (len(images) - 1) / 3)
    points = [tsne(features, perplexity, args.seed) for features in embeddings]
    labels_array = np.array([d.label for d in images])
    caption = (f"{dataset_name}, {args.classes} classes, {args.split} split: {len(images)} images, "
               f"perplexity {perplexity:.3g}, seed {args.seed}")
    from .plots import draw_scatter_panels

    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    draw_scatter_panels(list(zip(labels, points)), labels_array, classnames, TITLE, args.out, caption)
    stem = os.path.splitext(args.out)[0]
    with atomic_write(stem + ".csv") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["model", "image", "class", "x", "y"])
        for label, xy in zip(labels, points):
            for datum, (x, y) in zip(images, xy):
                writer.writerow([label, datum.impath, classnames[datum.label], f"{x:.4f}", f"{y:.4f}"])
    settings = {"figure": os.path.basename(args.out), "points": os.path.basename(stem + ".csv"),
                "dataset": dataset_name, "dataset_config": args.dataset_config_file, "classes": args.classes,
                "class_names": classnames, "split": args.split, "images": len(images), "per_class": args.per_class,
                "seed": args.seed, "perplexity": perplexity, "perplexity_asked": args.perplexity,
                "opts": list(args.opts), "normalization": "L2 (the logits are cosine similarities)",
                "models": models}
    with atomic_write(stem + ".json") as f:
        json.dump(settings, f, indent=2)
    print(f"Wrote {args.out}, {stem}.json and {stem}.csv", file=sys.stderr)
