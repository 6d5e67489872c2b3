"""CLIP checkpoint files, the path every real run takes: the tests write the files users have (OpenAI's
TorchScript archive, state dicts in fp16 and fp32, a wrapped state dict) and load them through every
lookup route (MODEL.BACKBONE.PATH, $CLIP_WEIGHTS_DIR/<file>, ~/.cache/clip/<file> with the SHA256
check). The loaded model equals OpenAI's own ``clip.load(path, jit=False)``, weight by weight and dtype
by dtype. Every trainer trains and evaluates through ``train.py`` on such a file, and ``--eval-only
--model-dir`` gives the same accuracy; new-class evaluation keeps the new classes' name embeddings. One
file has ViT-B/32's image tower (12 x 768, patch 32) with a 2-layer text tower, so that GOPro's projectors
and MaPLe's couplings run at a real width. Bad files stop ``train.py`` with one line, exit code 1 and
nothing written."""
import os
import shutil

import pytest
import torch
from clip_files import (
    B32_SMALL_TEXT_ARGS,
    FORMS,
    TEST_ARGS,
    TEST_RN_ARGS,
    file_spec,
    fp16_clip,
    random_spec,
    write_checkpoint,
)
from conftest import REPO_ROOT, read_results

import train
from promptlearn.engine import TRAINER_REGISTRY, build_trainer
from promptlearn.errors import UserError
from promptlearn.modeling.backbones import (
    BACKBONES,
    architecture_of,
    expected_architecture,
    load_clip,
    resolve_weights_path,
)
from promptlearn.modeling.clip_compat import clip
from promptlearn.tools.make_demo_data import make_demo_dataset

NAME = "test-ViT"  # a file-backed backbone registered by the tests
SAME_WEIGHTS = "test-ViT-in-process"  # the same weights built in-process, for comparison
DATASET_YAML = os.path.join(REPO_ROOT, "configs", "datasets", "demo_shapes.yaml")
CLASS_NAME_BUFFERS = ("token_prefix", "token_suffix")


