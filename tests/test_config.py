"""Config: Dassl's default values (REFERENCE §1.3), the keys trainers add in ``extend_cfg``, train.py's
merge order and flags (``--seed 0`` included), and typo suggestions for unknown keys."""
import os

import pytest
import yaml
from conftest import REPO_ROOT
from yacs.config import CfgNode

import train
from promptlearn.config import get_cfg_default, merge_from_file, merge_from_list, warn_dassl_only_keys
from promptlearn.engine import TRAINER_REGISTRY, extend_cfg_for_trainers
from promptlearn.errors import UserError

# Dassl's defaults as listed in REFERENCE §1.3 (Dassl:dassl/config/defaults.py).
DASSL_DEFAULTS = {
    "VERSION": 1,
    "OUTPUT_DIR": "./output",
    "RESUME": "",
    "SEED": -1,
    "USE_CUDA": True,
    "VERBOSE": True,
    "INPUT.SIZE": (224, 224),
    "INPUT.INTERPOLATION": "bilinear",
    "INPUT.TRANSFORMS": (),
    "INPUT.NO_TRANSFORM": False,
    "INPUT.PIXEL_MEAN": [0.485, 0.456, 0.406],
    "INPUT.PIXEL_STD": [0.229, 0.224, 0.225],
    "INPUT.CROP_PADDING": 4,
    "INPUT.RRCROP_SCALE": (0.08, 1.0),
    "INPUT.CUTOUT_N": 1,
    "INPUT.CUTOUT_LEN": 16,
    "INPUT.GN_MEAN": 0.0,
    "INPUT.GN_STD": 0.15,
    "INPUT.RANDAUGMENT_N": 2,
    "INPUT.RANDAUGMENT_M": 10,
    "INPUT.COLORJITTER_B": 0.4,
    "INPUT.COLORJITTER_C": 0.4,
    "INPUT.COLORJITTER_S": 0.4,
    "INPUT.COLORJITTER_H": 0.1,
    "INPUT.RGS_P": 0.2,
    "INPUT.GB_P": 0.5,
    "INPUT.GB_K": 21,
    "DATASET.ROOT": "",
    "DATASET.NAME": "",
    "DATASET.SOURCE_DOMAINS": (),
    "DATASET.TARGET_DOMAINS": (),
    "DATASET.NUM_LABELED": -1,
    "DATASET.NUM_SHOTS": -1,
    "DATASET.VAL_PERCENT": 0.1,
    "DATASET.STL10_FOLD": -1,
    "DATASET.CIFAR_C_TYPE": "",
    "DATASET.CIFAR_C_LEVEL": 1,
    "DATASET.ALL_AS_UNLABELED": False,
    "DATALOADER.NUM_WORKERS": 4,
    "DATALOADER.K_TRANSFORMS": 1,
    "DATALOADER.RETURN_IMG0": False,
    "DATALOADER.TRAIN_X.SAMPLER": "RandomSampler",
    "DATALOADER.TRAIN_X.BATCH_SIZE": 32,
    "DATALOADER.TRAIN_X.N_DOMAIN": 0,
    "DATALOADER.TRAIN_X.N_INS": 16,
    "DATALOADER.TRAIN_U.SAME_AS_X": True,
    "DATALOADER.TRAIN_U.SAMPLER": "RandomSampler",
    "DATALOADER.TRAIN_U.BATCH_SIZE": 32,
    "DATALOADER.TRAIN_U.N_DOMAIN": 0,
    "DATALOADER.TRAIN_U.N_INS": 16,
    "DATALOADER.TEST.SAMPLER": "SequentialSampler",
    "DATALOADER.TEST.BATCH_SIZE": 32,
    "MODEL.INIT_WEIGHTS": "",
    "MODEL.BACKBONE.NAME": "",
    "MODEL.BACKBONE.PRETRAINED": True,
    "MODEL.HEAD.NAME": "",
    "MODEL.HEAD.HIDDEN_LAYERS": (),
    "MODEL.HEAD.ACTIVATION": "relu",
    "MODEL.HEAD.BN": True,
    "MODEL.HEAD.DROPOUT": 0.0,
    "OPTIM.NAME": "adam",
    "OPTIM.LR": 0.0003,
    "OPTIM.WEIGHT_DECAY": 5e-4,
    "OPTIM.MOMENTUM": 0.9,
    "OPTIM.SGD_DAMPNING": 0,
    "OPTIM.SGD_NESTEROV": False,
    "OPTIM.RMSPROP_ALPHA": 0.99,
    "OPTIM.ADAM_BETA1": 0.9,
    "OPTIM.ADAM_BETA2": 0.999,
    "OPTIM.STAGED_LR": False,
    "OPTIM.NEW_LAYERS": (),
    "OPTIM.BASE_LR_MULT": 0.1,
    "OPTIM.LR_SCHEDULER": "single_step",
    "OPTIM.STEPSIZE": (-1,),
    "OPTIM.GAMMA": 0.1,
    "OPTIM.MAX_EPOCH": 10,
    "OPTIM.WARMUP_EPOCH": -1,
    "OPTIM.WARMUP_TYPE": "linear",
    "OPTIM.WARMUP_CONS_LR": 1e-5,
    "OPTIM.WARMUP_MIN_LR": 1e-5,
    "OPTIM.WARMUP_RECOUNT": True,
    "TRAIN.CHECKPOINT_FREQ": 0,
    "TRAIN.PRINT_FREQ": 10,
    "TRAIN.COUNT_ITER": "train_x",
    "TEST.EVALUATOR": "Classification",
    "TEST.PER_CLASS_RESULT": False,
    "TEST.COMPUTE_CMAT": False,
    "TEST.NO_TEST": False,
    "TEST.SPLIT": "test",
    "TEST.FINAL_MODEL": "last_step",
    "TRAINER.NAME": "",
}


