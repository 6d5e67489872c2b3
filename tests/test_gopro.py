"""GOPro: the base-to-new protocol through train.py's command line for the paper's and the official structure
(on a demo dataset whose base and new halves differ in size), the generators' and projector's shapes from the
backbone, the style/content statistics and both losses against hand computations, the augmented views, the
loss-term switches of Table 3 (views loaded, encoder passes and loss terms of a training step), the cost of
evaluation, where L_con's gradient goes, and the two tiny configs (D1-D4)."""
import math
import os
import random

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO_ROOT, TINY_SPLIT_SIZES, parse_accuracy, read_results
from PIL import Image
from torchvision.transforms import Compose, GaussianBlur, InterpolationMode, Normalize, Resize, ToTensor
from trainer_runs import DATASET_CONFIG, merged_config

import train
from promptlearn.data.data_manager import build_data_loader
from promptlearn.data.datasets import Datum
from promptlearn.data.transforms.views import LEVEL_BINS, ReferenceAugMix, build_augmix_view, build_mocov3_view
from promptlearn.engine import build_trainer
from promptlearn.errors import UserError
from promptlearn.modeling import load_clip, tokenize
from promptlearn.modeling.backbones import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD
from promptlearn.modeling.losses import prompt_consistency_loss, simclr_loss
from promptlearn.modeling.prompts import embed_tokens
from promptlearn.tools.make_demo_data import make_demo_dataset, render
from promptlearn.utils import set_random_seed
from promptlearn.utils.logger import close_logger
from trainers.gopro import VIEWS, GOPro, GOProModel, style_content_statistics

CONFIGS = {structure: os.path.join(REPO_ROOT, "configs", "trainers", "GOPro", name) for structure, name in
           [("paper", "tiny_vit_demo.yaml"), ("official", "tiny_vit_demo_official.yaml")]}
DATASET_YAML = os.path.join(REPO_ROOT, DATASET_CONFIG)
CLASSNAMES = ["circle", "hexagon", "shooting_star"]
MODEL_NAME = GOPro.MODEL_NAME
EPOCHS = 2
SHOTS = 2  # 2 shots x 5 base classes = 10 images: two batches of 4 per epoch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny backbones gain nothing from more threads; leave the other cores alone."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_clip():
    return load_clip("tiny-ViT").float()


def method_cfg(structure: str = "paper", **keys):
    """TRAINER.GOPRO as train.py merges it from a tiny config, with ``keys`` changed."""
    cfg = merged_config("GOPro", CONFIGS[structure]).TRAINER.GOPRO.clone()
    cfg.defrost()
    cfg.update(keys)
    return cfg


def build_gopro(root: str, output_dir: str, structure: str = "paper", opts=(), subsample: str = "base") -> GOPro:
    """The trainer train.py builds on ``root`` (2 shots of the base classes, unless told otherwise)."""
    args = train.build_parser().parse_args([
        "--root", root, "--seed", "1", "--trainer", "GOPro", "--dataset-config-file", DATASET_YAML,
        "--config-file", CONFIGS[structure], "--output-dir", output_dir, "DATASET.NUM_SHOTS", str(SHOTS),
        "DATASET.SUBSAMPLE_CLASSES", subsample, *map(str, opts)])
    cfg = train.setup_cfg(args)
    set_random_seed(cfg.SEED)
    return build_trainer(cfg)


def first_batch(trainer: GOPro) -> dict:
    set_random_seed(1)
    return next(iter(trainer.train_loader_x))


# ------------------------------------------------------------------------------------ base-to-new via train.py

@pytest.fixture(scope="module")
def odd_root(tmp_path_factory):
    """DemoShapes with 9 classes: 5 base and 4 new, so a base-class checkpoint holds 5 class-name embeddings and
    the new-class model 4 (the official loader then fails with a size mismatch, REFERENCE B1)."""
    root = tmp_path_factory.mktemp("data9")
    make_demo_dataset(str(root), seed=0, split_sizes=TINY_SPLIT_SIZES, size=40, num_classes=9)
    return str(root)


def run_cli(argv) -> None:
    """train.py's command line (``train.cli``, which ``python train.py`` calls), in this process."""
    try:
        code = train.cli([str(a) for a in argv])
    finally:
        close_logger()
    assert code == 0, f"train.py {' '.join(map(str, argv))} failed"


@pytest.fixture(scope="module")
def b2n_runs(odd_root, tmp_path_factory):
    """Per structure: train on the base classes, then --eval-only of the last epoch on base and on new."""
    out = tmp_path_factory.mktemp("gopro_b2n")
    runs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIP_WEIGHTS_DIR", str(out / "no_clip_weights"))
        for structure, config in CONFIGS.items():
            common = ["--root", odd_root, "--seed", 1, "--trainer", "GOPro", "--dataset-config-file", DATASET_YAML,
                      "--config-file", config]
            dirs = {name: str(out / structure / name) for name in ("train_base", "eval_base", "eval_new")}
            run_cli([*common, "--output-dir", dirs["train_base"], "DATASET.NUM_SHOTS", SHOTS,
                     "DATASET.SUBSAMPLE_CLASSES", "base", "OPTIM.MAX_EPOCH", EPOCHS, "OPTIM.WARMUP_EPOCH", 0])
            for subsample in ("base", "new"):
                run_cli([*common, "--output-dir", dirs[f"eval_{subsample}"], "--eval-only", "--model-dir",
                         dirs["train_base"], "--load-epoch", EPOCHS, "DATASET.NUM_SHOTS", SHOTS,
                         "DATASET.SUBSAMPLE_CLASSES", subsample])
            runs[structure] = dirs
    return runs


def read_log(output_dir: str) -> str:
    with open(os.path.join(output_dir, "log.txt")) as f:
        return f.read()


