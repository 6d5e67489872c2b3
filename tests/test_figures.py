"""The paper's figures: every method's ``image_embedding`` is what its logits see; the t-SNE command (Figure 3) on
two trained tiny models and zero-shot CLIP (the picture, its settings and points, determinism under a seed, and a
clear error for every kind of mismatched checkpoint); the Figure 2 sweep end to end on a miniature dataset, its
table and plot files holding the numbers of the runs' logs."""
import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO_ROOT, parse_accuracy
from PIL import Image
from trainer_runs import DATASET_CONFIG

import train
from promptlearn.engine import build_trainer
from promptlearn.tools import tables, tsne
from promptlearn.utils import set_random_seed
from promptlearn.utils.logger import close_logger

DATASET_YAML = os.path.join(REPO_ROOT, DATASET_CONFIG)
TINY = {  # trainer: its tiny config
    "ZeroshotCLIP": "CoOp/tiny_vit_demo.yaml", "CoOp": "CoOp/tiny_vit_demo.yaml",
    "CoCoOp": "CoCoOp/tiny_vit_demo.yaml", "MaPLe": "MaPLe/tiny_vit_demo.yaml", "GOPro": "GOPro/tiny_vit_demo.yaml",
    "GOPro official": "GOPro/tiny_vit_demo_official.yaml", "SLIP": "SLIP/tiny_vit_demo.yaml",
}


def config(name: str) -> str:
    return os.path.join(REPO_ROOT, "configs", "trainers", TINY[name])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- the embedding each model classifies with --------------------------------------------------------------------

@pytest.mark.parametrize("name", list(TINY))
def test_image_embedding_is_what_the_logits_see(demo_root, name):
    trainer_name = name.split()[0]
    cfg = train.setup_cfg(train.build_parser().parse_args([
        "--root", demo_root, "--seed", "1", "--trainer", trainer_name, "--dataset-config-file", DATASET_YAML,
        "--config-file", config(name), "DATASET.SUBSAMPLE_CLASSES", "base"]))
    set_random_seed(1)
    trainer = build_trainer(cfg)
    model = trainer.model
    with torch.no_grad():  # a trained-looking model: every learned parameter away from its initial value
        for p in model.learnable_module().parameters() if model.learnable_module() else []:
            p.add_(torch.randn_like(p) * 0.3)
    trainer.set_model_mode("eval")
    model.eval()
    images = next(iter(trainer.test_loader))["img"][:6]
    seen = []
    logits = model.logits
    model.logits = lambda image_features, text_features: seen.append(image_features) or logits(image_features,
                                                                                               text_features)
    with torch.no_grad():
        model(images)
        embedding = model.image_embedding(images)
    [image_features] = seen
    assert torch.allclose(F.normalize(embedding.float(), dim=-1), F.normalize(image_features.float(), dim=-1),
                          atol=1e-5)
    if name in ("GOPro", "MaPLe"):  # their logits see something else than the plain image encoder's output
        plain = F.normalize(model.encode_image(images).float(), dim=-1)
        assert not torch.allclose(plain, F.normalize(embedding.float(), dim=-1), atol=1e-3)


# -- Figure 3: the t-SNE command ----------------------------------------------------------------------------------

def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO_ROOT, "scripts", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(demo_root, tmp_path_factory):
    """CoOp and GOPro trained for one epoch on 2 shots of DemoShapes' base classes, through train.py's command line."""
    out = tmp_path_factory.mktemp("trained")
    dirs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIP_WEIGHTS_DIR", str(out / "no_clip_weights"))
        for name in ("CoOp", "GOPro"):
            dirs[name] = str(out / name)
            try:
                code = train.cli(["--root", demo_root, "--seed", "1", "--trainer", name, "--dataset-config-file",
                                  DATASET_YAML, "--config-file", config(name), "--output-dir", dirs[name],
                                  "DATASET.NUM_SHOTS", "2", "DATASET.SUBSAMPLE_CLASSES", "base", "OPTIM.MAX_EPOCH",
                                  "1"])
            finally:
                close_logger()
            assert code == 0
    return dirs


def tsne_args(root: str, models: list, out: str, *extra) -> list:
    args = ["--root", root, "--dataset-config-file", DATASET_YAML, "--out", out, *extra]
    for words in models:
        args += ["--model", *words]
    return args


def three_models(trained: dict) -> list:
    return [["ZeroshotCLIP", config("ZeroshotCLIP")], ["CoOp", config("CoOp"), trained["CoOp"]],
            ["GOPro", config("GOPro"), trained["GOPro"], "1"]]


def read_points(path: str) -> list:
    with open(path) as f:
        return list(csv.DictReader(f))