def lookup(cfg, key):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


@pytest.mark.parametrize("key", sorted(DASSL_DEFAULTS))
def test_defaults_equal_dassls(key):
    value = lookup(get_cfg_default(), key)
    expected = DASSL_DEFAULTS[key]
    assert value == expected and type(value) is type(expected)


def test_get_cfg_default_returns_a_fresh_copy():
    cfg = get_cfg_default()
    cfg.OPTIM.LR = 123.0
    cfg.INPUT.PIXEL_MEAN[0] = 9.0
    fresh = get_cfg_default()
    assert fresh.OPTIM.LR == 0.0003 and fresh.INPUT.PIXEL_MEAN[0] == 0.485


def test_coop_extend_cfg_keys():
    cfg = get_cfg_default()
    assert "COOP" not in cfg.TRAINER
    extend_cfg_for_trainers(cfg)
    assert dict(cfg.TRAINER.COOP) == {"N_CTX": 16, "CSC": False, "CTX_INIT": "", "PREC": "fp16",
                                      "CLASS_TOKEN_POSITION": "end"}
    assert cfg.DATASET.SUBSAMPLE_CLASSES == "all"


def test_extend_cfg_calls_every_registered_trainer():
    class ProbeTrainer:
        @classmethod
        def extend_cfg(cls, cfg):
            cfg.TRAINER.PROBETRAINER = CfgNode({"DEPTH": 3})

    TRAINER_REGISTRY.register(ProbeTrainer)
    try:
        cfg = get_cfg_default()
        extend_cfg_for_trainers(cfg)
        assert cfg.TRAINER.PROBETRAINER.DEPTH == 3 and "COOP" in cfg.TRAINER
    finally:
        TRAINER_REGISTRY._classes.pop("ProbeTrainer")


def write_yaml(path, data):
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    return str(path)


def parse(argv):
    return train.setup_cfg(train.build_parser().parse_args(argv))


def base_argv():
    return ["--trainer", "CoOp", "--dataset-config-file", f"{REPO_ROOT}/configs/datasets/demo_shapes.yaml",
            "--config-file", f"{REPO_ROOT}/configs/trainers/CoOp/tiny_vit_demo.yaml"]


def test_merge_order_and_flags(tmp_path):
    cfg = parse(base_argv() + ["--root", "/data", "--output-dir", str(tmp_path), "--backbone", "RN50",
                               "OPTIM.MAX_EPOCH", "3", "MODEL.BACKBONE.NAME", "tiny-RN", "INPUT.SIZE", "(32, 32)"])
    assert cfg.DATASET.NAME == "DemoShapes"  # dataset YAML
    assert cfg.OPTIM.LR == 0.02 and cfg.TRAINER.COOP.CTX_INIT == "a photo of a"  # method YAML, merged after
    assert ("/data", str(tmp_path)) == (cfg.DATASET.ROOT, cfg.OUTPUT_DIR)  # flags
    assert cfg.MODEL.BACKBONE.NAME == "tiny-RN"  # trailing opts win over --backbone
    assert cfg.OPTIM.MAX_EPOCH == 3 and cfg.INPUT.SIZE == (32, 32)  # literal_eval'd values
    assert cfg.is_frozen()

    # the method YAML is merged after the dataset YAML: it wins on a key both set
    dataset_yaml = write_yaml(tmp_path / "ds.yaml", {"DATASET": {"NAME": "DemoShapes"}, "OPTIM": {"LR": 0.7}})
    cfg = parse(["--trainer", "CoOp", "--dataset-config-file", dataset_yaml,
                 "--config-file", f"{REPO_ROOT}/configs/trainers/CoOp/tiny_vit_demo.yaml"])
    assert cfg.OPTIM.LR == 0.02