@pytest.mark.parametrize("structure", CONFIGS)
def test_base_to_new_through_train_py(b2n_runs, structure):
    dirs = b2n_runs[structure]
    train_dir = dirs["train_base"]
    checkpoint = os.path.join(train_dir, MODEL_NAME, f"model.pth.tar-{EPOCHS}")
    for path in ("log.txt", "results.json", checkpoint, os.path.join(MODEL_NAME, "checkpoint")):
        assert os.path.isfile(os.path.join(train_dir, path)), path
    trained = read_results(train_dir)
    assert trained["run"]["num_classes"] == 5 and trained["run"]["subsample_classes"] == "base"
    assert trained["test"]["total"] == 5 * TINY_SPLIT_SIZES["test"] and trained["test"]["epoch"] == EPOCHS

    # the saved last epoch, evaluated again on the base classes, gives the training run's final test exactly
    eval_log = read_log(dirs["eval_base"])
    assert f'Loaded the weights of {MODEL_NAME} from "{checkpoint}" (epoch {EPOCHS})' in eval_log
    assert parse_accuracy(eval_log) == parse_accuracy(read_log(train_dir))
    assert read_results(dirs["eval_base"])["test"] == trained["test"]

    # the 4 new classes, from a checkpoint holding the 5 base classes' name embeddings
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert state["prompt_learner.token_prefix"].shape[0] == 5
    new = read_results(dirs["eval_new"])
    assert new["run"]["subsample_classes"] == "new" and new["run"]["num_classes"] == 4
    assert new["test"]["total"] == 4 * TINY_SPLIT_SIZES["test"] and new["test"]["epoch"] == EPOCHS
    assert f"Loaded the weights of {MODEL_NAME}" in read_log(dirs["eval_new"])


@pytest.mark.parametrize("structure, generators", [("paper", ["augmix", "moco", "orig"]), ("official", ["shared"])])
def test_checkpoint_holds_the_structures_learnable_parts(b2n_runs, tiny_clip, structure, generators):
    path = os.path.join(b2n_runs[structure]["train_base"], MODEL_NAME, f"model.pth.tar-{EPOCHS}")
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert sorted({key.split(".")[1] for key in state if key.startswith("generators.")}) == generators
    parts = {f"{name}.{tensor}" for name in ("style", "content") for tensor in ("weight", "bias")}
    parts.add("rho.weight")  # rho has no bias (test_a_shift_along_ones_leaves_the_text_features_unchanged)
    assert {key for key in state if key.startswith("generators.")} == {f"generators.{g}.{p}" for g in generators
                                                                       for p in parts}
    assert {key for key in state if key.startswith("simproj.")} == {
        "simproj.linear.weight", "simproj.linear.bias", "simproj.norm.weight", "simproj.norm.bias",
        "simproj.norm.running_mean", "simproj.norm.running_var", "simproj.norm.num_batches_tracked"}
    assert state["simproj.norm.num_batches_tracked"] > 0  # BatchNorm's statistics are saved with the weights
    initial_ctx = embed_tokens(tiny_clip, tokenize(["a photo of a"]))[0, 1:5]
    assert not torch.allclose(state["prompt_learner.ctx"], initial_ctx)  # a trained context


@pytest.mark.parametrize("structure", CONFIGS)
def test_new_class_model_loads_the_learned_parts_and_keeps_its_class_names(b2n_runs, odd_root, tmp_path, structure):
    trainer = build_gopro(odd_root, str(tmp_path), structure, subsample="new")
    learner = trainer.model.prompt_learner
    assert learner.classnames == ["hexagon", "ring", "square", "star"]
    names = {name: buffer.clone() for name, buffer in learner.named_buffers()}
    trainer.load_model(b2n_runs[structure]["train_base"], epoch=EPOCHS)
    path = os.path.join(b2n_runs[structure]["train_base"], MODEL_NAME, f"model.pth.tar-{EPOCHS}")
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    for key, value in trainer.learner.state_dict().items():
        if key.rsplit(".", 1)[-1] in ("token_prefix", "token_suffix"):
            assert torch.equal(value, names[key.split(".", 1)[1]]), key  # the new classes' own name embeddings
        else:
            assert torch.equal(value, state[key]), key


# ------------------------------------------------------------------------------------ shapes from the backbone

@pytest.mark.parametrize("backbone, sizes", [("tiny-ViT", (4, 128, 64, 64)), ("tiny-ViT-L", (6, 192, 96, 96))])
def test_generator_projector_and_prompt_shapes_follow_the_backbone(backbone, sizes):
    clip_model = load_clip(backbone).float()
    # (visual layers, visual width, text width = context dim, embedding dim), read off the loaded model
    layers, vis_width = len(clip_model.visual.transformer.resblocks), clip_model.visual.conv1.out_channels
    ctx_dim, embed_dim = clip_model.ln_final.weight.shape[0], clip_model.text_projection.shape[1]
    assert (layers, vis_width, ctx_dim, embed_dim) == sizes
    torch.manual_seed(0)
    model = GOProModel(clip_model, CLASSNAMES, method_cfg(), VIEWS).eval()
    for generator in model.generators.values():
        for projector in (generator.style, generator.content):
            assert projector.weight.shape == (layers, ctx_dim, vis_width)
            assert projector.bias.shape == (layers, ctx_dim)
        assert (generator.rho.in_features, generator.rho.out_features, generator.rho.bias) == (layers, 1, None)
    assert (model.simproj.linear.in_features, model.simproj.linear.out_features) == (embed_dim, embed_dim)
    assert model.simproj.norm.num_features == embed_dim

    batch, n_cls = 2, len(CLASSNAMES)
    images = torch.randn(batch, 3, clip_model.visual.input_resolution, clip_model.visual.input_resolution)
    with torch.no_grad():
        features, tokens = model.encode_images(images, with_tokens=True)
        assert len(tokens) == layers and features.shape == (batch, embed_dim)
        shift = model.generator("orig")(tokens)
        assert shift.shape == (batch, ctx_dim)
        prompts = model.prompt_learner(shift)
        logits = model(images)
    # 77 token positions cut after the longest EOT (nothing later reaches the pooled feature)
    length = int(tokenize([f"a photo of a {name.replace('_', ' ')}." for name in CLASSNAMES]).argmax(-1).max()) + 1
    assert prompts.shape == (batch, n_cls, length, ctx_dim)
    assert logits.shape == (batch, n_cls)


def test_resnet_backbone_is_a_user_error():
    with pytest.raises(UserError, match="GOPro's style and content prompts needs a ViT backbone"):
        GOProModel(load_clip("tiny-RN").float(), CLASSNAMES, method_cfg(), VIEWS)