def run_tsne(argv) -> tuple:
    """The command in this process: (exit code, stderr)."""
    import io
    from contextlib import redirect_stderr

    err = io.StringIO()
    with redirect_stderr(err):
        code = tsne.main(load_script("plot_tsne").train_config, argv)
    return code, err.getvalue()


def test_tsne_command_writes_the_figure(demo_root, trained, tmp_path):
    out = str(tmp_path / "fig" / "tsne.png")
    # on one thread, as this module runs: t-SNE turns the last-bit differences between thread counts into
    # other points
    proc = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "plot_tsne.py"),
                           *tsne_args(demo_root, three_models(trained), out, "--seed", "3")],
                          capture_output=True, text=True, timeout=600, cwd=str(tmp_path),
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 3 * 300
        colours = image.convert("RGB").getcolors(maxcolors=1 << 22)
    assert len([c for c in colours if c[0] > 30]) > 5  # five class colours and the text, not a blank picture
    with open(str(tmp_path / "fig" / "tsne.json")) as f:
        settings = json.load(f)
    assert (settings["dataset"], settings["classes"], settings["split"], settings["seed"]) == \
        ("DemoShapes", "base", "test", 3)
    assert settings["images"] == 5 * 4 and len(settings["class_names"]) == 5
    assert settings["perplexity"] == pytest.approx(19 / 3)  # lowered for 20 images
    models = settings["models"]
    assert [m["label"] for m in models] == ["ZeroshotCLIP", "CoOp", "GOPro"]
    assert [m["epoch"] for m in models] == [None, 1, 1] and models[1]["model_dir"] == trained["CoOp"]
    assert models[2]["embedding"].startswith("GOProModel.image_embedding: P_v's output in the paper structure")
    points = read_points(str(tmp_path / "fig" / "tsne.csv"))
    assert len(points) == 3 * 20 and {p["class"] for p in points} == set(settings["class_names"])

    # in this process with the same seed: the same points
    again = str(tmp_path / "again.png")
    assert run_tsne(tsne_args(demo_root, three_models(trained), again, "--seed", "3"))[0] == 0
    assert read_points(str(tmp_path / "again.csv")) == points


def test_tsne_seed_draws_the_images(demo_root, trained, tmp_path):
    drawn = []
    for seed in (1, 2, 1):
        out = str(tmp_path / f"s{seed}.png")
        models = [["ZeroshotCLIP", config("ZeroshotCLIP")], ["CoOp", config("CoOp"), trained["CoOp"]]]
        assert run_tsne(tsne_args(demo_root, models, out, "--seed", str(seed), "--per-class", "2"))[0] == 0
        points = read_points(str(tmp_path / f"s{seed}.csv"))
        assert len(points) == 2 * 5 * 2
        drawn.append(points)
    assert {p["image"] for p in drawn[0]} != {p["image"] for p in drawn[1]} and drawn[0] == drawn[2]


def test_per_class_draw():
    labels = [0] * 5 + [1] * 2 + [2] * 4
    chosen = tsne.per_class_indices(labels, 3, seed=0)
    assert chosen == sorted(chosen) and [labels[i] for i in chosen].count(0) == 3
    assert [i for i in chosen if labels[i] == 1] == [5, 6]
    assert chosen == tsne.per_class_indices(labels, 3, seed=0) and tsne.per_class_indices(labels, 0, 0) == \
        list(range(11))


def copy_run(src: str, dst, edit_run=None, extra_key: bool = False) -> str:
    """A copy of a training folder with its results.json's run entry changed, or without results.json and with a
    parameter its trainer does not have."""
    shutil.copytree(src, dst)
    results = os.path.join(dst, "results.json")
    if edit_run is not None:
        with open(results) as f:
            data = json.load(f)
        data["run"].update(edit_run)
        with open(results, "w") as f:
            json.dump(data, f)
    if extra_key:
        os.remove(results)
        path = os.path.join(dst, "prompt_learner", "model.pth.tar-1")
        checkpoint = torch.load(path, weights_only=True)
        checkpoint["state_dict"]["meta_net.linear1.weight"] = torch.zeros(2, 2)
        torch.save(checkpoint, path)
    return str(dst)