def test_seed_flag():
    assert parse(base_argv()).SEED == -1
    assert parse(base_argv() + ["--seed", "0"]).SEED == 0  # unlike CoOp's `if args.seed:`
    assert parse(base_argv() + ["--seed", "3"]).SEED == 3


@pytest.mark.parametrize(("opts", "suggestion"), [
    (["OPTIM.LRR", "0.1"], "OPTIM.LR"),
    (["OPTIM.MAX_EPOCHS", "3"], "OPTIM.MAX_EPOCH"),
    (["TRAINER.COP.N_CTX", "8"], "TRAINER.COOP.N_CTX"),
    (["DATASET.NUM_SHOT", "4"], "DATASET.NUM_SHOTS"),
])
def test_unknown_key_on_the_command_line_suggests_the_key(opts, suggestion):
    cfg = get_cfg_default()
    extend_cfg_for_trainers(cfg)
    with pytest.raises(UserError) as info:
        merge_from_list(cfg, opts)
    message = str(info.value)
    assert f"Did you mean {suggestion}?" in message and opts[0] in message and "\n" not in message


def test_unknown_key_in_a_yaml_file(tmp_path):
    path = write_yaml(tmp_path / "typo.yaml", {"DATALOADER": {"TRAIN_X": {"BATCHSIZE": 4}}})
    cfg = get_cfg_default()
    with pytest.raises(UserError) as info:
        merge_from_file(cfg, path)
    assert path in str(info.value) and "Did you mean DATALOADER.TRAIN_X.BATCH_SIZE?" in str(info.value)


def test_other_bad_config_input(tmp_path):
    cfg = get_cfg_default()
    with pytest.raises(UserError, match="config file not found"):
        merge_from_file(cfg, str(tmp_path / "missing.yaml"))
    with pytest.raises(UserError, match="KEY VALUE pairs"):
        merge_from_list(cfg, ["OPTIM.LR"])
    with pytest.raises(UserError, match="OPTIM.MAX_EPOCH takes an integer"):
        merge_from_list(cfg, ["OPTIM.MAX_EPOCH", "'ten'"])
    with pytest.raises(UserError, match="--trainer"):
        parse(["--dataset-config-file", f"{REPO_ROOT}/configs/datasets/demo_shapes.yaml"])
    with pytest.raises(UserError, match="dataset"):
        parse(["--trainer", "CoOp"])


def test_seed_zero_is_used_by_a_run(cli, demo_root, tmp_path):
    code, out, err = cli(base_argv() + ["--root", demo_root, "--seed", "0", "--output-dir", tmp_path / "out",
                                        "--no-train", "DATASET.NUM_SHOTS", "3"])
    assert code == 0, err
    assert "Setting fixed seed: 0" in out.splitlines()
    assert os.path.isfile(os.path.join(demo_root, "demo_shapes", "split_fewshot", "shot_3-seed_0.pkl"))


def test_dassl_only_keys_merge_and_warn(tmp_path, engine_log):
    """A Dassl config that sets a domain-adaptation key still merges; the run says the key has no effect."""
    cfg = get_cfg_default()
    assert warn_dassl_only_keys(cfg) == []
    path = write_yaml(tmp_path / "dassl.yaml", {"DATASET": {"SOURCE_DOMAINS": ["art"]},
                                                "MODEL": {"HEAD": {"NAME": "mlp"}}})
    merge_from_file(cfg, path)
    assert warn_dassl_only_keys(cfg) == ["DATASET.SOURCE_DOMAINS", "MODEL.HEAD.NAME"]
    warnings = [m for m in engine_log.messages if m.startswith("WARNING: ")]
    assert len(warnings) == 2
    assert "DATASET.SOURCE_DOMAINS is ('art',), but nothing in this engine reads it" in warnings[0]