def test_n_ctx_is_honoured_with_an_init_phrase(tiny_clip):
    phrase = embed_tokens(tiny_clip, tokenize(["a photo of a circle."]))[0]  # SOT a photo of a circle . EOT
    # N_CTX 6 > 4 words: two random vectors, then the phrase's 4 embeddings, all learned
    torch.manual_seed(0)
    learner = GOProModel(tiny_clip, CLASSNAMES, method_cfg(N_CTX=6), VIEWS).prompt_learner
    assert learner.ctx.shape == (6, tiny_clip.ln_final.weight.shape[0])
    assert learner.prompt_prefix == "X X a photo of a"
    assert torch.equal(learner.ctx[2:], phrase[1:5])
    assert learner.ctx[:2].std() < 0.05
    # N_CTX 2 < 4 words: "a photo" is learned, "of a" stays fixed text before the class name
    learner = GOProModel(tiny_clip, CLASSNAMES, method_cfg(N_CTX=2), VIEWS).prompt_learner
    assert learner.ctx.shape[0] == 2 and torch.equal(learner.ctx, phrase[1:3])
    assert torch.equal(learner.token_suffix[0, :3], phrase[3:6])


# ------------------------------------------------------------------------------------ hand computations

def test_style_content_statistics_equal_a_hand_computation():
    # 2 layers x 1 image x 3 tokens x 2 channels; layer 1's first channel is constant (only the epsilon remains)
    layers = [[[1.0, 2.0], [3.0, 5.0], [8.0, -1.0]],
              [[0.0, 0.0], [0.0, 1.0], [0.0, 4.0]]]
    expected_style, expected_content = [], []
    for tokens in layers:
        style_row, content_row = [], []
        for channel in range(2):
            values = [token[channel] for token in tokens]
            mean = sum(values) / len(values)
            squares = sum((v - mean) ** 2 for v in values)
            std = math.sqrt((squares + 2.3e-8) / len(values))  # population std, epsilon inside the sum
            style_row.append((mean + std) / 2)
            content_row.append(mean)
        expected_style.append(style_row)
        expected_content.append(content_row)
    style, content = style_content_statistics([torch.tensor([layer]) for layer in layers])
    assert style.shape == content.shape == (1, 2, 2)
    torch.testing.assert_close(content[0], torch.tensor(expected_content), rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(style[0], torch.tensor(expected_style), rtol=1e-6, atol=1e-8)
    assert style[0, 1, 0] == pytest.approx(math.sqrt(2.3e-8 / 3) / 2, rel=1e-5)


def hand_simclr(a, b, tau):
    """SLIP's SimCLR loss with explicit loops: for query i of one view, the 2B logits are its similarities to
    every key of the other view and (its own excluded) of its own view; the positive is key i of the other."""
    def normalized(vectors):
        return [[x / math.sqrt(sum(y * y for y in v)) for x in v] for v in vectors]

    def dot(u, v):
        return sum(x * y for x, y in zip(u, v))

    def one_direction(queries, others):
        losses = []
        for i, q in enumerate(queries):
            logits = [dot(q, k) / tau for k in others]
            logits += [dot(q, k) / tau - (1e9 if j == i else 0.0) for j, k in enumerate(queries)]
            losses.append(-logits[i] + math.log(sum(math.exp(x) for x in logits)))
        return sum(losses) / len(losses)

    a, b = normalized(a), normalized(b)
    return (one_direction(a, b) + one_direction(b, a)) / 2


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_simclr_loss_equals_a_hand_computation(tau):
    z_a = [[3.0, 4.0, 0.0], [1.0, 0.0, 1.0], [-1.0, 2.0, 2.0]]
    z_b = [[4.0, 3.0, 1.0], [0.0, 2.0, 0.0], [-2.0, 1.0, 2.0]]
    loss = simclr_loss(torch.tensor(z_a), torch.tensor(z_b), tau)
    assert loss.item() == pytest.approx(hand_simclr(z_a, z_b, tau), rel=1e-5)
    assert simclr_loss(torch.tensor(z_b), torch.tensor(z_a), tau).item() == pytest.approx(loss.item(), rel=1e-6)


def test_prompt_consistency_loss_equals_hand_values():
    # (B=1, C=2, E=2) unit text features of two views
    text_a = torch.tensor([[[0.6, 0.8], [1.0, 0.0]]])
    text_b = torch.tensor([[[0.8, 0.6], [0.0, 1.0]]])
    for distance in ("l2", "mse"):
        assert prompt_consistency_loss(text_a, text_a.clone(), distance).item() == 0.0
    # l2 (paper): the L2 norm of the difference per image and class, averaged: (sqrt(0.08) + sqrt(2)) / 2
    l2 = prompt_consistency_loss(text_a, text_b, "l2").item()
    assert l2 == pytest.approx((math.sqrt(0.2 ** 2 + 0.2 ** 2) + math.sqrt(1 + 1)) / 2, rel=1e-6)
    # mse (official): the mean of the squared differences over all B*C*E elements
    mse = prompt_consistency_loss(text_a, text_b, "mse").item()
    assert mse == pytest.approx((0.04 + 0.04 + 1 + 1) / 4, rel=1e-6)
    with pytest.raises(UserError, match="SEM_DISTANCE"):
        prompt_consistency_loss(text_a, text_b, "cosine")


# ------------------------------------------------------------------------------------ views

def to_pixels(view: torch.Tensor) -> torch.Tensor:
    """A CLIP-normalized (3, H, W) view back to [0, 1] pixel values."""
    return view * torch.tensor(CLIP_PIXEL_STD).view(3, 1, 1) + torch.tensor(CLIP_PIXEL_MEAN).view(3, 1, 1)


@pytest.mark.parametrize("make_view", [build_mocov3_view, build_augmix_view])
def test_views_differ_from_the_original_and_are_seeded(make_view):
    image = render("star", random.Random(3), size=40)
    original = Compose([Resize((32, 32)), ToTensor(), Normalize(CLIP_PIXEL_MEAN, CLIP_PIXEL_STD)])(image)
    view = make_view((32, 32), CLIP_PIXEL_MEAN, CLIP_PIXEL_STD)

    def seeded(seed: int) -> torch.Tensor:
        set_random_seed(seed)
        return view(image)

    first = seeded(1)
    assert first.shape == original.shape == (3, 32, 32)
    assert (first - original).abs().mean() > 0.05
    assert torch.equal(seeded(1), first)  # same seed, same view
    assert not torch.equal(seeded(2), first)


def test_every_view_in_a_batch_is_made_from_its_own_image(demo_root, tmp_path):
    """The loader's views of a light red and a dark blue image keep their image's colour: the AugMix view of
    image i is AugMix of image i (the official code returned the views of image 0 for every image, B4)."""
    trainer = build_gopro(demo_root, str(tmp_path / "out"))
    colours = {"red": (230, 150, 150), "blue": (0, 0, 60)}  # below AugMix's solarize thresholds (>= 231)
    items = []
    for label, (name, colour) in enumerate(colours.items()):
        path = str(tmp_path / f"{name}.png")
        Image.new("RGB", (40, 40), colour).save(path)
        items.append(Datum(impath=path, label=label, classname=name))
    loader = build_data_loader(trainer.cfg, data_source=items, batch_size=2, tfm=trainer.dm.tfm_train)
    set_random_seed(5)
    batch = next(iter(loader))
    set_random_seed(5)
    again = next(iter(loader))
    keys = ["img", *trainer.view_keys.values()]
    assert keys == ["img", "img2", "img3"]
    for key in keys:
        assert torch.equal(batch[key], again[key])  # the loader's views are seeded too
        red, blue = to_pixels(batch[key][0]), to_pixels(batch[key][1])
        # colour jitter keeps the light image brighter than the dark one (grayscale, p 0.2, keeps luminance)
        assert red.mean() > blue.mean() + 0.15, key
    for key in ("img", trainer.view_keys["augmix"]):  # no grayscale in these: the hue survives
        red, blue = to_pixels(batch[key][0]).mean((1, 2)), to_pixels(batch[key][1]).mean((1, 2))
        assert red[0] > red[2] + 0.1 and blue[2] > blue[0] + 0.1, key


def test_reference_augmix_magnitudes_are_the_references_severity_one():
    aug = ReferenceAugMix(severity=1)
    assert (aug.mixture_width, aug.chain_depth, aug.alpha, aug.all_ops) == (3, -1, 1.0, False)
    assert aug.severity == aug._PARAMETER_MAX == LEVEL_BINS  # forward() draws from every level bin
    assert aug.interpolation == InterpolationMode.BILINEAR  # the reference's resampling for rotate/shear/translate
    levels = aug.levels(LEVEL_BINS).tolist()
    assert 0.1 < levels[0] < 0.11 and 0.99 < levels[-1] < 1.0  # l ~ U(0.1, 1) at severity 1
    height, width = 200, 224
    space = aug._augmentation_space(LEVEL_BINS, (height, width))
    assert set(space) == {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Posterize", "Solarize",
                          "AutoContrast", "Equalize"}
    # the reference's helpers: int_parameter(l, m) = int(l * m / 10), float_parameter(l, m) = l * m / 10
    expected = {
        "Rotate": [int(lv * 30 / 10) for lv in levels],
        "ShearX": [lv * 0.3 / 10 for lv in levels],
        "TranslateX": [int(lv * (width / 3) / 10) for lv in levels],
        "TranslateY": [int(lv * (height / 3) / 10) for lv in levels],
        "Posterize": [4 - int(lv * 4 / 10) for lv in levels],
        "Solarize": [256 - int(lv * 256 / 10) for lv in levels],
    }
    for name, values in expected.items():
        assert space[name][0].tolist() == pytest.approx(values, rel=1e-6), name
    assert all(space[name][1] for name in ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"))  # +/-
    # at severity 1: rotate 0-2 degrees, shear < 0.03, translate < W/30 px, 4 bits, solarize threshold 231-254
    assert set(space["Rotate"][0].tolist()) == {0, 1, 2}
    shears = space["ShearY"][0]
    assert shears.min() >= 0.003 and shears.max() < 0.03
    assert set(space["TranslateX"][0].tolist()) == set(range(8))  # int(0.995 * 224 / 30) = 7
    assert set(space["Posterize"][0].tolist()) == {4}
    assert (space["Solarize"][0].min(), space["Solarize"][0].max()) == (231, 254)


# ------------------------------------------------------------------------------------ what a step computes

class EncoderCalls:
    """Records every image-encoder pass (batch size, whether layer tokens were asked for), every text-encoder
    call (leading shape of the prompts) and every prompt-generator call (its name) of ``model``."""

    def __init__(self, model: GOProModel, monkeypatch):
        self.image, self.text, self.generators = [], [], []
        image_forward, text_forward = model.image_encoder.forward, model.text_encoder.forward

        def image(images, return_tokens=False, **kwargs):
            self.image.append((images.shape[0], return_tokens))
            return image_forward(images, return_tokens=return_tokens, **kwargs)

        def text(prompts, tokenized_prompts, **kwargs):
            self.text.append(tuple(prompts.shape[:-2]))
            return text_forward(prompts, tokenized_prompts, **kwargs)

        monkeypatch.setattr(model.image_encoder, "forward", image)
        monkeypatch.setattr(model.text_encoder, "forward", text)
        for name, generator in model.generators.items():
            monkeypatch.setattr(generator, "forward", self._recording(name, generator.forward))

    def _recording(self, name, forward):
        def run(tokens):
            self.generators.append(name)
            return forward(tokens)
        return run


BASE_KEYS = {"img", "label", "domain", "impath", "index"}
# Table 3's rows: (LOSS_SEM_MOCO, LOSS_SEM_AUGMIX, LOSS_CON), the views loaded (key order), the views whose
# prompts are generated, and the loss terms
TABLE3 = {
    "ce": ((False, False, False), [], ["orig"], {"loss_ce"}),
    "ce+con": ((False, False, True), ["moco"], ["orig"], {"loss_ce", "loss_con"}),
    "ce+sem_moco": ((True, False, False), ["moco"], ["orig", "moco"], {"loss_ce", "loss_sem"}),
    "ce+sem_augmix": ((False, True, False), ["augmix"], ["orig", "augmix"], {"loss_ce", "loss_sem"}),
    "ce+sem_both": ((True, True, False), ["moco", "augmix"], ["orig", "moco", "augmix"], {"loss_ce", "loss_sem"}),
    "all": ((True, True, True), ["moco", "augmix"], ["orig", "moco", "augmix"], {"loss_ce", "loss_sem", "loss_con"}),
}


def is_augmix_view(tfm) -> bool:
    return any(isinstance(t, ReferenceAugMix) for t in tfm.transforms)


def is_mocov3_view(tfm) -> bool:
    return any(isinstance(t, GaussianBlur) for t in tfm.transforms)


@pytest.mark.parametrize("structure", CONFIGS)
@pytest.mark.parametrize("row", TABLE3)
def test_loss_switches_remove_their_term_and_their_views_compute(demo_root, tmp_path, monkeypatch, structure, row):
    (sem_moco, sem_augmix, con), loaded, prompted, terms = TABLE3[row]
    trainer = build_gopro(demo_root, str(tmp_path), structure, [
        "TRAINER.GOPRO.LOSS_SEM_MOCO", sem_moco, "TRAINER.GOPRO.LOSS_SEM_AUGMIX", sem_augmix,
        "TRAINER.GOPRO.LOSS_CON", con])
    model = trainer.model
    assert set(model.generators) == ({"shared"} if structure == "official" else set(prompted))

    # the loader makes exactly the views the terms need, each with its own transform
    keys = [f"img{i + 2}" for i in range(len(loaded))]
    assert trainer.view_keys == dict(zip(loaded, keys))
    transforms = trainer.dm.tfm_train if loaded else [trainer.dm.tfm_train]
    assert len(transforms) == 1 + len(loaded)
    for view, tfm in zip(loaded, transforms[1:]):
        assert (is_augmix_view(tfm), is_mocov3_view(tfm)) == (view == "augmix", view == "moco")
    batch = first_batch(trainer)
    assert set(batch) == BASE_KEYS | set(keys)

    calls = EncoderCalls(model, monkeypatch)
    projector_batches = []
    model.simproj.register_forward_hook(lambda module, args, out: projector_batches.append(args[0].shape[0]))
    trainer.set_model_mode("train")
    trainer.batch_idx, trainer.num_batches = 0, len(trainer.train_loader_x)
    summary = trainer.forward_backward(batch)
    b, c = batch["img"].shape[0], trainer.num_classes
    # P_v runs on the original view when the logits (paper structure) or L_con use it, and on the MoCo view for L_con
    assert projector_batches == [b] * (int(structure == "paper" or con) + int(con))
    # one pass per loaded view; layer tokens only for the views whose prompts are generated
    assert calls.image == [(b, True)] + [(b, view in prompted) for view in loaded]
    assert calls.text == [(b * len(prompted), c)]  # all views' per-image prompts in one text-encoder call
    assert calls.generators == (["shared"] * len(prompted) if structure == "official" else prompted)
    assert set(summary) == terms | {"loss", "acc"}
    g = trainer.cfg.TRAINER.GOPRO
    weighted = sum(weight * summary.get(term, 0.0)
                   for weight, term in ((g.W_CE, "loss_ce"), (g.W_SEM, "loss_sem"), (g.W_CON, "loss_con")))
    assert summary["loss"] == pytest.approx(weighted, rel=1e-5)


@pytest.mark.parametrize("structure", CONFIGS)
def test_loss_is_the_weighted_sum_of_its_terms(demo_root, tmp_path, structure):
    weights = {"W_CE": 0.5, "W_SEM": 2.0, "W_CON": 0.25}
    trainer = build_gopro(demo_root, str(tmp_path), structure,
                          [item for key, value in weights.items() for item in (f"TRAINER.GOPRO.{key}", value)])
    batch = first_batch(trainer)
    trainer.set_model_mode("train")
    loss, summary = trainer.compute_loss(batch, *trainer.parse_batch_train(batch))
    expected = 0.5 * summary["loss_ce"] + 2.0 * summary["loss_sem"] + 0.25 * summary["loss_con"]
    assert loss.item() == pytest.approx(expected, rel=1e-5) and summary["loss"] == loss.item()


@pytest.mark.parametrize("structure", CONFIGS)
def test_evaluation_is_one_image_encoder_pass_per_batch(demo_root, tmp_path, monkeypatch, structure):
    trainer = build_gopro(demo_root, str(tmp_path), structure, ["DATALOADER.TEST.BATCH_SIZE", 8])
    view_calls = []
    for tfm in trainer.dm.tfm_train[1:]:  # count the augmented views' transforms as they run
        monkeypatch.setattr(tfm, "transforms", [lambda image: view_calls.append(image) or image, *tfm.transforms])
    test_batch = next(iter(trainer.test_loader))
    assert set(test_batch) == BASE_KEYS  # no augmented views at test
    calls = EncoderCalls(trainer.model, monkeypatch)
    trainer.test()
    batches = [8, 8, 4]  # 5 base classes x 4 test images
    assert calls.image == [(b, True) for b in batches]
    assert calls.text == [(b, 5) for b in batches]
    assert calls.generators == ["shared" if structure == "official" else "orig"] * len(batches)
    assert view_calls == []


# ------------------------------------------------------------------------------------ what learns

def training_step(trainer: GOPro, batch: dict) -> dict:
    """One optimizer step on ``batch`` (the trainer's own forward_backward); the gradients stay on the tensors."""
    trainer.set_model_mode("train")
    trainer.batch_idx, trainer.num_batches = 0, len(trainer.train_loader_x)
    return trainer.forward_backward(batch)


def max_gradients(module) -> dict:
    return {name: None if p.grad is None else p.grad.abs().max().item() for name, p in module.named_parameters()}


@pytest.mark.parametrize("structure", CONFIGS)
def test_every_generator_tensor_learns_from_the_start(demo_root, tmp_path, structure):
    """The configs' initializations (paper: SHIFT_INIT zero, the shift starts at exactly 0; official: PyTorch's)
    gate no generator. Step 1: L_ce's gradient reaches every tensor of the original view's (or the shared)
    generator, the context and (paper) P_v's norm scale and shift; in the paper structure L_sem is exactly 0
    (every view's prompts are the init phrase), so the other views' generators get exactly no gradient. From
    step 2 on, every learned tensor of every generator, the context and P_v gets a gradient (P_v's Linear too,
    scaled by the norm's scale), and after two steps every one has moved."""
    trainer = build_gopro(demo_root, str(tmp_path), structure)
    learner = trainer.learner
    initial = {name: p.detach().clone() for name, p in learner.named_parameters()}
    set_random_seed(1)
    loader = iter(trainer.train_loader_x)
    batches = [next(loader), next(loader)]
    for batch in batches:
        assert all(not torch.equal(batch[key], batch["img"]) for key in trainer.view_keys.values())  # distinct views
    first = training_step(trainer, batches[0])
    step1 = max_gradients(learner)
    training_step(trainer, batches[1])
    step2 = max_gradients(learner)

    orig = "generators.shared." if structure == "official" else "generators.orig."
    generator_tensors = [name for name in step1 if name.startswith("generators.")]
    assert len(generator_tensors) == 5 * len(trainer.model.generators)  # style, content (weight, bias), rho
    first_learners = [name for name in step1 if name.startswith((orig, "prompt_learner."))]
    if structure == "paper":
        first_learners += ["simproj.norm.weight", "simproj.norm.bias"]
        assert first["loss_sem"] == 0.0
        assert all(step1[name] == 0.0 for name in generator_tensors if not name.startswith(orig))
    assert all(step1[name] is not None and step1[name] > 0 for name in first_learners), step1
    # BatchNorm with the batch's statistics right after P_v's Linear removes the Linear's bias (as in the official
    # code): its gradient is 0 up to rounding
    dead = {"simproj.linear.bias"}
    assert all(step2[name] < 1e-6 for name in dead)
    assert all(step2[name] is not None and step2[name] > 0 for name in set(step2) - dead), step2
    assert {name for name, p in learner.named_parameters() if torch.equal(p, initial[name])} <= dead


def test_zeroing_rho_gates_the_projectors(demo_root, tmp_path):
    """SHIFT_INIT zero_rho, the other way to start from a zero shift: at the first step every style and content
    projector's gradient is exactly 0 (it is rho's weight times the shift's gradient); only rho's is not."""
    trainer = build_gopro(demo_root, str(tmp_path), opts=["TRAINER.GOPRO.SHIFT_INIT", "zero_rho"])
    set_random_seed(1)
    training_step(trainer, next(iter(trainer.train_loader_x)))
    grads = {name: grad for name, grad in max_gradients(trainer.model.generators).items() if name.startswith("orig.")}
    assert grads.pop("orig.rho.weight") > 0
    assert len(grads) == 4 and all(grad == 0.0 for grad in grads.values()), grads


def class_prompt_text(model: GOProModel, view: str, images: torch.Tensor) -> torch.Tensor:
    """The normalized text features (B, C, E) of ``view``'s generator on ``images``, one view at a time."""
    _, tokens = model.encode_images(images, with_tokens=True)
    prompts = model.prompt_learner(model.generator(view)(tokens))
    return F.normalize(model.encode_text(prompts, model.prompt_learner.tokenized_prompts), dim=-1)


@pytest.mark.parametrize("structure", CONFIGS)
def test_prompt_consistency_compares_each_view_with_the_original_and_trains_both(demo_root, tmp_path, structure):
    """L_sem on distinct views (generators moved off their initialization): the distance between the original
    view's class-prompt features and each augmented view's, computed here view by view from the loader's images
    (L2 norm of the difference, averaged, in the paper; mean squared difference in the official structure); it is
    positive, and its gradient reaches every tensor of the generators of both views it compares."""
    trainer = build_gopro(demo_root, str(tmp_path), structure, ["TRAINER.GOPRO.W_CE", 0.0, "TRAINER.GOPRO.W_CON", 0.0])
    model = trainer.model
    torch.manual_seed(0)
    with torch.no_grad():
        for generator in model.generators.values():
            for projector in (generator.style, generator.content):
                torch.nn.init.normal_(projector.weight, std=0.02)
    batch = first_batch(trainer)
    trainer.set_model_mode("train")
    with torch.no_grad():
        text = {view: class_prompt_text(model, view, batch[key])
                for view, key in [("orig", "img"), *trainer.view_keys.items()]}
    if structure == "paper":
        distances = [(text["orig"] - text[view]).norm(dim=-1).mean() for view in ("moco", "augmix")]
    else:
        distances = [((text["orig"] - text[view]) ** 2).mean() for view in ("moco", "augmix")]
    assert all(d > 0 for d in distances)

    loss, summary = trainer.compute_loss(batch, *trainer.parse_batch_train(batch))
    assert summary["loss_sem"] == pytest.approx(sum(distances).item(), rel=1e-4)
    assert loss.item() == pytest.approx(summary["loss_sem"], rel=1e-6)  # the only weighted term
    trainer.model_zero_grad()
    loss.backward()
    for name, grad in max_gradients(model.generators).items():
        assert grad is not None and grad > 0, name


def test_a_shift_along_ones_leaves_the_text_features_unchanged(tiny_clip):
    """Why rho has no bias: a shift c (1, ..., 1) of the context vectors reaches the text encoder's blocks and its
    output only through LayerNorms, so the class-prompt features do not change (the official code's rho bias
    never gets a gradient); a shift in any other direction changes them."""
    torch.manual_seed(0)
    model = GOProModel(tiny_clip, CLASSNAMES, method_cfg(), VIEWS).eval()
    learner = model.prompt_learner
    shift = 0.1 * torch.randn(2, learner.ctx.shape[-1])

    def text(shift):
        return F.normalize(model.encode_text(learner(shift), learner.tokenized_prompts), dim=-1)

    with torch.no_grad():
        torch.testing.assert_close(text(shift + 0.5), text(shift), rtol=0, atol=1e-5)
        assert (text(shift + 0.5 * torch.randn_like(shift)) - text(shift)).abs().max() > 1e-2


def test_view_keys_come_from_the_config_alone(demo_root, tmp_path):
    """The batch keys the loss reads are derived from the config, as the loader's order of views is: a GOPro that
    holds nothing but its config builds the loader's transforms, sets nothing doing so, and knows the keys."""
    trainer = build_gopro(demo_root, str(tmp_path), opts=["TRAINER.GOPRO.LOSS_SEM_MOCO", False])
    bare = GOPro.__new__(GOPro)
    bare.cfg = trainer.cfg
    transforms = bare.custom_train_transform()
    assert vars(bare) == {"cfg": trainer.cfg}
    assert len(transforms) == 3 and bare.view_keys == {"moco": "img2", "augmix": "img3"}  # moco for L_con only
    assert set(first_batch(trainer)) == BASE_KEYS | {"img2", "img3"}


# ------------------------------------------------------------------------------------ the image projector

@pytest.mark.parametrize("structure", CONFIGS)
def test_contrastive_gradient_reaches_only_the_projector(demo_root, tmp_path, structure):
    """Paper (PROJECTOR_IN_LOGITS True): L_con's gradient moves P_v, and P_v moves the logits. Official: L_con
    trains P_v, which the logits never see (D4)."""
    trainer = build_gopro(demo_root, str(tmp_path), structure, [
        "TRAINER.GOPRO.LOSS_SEM_MOCO", False, "TRAINER.GOPRO.LOSS_SEM_AUGMIX", False, "TRAINER.GOPRO.W_CE", 0.0])
    model = trainer.model
    batch = first_batch(trainer)
    trainer.set_model_mode("train")
    image, label = trainer.parse_batch_train(batch)
    loss, summary = trainer.compute_loss(batch, image, label)
    assert loss.item() == pytest.approx(trainer.cfg.TRAINER.GOPRO.W_CON * summary["loss_con"], rel=1e-6)
    trainer.model_zero_grad()
    loss.backward()
    reached = {name for name, p in trainer.learner.named_parameters() if p.grad is not None and p.grad.abs().max() > 0}
    assert reached and all(name.startswith("simproj.") for name in reached), reached
    simproj = model.simproj

    model.eval()
    with torch.no_grad():
        before = model(image)
        for param in simproj.parameters():
            if param.grad is not None:
                param -= 10 * param.grad
        after_step = model(image)
        for param in simproj.parameters():
            param.add_(torch.randn_like(param))
        after_noise = model(image)
    if structure == "paper":
        assert (after_step - before).abs().max() > 1e-4
        assert (after_noise - before).abs().max() > 1e-2
    else:
        assert torch.equal(after_step, before) and torch.equal(after_noise, before)


@pytest.mark.parametrize("structure", CONFIGS)
def test_training_logits_are_the_models_logits(demo_root, tmp_path, structure):
    """L_ce is the cross-entropy of the logits the model predicts with: through P_v in the paper's structure
    (so L_ce trains P_v too), from the raw CLIP feature in the official one (P_v gets no gradient from L_ce)."""
    trainer = build_gopro(demo_root, str(tmp_path), structure, [
        "TRAINER.GOPRO.LOSS_SEM_MOCO", False, "TRAINER.GOPRO.LOSS_SEM_AUGMIX", False, "TRAINER.GOPRO.LOSS_CON", False])
    model = trainer.model
    batch = first_batch(trainer)
    trainer.set_model_mode("train")
    image, label = trainer.parse_batch_train(batch)
    with torch.no_grad():
        predicted = F.cross_entropy(model(image), label)  # train mode: P_v's BatchNorm uses this batch's statistics
    loss, summary = trainer.compute_loss(batch, image, label)
    assert summary["loss_ce"] == pytest.approx(predicted.item(), rel=1e-6)
    trainer.model_zero_grad()
    loss.backward()
    grads = [p.grad for p in model.simproj.parameters()]
    if structure == "paper":
        assert any(g is not None and g.abs().max() > 0 for g in grads)
    else:
        assert all(g is None for g in grads)


def test_paper_projector_starts_as_the_identity(tiny_clip):
    """P_v is on the logits' image branch in the paper's structure; at initialization it changes nothing, so
    training starts from CLIP's zero-shot alignment (and the same logits as without P_v)."""
    torch.manual_seed(0)
    model = GOProModel(tiny_clip, CLASSNAMES, method_cfg(), VIEWS)
    images = torch.randn(4, 3, 32, 32)
    for mode in ("train", "eval"):
        model.train(mode == "train")
        with torch.no_grad():
            features, tokens = model.encode_images(images, with_tokens=True)
            text = model.class_prompt_features({"orig": tokens})["orig"]
            torch.testing.assert_close(model(images), model.logits(features, text))


def test_projector_input_is_the_normalized_feature(tiny_clip):
    """As in the official code, P_v sees the L2-normalized CLIP feature: an image feature's norm (which varies
    between images and backbones) does not change P_v's output."""
    features = torch.randn(4, tiny_clip.visual.output_dim)
    scale = torch.tensor([[0.5], [2.0], [7.0], [1.0]])
    for structure in CONFIGS:
        torch.manual_seed(0)
        simproj = GOProModel(tiny_clip, CLASSNAMES, method_cfg(structure), VIEWS).simproj
        with torch.no_grad():
            torch.nn.init.normal_(simproj.norm.weight)
            simproj.train()
            torch.testing.assert_close(simproj(features * scale), simproj(features))
            torch.testing.assert_close(simproj(features), simproj(F.normalize(features, dim=-1)))


@pytest.mark.parametrize("norm, same_in_training", [("batch", False), ("running", True), ("layer", True)])
def test_projector_norm_decides_whether_training_and_evaluation_agree(tiny_clip, norm, same_in_training):
    """PROJECTOR_NORM, the paper's P_v on the logits' branch: BatchNorm with the batch's statistics ("batch") makes
    an image's output in training depend on its batchmates and differ from evaluation's (running statistics);
    with the running statistics in training too ("running") or LayerNorm ("layer"), P_v is the same function of
    one image in training and evaluation."""
    torch.manual_seed(0)
    simproj = GOProModel(tiny_clip, CLASSNAMES, method_cfg(PROJECTOR_NORM=norm), VIEWS).simproj
    features = torch.randn(4, tiny_clip.visual.output_dim)
    with torch.no_grad():
        torch.nn.init.normal_(simproj.norm.weight, std=0.1)
        torch.nn.init.normal_(simproj.linear.weight, std=0.1)
        simproj.train()
        training = simproj(features)
        simproj.eval()
        evaluation = simproj(features)
        simproj.train()
        first_two = simproj(features[:2], track_stats=False)
    if same_in_training:
        torch.testing.assert_close(training, evaluation)
        torch.testing.assert_close(first_two, training[:2])
    else:
        assert (training - evaluation).abs().max() > 1e-2 and (first_two - training[:2]).abs().max() > 1e-2
    assert isinstance(simproj.norm, torch.nn.LayerNorm) == (norm == "layer")


@pytest.mark.parametrize("key, message", [
    ("PROJECTOR_NORM", r"PROJECTOR_NORM must be one of \('batch', 'running', 'layer'\)"),
    ("SHIFT_INIT", r"SHIFT_INIT must be one of \('zero', 'zero_rho', 'pytorch'\)")])
def test_unknown_projector_norm_or_shift_init_is_a_user_error(demo_root, tmp_path, key, message):
    with pytest.raises(UserError, match=message):
        build_gopro(demo_root, str(tmp_path), opts=[f"TRAINER.GOPRO.{key}", "group"])


# ------------------------------------------------------------------------------------ structures and configs

def test_paper_has_a_generator_per_view_and_official_one_shared(tiny_clip):
    torch.manual_seed(0)
    paper = GOProModel(tiny_clip, CLASSNAMES, method_cfg("paper"), VIEWS)
    assert sorted(paper.generators) == sorted(VIEWS)
    biases = [paper.generator(view).style.bias for view in VIEWS]  # (the weights all start at 0)
    assert len({b.data_ptr() for b in biases}) == 3 and not torch.equal(biases[0], biases[1])
    official = GOProModel(tiny_clip, CLASSNAMES, method_cfg("official"), VIEWS)
    assert list(official.generators) == ["shared"]
    assert all(official.generator(view) is official.generators["shared"] for view in VIEWS)


@pytest.mark.parametrize("structure, expected", [
    # Eq. 3's unit weights (D1), Eq. 2's L2 distance (D2), rho_f / rho_mo / rho_Au (D3), P_v before L_ce (D4)
    ("paper", {"W_CE": 1.0, "W_SEM": 1.0, "W_CON": 1.0, "SEM_DISTANCE": "l2", "SHARED_GENERATOR": False,
               "PROJECTOR_IN_LOGITS": True}),
    # L_ce + L_sem + 0.1 L_con, mse, one prompt learner for every view, P_v for L_con only
    ("official", {"W_CE": 1.0, "W_SEM": 1.0, "W_CON": 0.1, "SEM_DISTANCE": "mse", "SHARED_GENERATOR": True,
                  "PROJECTOR_IN_LOGITS": False}),
])
def test_tiny_configs_select_the_structure(structure, expected):
    cfg = merged_config("GOPro", CONFIGS[structure])
    g = cfg.TRAINER.GOPRO
    assert {key: g[key] for key in expected} == expected
    common = {"LOSS_SEM_MOCO": True, "LOSS_SEM_AUGMIX": True, "LOSS_CON": True, "CON_TEMPERATURE": 0.1,
              "N_CTX": 4, "CTX_INIT": "a photo of a", "PREC": "fp32"}
    assert {key: g[key] for key in common} == common
    assert cfg.MODEL.BACKBONE.NAME == "tiny-ViT" and cfg.DATALOADER.TRAIN_X.BATCH_SIZE == 4


@pytest.mark.parametrize("structure, init", [("paper", "zero"), ("paper", "zero_rho"), ("official", "zero"),
                                             ("official", "pytorch")])
def test_untrained_model_with_a_zero_shift_is_zero_shot_clip(tiny_clip, structure, init):
    """With SHIFT_INIT zero (the paper config's) or zero_rho every generator's image-conditioned shift is exactly
    0.0 and P_v starts as the identity, so the untrained model's logits are zero-shot CLIP's with the prompt "a
    photo of a <class>.", in either structure; PyTorch's default initialization (the official code's) shifts
    the prompts at random."""
    torch.manual_seed(0)
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        tokens = tokenize([f"a photo of a {name.replace('_', ' ')}." for name in CLASSNAMES])
        text = F.normalize(tiny_clip.encode_text(tokens).float(), dim=-1)
        image = F.normalize(tiny_clip.encode_image(images).float(), dim=-1)
        zero_shot = tiny_clip.logit_scale.exp() * image @ text.t()
        model = GOProModel(tiny_clip, CLASSNAMES, method_cfg(structure, SHIFT_INIT=init), VIEWS).eval()
        layer_tokens = model.encode_images(images, with_tokens=True)[1]
        shifts = [model.generator(view)(layer_tokens) for view in VIEWS]
        if init != "pytorch":
            assert all(torch.equal(shift, torch.zeros_like(shift)) for shift in shifts)  # not merely up to rounding
            torch.testing.assert_close(model(images), zero_shot, rtol=1e-4, atol=1e-4)
        else:
            assert all(shift.abs().mean() > 1e-2 for shift in shifts)
            assert not torch.allclose(model(images), zero_shot, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("norm", ["batch", "running"])
@pytest.mark.parametrize("structure", CONFIGS)
def test_projector_running_statistics_come_from_the_original_view(demo_root, tmp_path, structure, norm):
    """In the paper structure the logits use P_v's BatchNorm running statistics at evaluation, so a training step
    folds in the original view's batch statistics only (the MoCo view is normalized with its own batch's
    statistics for L_con); the official structure, where P_v never reaches the logits, tracks both as the
    official code does."""
    trainer = build_gopro(demo_root, str(tmp_path), structure, ["TRAINER.GOPRO.PROJECTOR_NORM", norm])
    model, batch = trainer.model, first_batch(trainer)
    bn = model.simproj.norm
    before = bn.running_mean.clone()
    image, label = trainer.parse_batch_train(batch)
    with torch.no_grad():
        features = model.encode_images(image, with_tokens=False)
        moco = model.encode_images(batch[trainer.view_keys["moco"]].to(trainer.device), with_tokens=False)
        hidden = [model.simproj.linear(F.normalize(f.float(), dim=-1)) for f in (features, moco)]
    trainer.set_model_mode("train")
    trainer.compute_loss(batch, image, label)
    m = bn.momentum
    expected = (1 - m) * before + m * hidden[0].mean(0)
    if structure == "official":
        expected = (1 - m) * expected + m * hidden[1].mean(0)
    torch.testing.assert_close(bn.running_mean, expected)