def test_tsne_errors_on_mismatched_checkpoints(demo_root, trained, tmp_path):
    coop, gopro = trained["CoOp"], trained["GOPro"]
    out = str(tmp_path / "x.png")
    cases = [
        ([["GOPro", config("GOPro"), coop]], f"{coop} holds a CoOp model, not a GOPro one"),
        ([["CoOp", config("CoOp"), copy_run(gopro, tmp_path / "g", edit_run={"trainer": None})]],
         "has no CoOp checkpoint folder 'prompt_learner': it holds checkpoints of gopro (another trainer?)"),
        ([["CoOp", config("CoOp"), copy_run(coop, tmp_path / "c", extra_key=True)]],
         "has no place for (meta_net.linear1.weight): it was saved by another trainer or config"),
        ([["CoOp", config("CoOp"), copy_run(coop, tmp_path / "e", edit_run={"dataset": "EuroSAT"})]],
         "was trained on the base classes of EuroSAT, not on DemoShapes's"),
        ([["CoOp", config("CoOp"), copy_run(coop, tmp_path / "b", edit_run={"backbone": "ViT-B/16"})]],
         "was trained on ViT-B/16, but"),
        ([["CoOp", config("CoOp"), coop, "7"]], "model.pth.tar-7"),
        ([["CoOp", config("CoOp")]], "--model CoOp needs its training folder"),
        ([["ZeroshotCLIP", config("ZeroshotCLIP"), coop]], "ZeroshotCLIP learns nothing"),
        ([["CoOp", "nowhere.yaml", coop]], "config file not found: nowhere.yaml"),
    ]
    for models, message in cases:
        code, err = run_tsne(tsne_args(demo_root, models, out))
        assert code == 1 and message in err, (message, err)
    code, err = run_tsne(tsne_args(demo_root, [["CoOp", config("CoOp"), coop]], out, "--labels", "a", "b"))
    assert code == 1 and "--labels gives 2 titles for 1 models" in err
    assert not os.path.exists(out)
    # a model trained on all classes of a dataset (the cross-dataset protocol's) may be shown on another dataset
    transfer = copy_run(coop, tmp_path / "t", edit_run={"dataset": "ImageNet", "subsample_classes": "all"})
    assert run_tsne(tsne_args(demo_root, [["CoOp", config("CoOp"), transfer]], out, "--classes", "new"))[0] == 0


# -- Figure 2: the sweep, end to end ------------------------------------------------------------------------------

def test_figure2_sweep_end_to_end(demo_root, tmp_path, capsys):
    out = tmp_path / "output"
    env = {k: v for k, v in os.environ.items() if k not in ("CFG", "TAG", "OPTS", "EPOCHS", "LOADEP", "FORCE",
                                                             "DRY_RUN", "SEEDS", "DATASETS", "NCTX", "CONFIGS")}
    env.update({"PYTHON": sys.executable, "DATA": demo_root, "OUTPUT": str(out), "CFG": "tiny_vit_demo",
                "SHOTS": "2", "EPOCHS": "1", "NCTX": "1 2", "DATASETS": "demo_shapes", "SEEDS": "1",
                "CLIP_WEIGHTS_DIR": str(tmp_path / "no_weights"), "OMP_NUM_THREADS": "1"})
    proc = subprocess.run(["bash", os.path.join(REPO_ROOT, "scripts", "tables", "figure2_prompt_tokens.sh")], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    logged = {}
    for n in (1, 2):
        tail = f"demo_shapes/shots_2/GOPro/tiny_vit_demo_nctx{n}/seed1"
        for kind, part in (("base", "train_base"), ("new", "test_new")):
            with open(out / "base2new" / part / tail / "log.txt") as f:
                text = f.read()
            logged[n, kind] = parse_accuracy(text)
            assert f"TRAINER.GOPRO.N_CTX {n}" in text or f"N_CTX: {n}" in text
    assert tables.main([str(out), "--shots", "2", "--tables", "figure2", "--out-dir", str(tmp_path / "t")]) == 0
    assert "Figure 2" in capsys.readouterr().out
    stem = tmp_path / "t" / "figure2_prompt_tokens_gopro_tiny_vit_demo"
    with open(str(stem) + ".csv") as f:
        rows = [row for row in csv.reader(f) if not row[0].startswith("#")]
    assert rows[0] == ["Dataset", "Tokens", "Base", "Base std", "New", "New std", "HM"]
    for dataset, tokens, base, _, new, _, hm in rows[1:]:
        n = int(tokens)
        assert dataset == "demo_shapes"
        assert float(base) == pytest.approx(logged[n, "base"], abs=0.05)  # the logs print one decimal
        assert float(new) == pytest.approx(logged[n, "new"], abs=0.05)
        assert float(hm) == pytest.approx(tables.harmonic_mean(float(base), float(new)), abs=1e-3)
    assert sorted(int(r[1]) for r in rows[1:]) == [1, 2]
    with Image.open(str(stem) + ".png") as image:
        assert image.format == "PNG" and image.size[0] > 300
    assert "Missing runs: 0" in (tmp_path / "t" / "figure2_prompt_tokens_gopro_tiny_vit_demo.md").read_text()