def config(path):
    return os.path.join(REPO_ROOT, "configs", "trainers", path + ".yaml")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every file form of the same tiny CLIP (TEST_ARGS, seed SEED)."""
    folder = tmp_path_factory.mktemp("clip_files")
    return {form: write_checkpoint(form, str(folder / f"{form}.pt")) for form in FORMS}


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    """DemoShapes with 2 training, 1 validation and 2 test images per class (32 pixels)."""
    root = tmp_path_factory.mktemp("small_data")
    make_demo_dataset(str(root), seed=0, split_sizes={"train": 2, "val": 1, "test": 2}, size=32)
    return str(root)


@pytest.fixture
def registered(monkeypatch, files):
    """NAME as a file-backed backbone whose file is ``torchscript.pt`` (OpenAI's form) with its hash, and
    SAME_WEIGHTS with those weights built in-process."""
    spec = file_spec(NAME, files["torchscript"])
    monkeypatch.setitem(BACKBONES, NAME, spec)
    monkeypatch.setitem(BACKBONES, SAME_WEIGHTS, random_spec(SAME_WEIGHTS))
    return spec


def assert_same_weights(model, expected_state):
    state = model.state_dict()
    assert list(state) == list(expected_state)
    for key, value in state.items():
        assert value.dtype == expected_state[key].dtype and torch.equal(value, expected_state[key]), key


# ------------------------------------------------------------------------------------------- file forms

@pytest.mark.parametrize("form", FORMS)
def test_each_file_form_loads_as_openai_clip_load_does(files, registered, form):
    model = load_clip(NAME, files[form])
    plain = files["fp16"] if form == "wrapped" else files[form]  # clip.load reads no wrapped state dict
    reference = clip.load(plain, device="cpu", jit=False)[0].state_dict()  # clip.load casts to fp32 on a CPU
    # on any other device it keeps build_model's dtypes; "meta" shows them without a GPU (no values)
    dtypes = {key: value.dtype for key, value in clip.load(plain, device="meta", jit=False)[0].state_dict().items()}
    state = model.state_dict()
    assert list(state) == list(reference) and "input_resolution" not in state
    for key, value in state.items():
        assert value.dtype == dtypes[key], key
        assert torch.equal(value.float(), reference[key]), key
    assert {dtypes["visual.conv1.weight"], dtypes["token_embedding.weight"]} == {torch.float16, torch.float32}
    assert type(model).__module__ == "clip.model" and not model.training
    # every form gives the fp16 model built in-process from the same initialization
    assert_same_weights(model, fp16_clip(TEST_ARGS).state_dict())
    if form == "fp32":  # the file's fp32 values were rounded to fp16 as convert_weights does
        raw = torch.load(files["fp32"], weights_only=True)["visual.conv1.weight"]
        assert raw.dtype == torch.float32 and not torch.equal(raw, state["visual.conv1.weight"].float())
        assert torch.equal(raw.half(), state["visual.conv1.weight"])


# ------------------------------------------------------------------------------------------- lookup routes

def test_lookup_routes(files, registered, monkeypatch, tmp_path, engine_log):
    expected = fp16_clip(TEST_ARGS).state_dict()
    home, weights = tmp_path / "home", tmp_path / "weights"
    cache = home / ".cache" / "clip"
    for folder in (weights, cache):
        folder.mkdir(parents=True)
        shutil.copy(files["torchscript"], folder / registered.file)
    monkeypatch.setenv("HOME", str(home))

    # $CLIP_WEIGHTS_DIR/<file>
    monkeypatch.setenv("CLIP_WEIGHTS_DIR", str(weights))
    assert resolve_weights_path(registered) == str(weights / registered.file)
    assert_same_weights(load_clip(NAME), expected)
    assert f"Loading CLIP ({NAME}) from {weights / registered.file}" in engine_log.messages
    # ~/.cache/clip/<file> when CLIP_WEIGHTS_DIR is not set
    monkeypatch.delenv("CLIP_WEIGHTS_DIR")
    assert resolve_weights_path(registered) == str(cache / registered.file)
    assert_same_weights(load_clip(NAME), expected)
    # MODEL.BACKBONE.PATH comes first, under any file name (a file of one's own: no hash to check)
    assert resolve_weights_path(registered, files["fp32"]) == files["fp32"]
    assert_same_weights(load_clip(NAME, files["fp32"]), expected)
    with pytest.raises(UserError, match="CLIP weights file not found at MODEL.BACKBONE.PATH=/nowhere.pt"):
        resolve_weights_path(registered, "/nowhere.pt")


def test_the_weights_folder_checks_the_published_hash(files, registered, monkeypatch, tmp_path):
    monkeypatch.setenv("CLIP_WEIGHTS_DIR", str(tmp_path))
    shutil.copy(files["fp16"], tmp_path / registered.file)  # CLIP weights, but not the published file
    with pytest.raises(UserError) as err:
        load_clip(NAME)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / registered.file} is not the published {registered.file}")
    assert registered.sha256 in message and "Delete it and get torchscript.pt again" in message


def test_openai_backbones_know_their_architecture_and_file():
    for name in ("ViT-B/16", "ViT-B/32", "RN50", "ViT-L/14@336px"):
        spec = BACKBONES[name]
        assert spec.url == f"https://openaipublic.azureedge.net/clip/models/{spec.sha256}/{spec.file}"
        assert spec.url == clip.clip._MODELS[name]
    for spec in BACKBONES.values():  # OpenAI's file of that name passes the architecture check
        if not spec.is_tiny:
            with torch.device("meta"):
                model = clip.model.CLIP(**spec.clip_args)
            assert architecture_of(model) == expected_architecture(spec), spec.name
    vit_b16 = BACKBONES["ViT-B/16"].clip_args
    assert (vit_b16["vision_layers"], vit_b16["vision_width"], vit_b16["vision_patch_size"]) == (12, 768, 16)
    assert BACKBONES["RN50"].clip_args["vision_layers"] == (3, 4, 6, 3)


# ------------------------------------------------------------------------------------------- trainers on a file

def run_args(root, out, trainer, cfg, subsample, backbone=NAME, path="", flags=(), opts=()):
    path_opts = ["MODEL.BACKBONE.PATH", path] if path else []
    return ["--root", root, "--seed", "1", "--trainer", trainer, "--dataset-config-file", DATASET_YAML,
            "--config-file", config(cfg), "--output-dir", out, *flags, "MODEL.BACKBONE.NAME", backbone, *path_opts,
            "DATASET.NUM_SHOTS", "1", "DATASET.SUBSAMPLE_CLASSES", subsample, "OPTIM.MAX_EPOCH", "1",
            "OPTIM.WARMUP_EPOCH", "0", "DATALOADER.NUM_WORKERS", "0", *opts]


def succeeded(result):
    code, out, err = result
    assert code == 0 and "Traceback" not in err, err
    return out


@pytest.mark.parametrize("trainer, route", [("ZeroshotCLIP", "weights_dir"), ("ZeroshotCLIP2", "home_cache")])
def test_zero_shot_on_a_file_equals_the_same_weights_in_memory(cli, small_root, files, registered, monkeypatch,
                                                                 tmp_path, trainer, route):
    folder = tmp_path / "weights" if route == "weights_dir" else tmp_path / "home" / ".cache" / "clip"
    folder.mkdir(parents=True)
    shutil.copy(files["torchscript"], folder / registered.file)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if route == "weights_dir":
        monkeypatch.setenv("CLIP_WEIGHTS_DIR", str(folder))
    else:
        monkeypatch.delenv("CLIP_WEIGHTS_DIR")
    on_file, in_memory = str(tmp_path / "file"), str(tmp_path / "memory")
    out = succeeded(cli(run_args(small_root, on_file, trainer, "CoOp/tiny_vit_demo", "all", flags=["--eval-only"])))
    assert f"Loading CLIP ({NAME}) from {folder / registered.file}" in out
    succeeded(cli(run_args(small_root, in_memory, trainer, "CoOp/tiny_vit_demo", "all", backbone=SAME_WEIGHTS,
                           flags=["--eval-only"])))
    assert read_results(on_file)["test"] == read_results(in_memory)["test"]
    assert read_results(on_file)["test"]["total"] == 20


LEARNED = [("CoOp", "CoOp/tiny_vit_demo"), ("CoCoOp", "CoCoOp/tiny_vit_demo"), ("MaPLe", "MaPLe/tiny_vit_demo"),
           ("GOPro", "GOPro/tiny_vit_demo"), ("GOPro", "GOPro/tiny_vit_demo_official")]


def check_new_class_model(small_root, out_dir, trainer, cfg, train_dir, backbone, path, opts=()):
    """The model for the new classes, loaded from the base checkpoint: the learned tensors are the
    checkpoint's, the class-name embeddings its own (the checkpoint holds the base classes')."""
    args = train.build_parser().parse_args(run_args(small_root, out_dir, trainer, cfg, "new", backbone, path,
                                                    opts=opts))
    new_trainer = build_trainer(train.setup_cfg(args))
    model_name = TRAINER_REGISTRY.get(trainer).MODEL_NAME
    fresh = {key: value.clone() for key, value in new_trainer.learner.state_dict().items()}
    new_trainer.load_model(train_dir, epoch=1)
    saved = torch.load(os.path.join(train_dir, model_name, "model.pth.tar-1"), weights_only=True)["state_dict"]
    names = [key for key in saved if key.rsplit(".", 1)[-1] in CLASS_NAME_BUFFERS]
    assert len(names) == 2  # saved with the checkpoint ...
    for key, value in new_trainer.learner.state_dict().items():
        if key in names:  # ... but not loaded: the new classes' names stay (the prefix is SOT for every class)
            assert torch.equal(value, fresh[key]), key
            assert key.endswith("token_prefix") or not torch.equal(value, saved[key]), key
        else:
            assert torch.equal(value, saved[key]), key
    return saved


@pytest.mark.parametrize("trainer, cfg", LEARNED)
def test_trainer_on_a_torchscript_file_trains_reloads_and_evaluates_new_classes(cli, small_root, files, registered,
                                                                               tmp_path, trainer, cfg):
    path = files["torchscript"]
    train_dir, base_dir, new_dir = (str(tmp_path / name) for name in ("train", "eval_base", "eval_new"))
    out = succeeded(cli(run_args(small_root, train_dir, trainer, cfg, "base", path=path)))
    assert f"Loading CLIP ({NAME}) from {path}" in out
    trained = read_results(train_dir)["test"]
    assert trained["epoch"] == 1 and trained["total"] == 10

    reload = ["--eval-only", "--model-dir", train_dir, "--load-epoch", "1"]
    succeeded(cli(run_args(small_root, base_dir, trainer, cfg, "base", path=path, flags=reload)))
    assert read_results(base_dir)["test"] == trained
    succeeded(cli(run_args(small_root, new_dir, trainer, cfg, "new", path=path, flags=reload)))
    new = read_results(new_dir)
    assert new["run"]["num_classes"] == 5 and new["test"]["total"] == 10 and new["test"]["epoch"] == 1
    saved = check_new_class_model(small_root, str(tmp_path / "unused"), trainer, cfg, train_dir, NAME, path)

    if trainer == "CoOp":  # training on the file is training on its weights: the same context, bit for bit
        memory_dir = str(tmp_path / "memory")
        succeeded(cli(run_args(small_root, memory_dir, trainer, cfg, "base", backbone=SAME_WEIGHTS)))
        in_memory = torch.load(os.path.join(memory_dir, "prompt_learner", "model.pth.tar-1"), weights_only=True)
        assert torch.equal(in_memory["state_dict"]["ctx"], saved["ctx"])
        assert read_results(memory_dir)["test"] == trained


# ------------------------------------------------------------------------------------------- ViT-B/32's width

@pytest.fixture(scope="module")
def vit_b32_file(tmp_path_factory):
    """A state dict with ViT-B/32's image tower and a 2-layer text tower (fp16, about 280 MB)."""
    path = str(tmp_path_factory.mktemp("vit_b32") / "ViT-B-32-small-text.pt")
    torch.save(fp16_clip(B32_SMALL_TEXT_ARGS).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """DemoShapes' first 4 classes (2 base) with one image per class and split: a few ViT-B/32 passes per run."""
    root = tmp_path_factory.mktemp("tiny_data")
    make_demo_dataset(str(root), seed=0, split_sizes={"train": 1, "val": 1, "test": 1}, size=32, num_classes=4)
    return str(root)


@pytest.mark.parametrize("trainer, cfg, opts, shapes", [
    ("MaPLe", "MaPLe/tiny_vit_demo", ["TRAINER.MAPLE.PROMPT_DEPTH", "2"],
     {"prompt_learner.proj.weight": (768, 512), "prompt_learner.compound_prompt_projections.0.weight": (768, 512)}),
    ("GOPro", "GOPro/tiny_vit_demo", [],
     {"generators.orig.style.weight": (12, 512, 768), "generators.moco.content.weight": (12, 512, 768),
      "simproj.linear.weight": (512, 512)}),
])
def test_vit_b32_image_tower_trains_and_reloads(cli, tiny_root, vit_b32_file, tmp_path, trainer, cfg, opts, shapes):
    opts = ["INPUT.SIZE", "(224, 224)", "DATALOADER.TRAIN_X.BATCH_SIZE", "2", *opts]
    train_dir, base_dir = str(tmp_path / "train"), str(tmp_path / "eval_base")
    out = succeeded(cli(run_args(tiny_root, train_dir, trainer, cfg, "base", "ViT-B/32", vit_b32_file, opts=opts)))
    assert (f"WARNING: {vit_b32_file} has a 2-layer text tower where ViT-B/32 has 12 (a small test checkpoint?); "
            "it is used as it is") in out
    model_name = TRAINER_REGISTRY.get(trainer).MODEL_NAME
    saved = torch.load(os.path.join(train_dir, model_name, "model.pth.tar-1"), weights_only=True)["state_dict"]
    assert {key: tuple(saved[key].shape) for key in shapes} == shapes
    reload = ["--eval-only", "--model-dir", train_dir, "--load-epoch", "1"]
    succeeded(cli(run_args(tiny_root, base_dir, trainer, cfg, "base", "ViT-B/32", vit_b32_file, reload, opts)))
    assert read_results(base_dir)["test"] == read_results(train_dir)["test"]
    assert read_results(base_dir)["test"]["total"] == 2


# ------------------------------------------------------------------------------------------- bad files

def one_error_line(result):
    code, out, err = result
    assert code == 1 and "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture
def coop_checkpoint(cli, small_root, tmp_path):
    """A training checkpoint of this project (CoOp, tiny-ViT)."""
    out = str(tmp_path / "coop_run")
    succeeded(cli(run_args(small_root, out, "CoOp", "CoOp/tiny_vit_demo", "base", backbone="tiny-ViT")))
    return os.path.join(out, "prompt_learner", "model.pth.tar-1")


def bad_file(kind, files, tmp_path, request):
    """(backbone name, MODEL.BACKBONE.PATH, INPUT.SIZE, the expected start of the message after "error: ")."""
    if kind == "truncated":
        path = str(tmp_path / "truncated.pt")
        with open(files["torchscript"], "rb") as src, open(path, "wb") as dst:
            dst.write(src.read()[: os.path.getsize(files["torchscript"]) // 2])
        return NAME, path, 32, f"cannot read CLIP weights from {path}: it is neither a TorchScript archive"
    if kind == "training checkpoint":
        path = request.getfixturevalue("coop_checkpoint")
        return NAME, path, 32, f"{path} is not a CLIP checkpoint: it lacks CLIP's text_projection"
    if kind == "RN under ViT-B/16":
        path = write_checkpoint("fp16", str(tmp_path / "RN50.pt"), args=TEST_RN_ARGS)
        return "ViT-B/16", path, 224, f"{path} is not a ViT-B/16 checkpoint: it has a ResNet image tower"
    if kind == "patch 32 under ViT-B/16":
        vit_b32_file = request.getfixturevalue("vit_b32_file")
        return ("ViT-B/16", vit_b32_file, 224, f"{vit_b32_file} is not a ViT-B/16 checkpoint: it has a ViT image "
                "tower (12 layers of width 768, patch 32, 224 px)")
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["truncated", "training checkpoint", "RN under ViT-B/16", "patch 32 under ViT-B/16"])
def test_bad_weights_files_stop_before_any_output(cli, small_root, files, registered, tmp_path, request, kind):
    backbone, path, size, start = bad_file(kind, files, tmp_path, request)
    earlier, fresh = tmp_path / "earlier_run", tmp_path / "new_run"
    earlier.mkdir()
    (earlier / "log.txt").write_text("an earlier run\n")
    opts = ["INPUT.SIZE", f"({size}, {size})"]
    for out in (earlier, fresh):
        line = one_error_line(cli(run_args(small_root, str(out), "CoOp", "CoOp/tiny_vit_demo", "base", backbone, path,
                                           opts=opts)))
        assert line.startswith(f"error: {start}"), line
    assert os.listdir(earlier) == ["log.txt"] and (earlier / "log.txt").read_text() == "an earlier run\n"
    assert not fresh.exists()
    if kind == "training checkpoint":
        assert "--model-dir" in line
    if kind.endswith("ViT-B/16"):
        assert "ViT-B/16 has a ViT image tower (12 layers of width 768, patch 16, 224 px)" in line


def test_hash_mismatch_in_the_cache_folder_stops_before_any_output(cli, small_root, files, registered, monkeypatch,
                                                                   tmp_path):
    cache = tmp_path / "home" / ".cache" / "clip"
    cache.mkdir(parents=True)
    shutil.copy(files["fp16"], cache / registered.file)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLIP_WEIGHTS_DIR")
    out = tmp_path / "out"
    line = one_error_line(cli(run_args(small_root, str(out), "ZeroshotCLIP", "CoOp/tiny_vit_demo", "base",
                                       flags=["--eval-only"])))
    assert line.startswith(f"error: {cache / registered.file} is not the published {registered.file}: its SHA256 is ")
    assert "Delete it and get torchscript.pt again" in line
    assert not out.exists()
