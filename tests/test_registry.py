"""Registries and builders: registration by class name, duplicates rejected, unknown names reported
with the closest registered name (trainers, datasets, evaluators)."""
import pytest

from promptlearn.config import get_cfg_default
from promptlearn.data.datasets import DATASET_REGISTRY, build_dataset
from promptlearn.engine import TRAINER_REGISTRY, build_trainer
from promptlearn.errors import UserError
from promptlearn.evaluation import EVALUATOR_REGISTRY, build_evaluator
from promptlearn.utils import Registry, check_availability


def test_register_as_decorator_and_call():
    registry = Registry("THING")

    @registry.register()
    class Alpha:
        pass

    class Beta:
        pass

    assert registry.register(Beta) is Beta
    assert registry.get("Alpha") is Alpha and registry.get("Beta") is Beta
    assert registry.registered_names() == ["Alpha", "Beta"]
    assert "Alpha" in registry and "Gamma" not in registry


def test_duplicate_registration_is_a_key_error_unless_forced():
    registry = Registry("THING")

    class Alpha:
        pass

    registry.register(Alpha)

    class Alpha:  # noqa: F811  (a second class under the same name)
        pass

    with pytest.raises(KeyError, match="already registered"):
        registry.register(Alpha)
    with pytest.raises(KeyError):
        registry.register()(Alpha)
    registry.register(Alpha, force=True)
    assert registry.get("Alpha") is Alpha


def test_unknown_name():
    registry = Registry("THING")
    with pytest.raises(KeyError, match="Missing"):
        registry.get("Missing")
    with pytest.raises(UserError) as info:
        check_availability("GoPro", ["GOPro", "CoOp", "MaPLe"])
    assert 'Did you mean "GOPro"?' in str(info.value)
    check_availability("CoOp", ["CoOp"])  # known names pass


def test_registered_trainers_and_datasets():
    assert {"CoOp", "ZeroshotCLIP", "ZeroshotCLIP2"} <= set(TRAINER_REGISTRY.registered_names())
    assert "DemoShapes" in DATASET_REGISTRY.registered_names()
    assert "Classification" in EVALUATOR_REGISTRY.registered_names()


@pytest.mark.parametrize(("key", "value", "builder", "suggestion"), [
    ("TRAINER.NAME", "CoOP", build_trainer, "CoOp"),
    ("TRAINER.NAME", "ZeroShotCLIP", build_trainer, "ZeroshotCLIP"),
    ("DATASET.NAME", "DemoShape", build_dataset, "DemoShapes"),
    ("TEST.EVALUATOR", "Classifcation", build_evaluator, "Classification"),
])
def test_builders_suggest_the_closest_name(key, value, builder, suggestion):
    cfg = get_cfg_default()
    node, attr = key.split(".")
    cfg[node][attr] = value
    with pytest.raises(UserError) as info:
        builder(cfg)
    message = str(info.value)
    assert f'"{value}" is not available' in message and f'Did you mean "{suggestion}"?' in message
