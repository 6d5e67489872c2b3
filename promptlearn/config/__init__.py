"""Config access (Dassl's ``dassl.config``), safe merging with clear errors for typos, files that do not parse
and values of the wrong type, and the checks of the values the engine cannot run with."""
import difflib
import logging
import math
import os
import re

import yaml
from yacs.config import CfgNode

from ..errors import UserError
from .defaults import _C, DASSL_ONLY_KEYS, NOT_DEFINING_KEYS

__all__ = ["NOT_DEFINING_KEYS", "check_values", "flatten", "get_cfg_default", "merge_from_file", "merge_from_list",
           "warn_dassl_only_keys"]

logger = logging.getLogger(__name__)


def get_cfg_default() -> CfgNode:
    """Return a fresh copy of the default config."""
    return _C.clone()


def _value(cfg: CfgNode, key: str):
    for name in key.split("."):
        cfg = cfg[name]
    return cfg


def warn_dassl_only_keys(cfg: CfgNode) -> list:
    """Warn about every Dassl-only key (see defaults.py) set to something other than its default; return them."""
    changed = [key for key, default in DASSL_ONLY_KEYS.items() if _value(cfg, key) != default]
    for key in changed:
        logger.warning(f"WARNING: {key} is {_value(cfg, key)!r}, but nothing in this engine reads it (a key of "
                       "Dassl's domain-adaptation, semi-supervised or CNN-head code); it has no effect")
    return changed


def _all_keys(node: CfgNode, prefix: str = "") -> list:
    keys = []
    for name, value in node.items():
        full = f"{prefix}{name}"
        keys.append(full)
        if isinstance(value, CfgNode):
            keys.extend(_all_keys(value, full + "."))
    return keys


def flatten(node: CfgNode, prefix: str = "") -> dict:
    """``{"OPTIM.LR": 0.002, ...}``: every leaf of ``node`` under its dotted key."""
    flat = {}
    for name, value in node.items():
        if isinstance(value, CfgNode):
            flat.update(flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _explain_key_error(cfg: CfgNode, err: Exception, source: str) -> UserError:
    message = str(err.args[0]) if err.args else str(err)
    bad = message.split(":", 1)[-1].strip()
    hint = ""
    close = difflib.get_close_matches(bad, _all_keys(cfg), n=1, cutoff=0.6)
    if close:
        hint = f" Did you mean {close[0]}?"
    return UserError(f"{source}: unknown config key {bad}.{hint} Keys must already exist in the defaults "
                     "or be added by a trainer (see promptlearn/config/defaults.py and trainers/*.py).")


_TYPE_MISMATCH = re.compile(r"with values \((?P<default>.*) vs\. (?P<given>.*)\) for config key: (?P<key>\S+)$", re.S)


def _explain_value_error(cfg: CfgNode, err: ValueError, source: str) -> UserError:
    """yacs' type mismatch (whose message holds a whole config node when the key is one) in one line."""
    text = str(err)
    match = _TYPE_MISMATCH.search(text)
    try:
        default = _value(cfg, match["key"]) if match else None
    except KeyError:
        match = None
    if match is None:
        return UserError(f"{source}: {' '.join(text.split())}")
    key, given = match["key"], " ".join(match["given"].split())
    if isinstance(default, CfgNode):
        names = sorted(default)
        listed = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        return UserError(f"{source}: {key} is a group of keys ({listed}), not a value: set one of its keys, e.g. "
                         f"{key}.{names[0]}")
    kinds = {bool: "True or False", int: "an integer", float: "a number", str: "a string", tuple: "a list",
             list: "a list"}
    kind = kinds.get(type(default), f"a {type(default).__name__}")
    return UserError(f"{source}: {key} takes {kind} (its default is {default!r}), got {given}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ints_as_floats(cfg: CfgNode, content: dict) -> dict:
    """``content`` (a YAML mapping) with a whole number given for a float key turned into a float (yacs refuses
    ``LR: 1`` for a float default)."""
    out = {}
    for key, value in content.items():
        default = cfg.get(key) if isinstance(cfg, CfgNode) else None
        if isinstance(value, dict) and isinstance(default, CfgNode):
            value = _ints_as_floats(default, value)
        elif isinstance(default, float) and _is_int(value):
            value = float(value)
        out[key] = value
    return out


def _opt_ints_as_floats(cfg: CfgNode, opts: list) -> list:
    """Command-line pairs with a whole number given for a float key written as a float."""
    out = list(opts)
    for i in range(0, len(out) - 1, 2):
        try:
            default = _value(cfg, out[i])
        except (KeyError, AttributeError, TypeError):
            continue
        if isinstance(default, float) and re.fullmatch(r"[+-]?\d+", str(out[i + 1]).strip()):
            out[i + 1] = str(float(out[i + 1]))
    return out


def merge_from_file(cfg: CfgNode, path: str) -> None:
    """Merge a YAML file into ``cfg``; a missing or unparsable file, an unknown key or a value of the wrong type
    gives a UserError naming the file."""
    if not os.path.isfile(path):
        raise UserError(f"config file not found: {path}. Give an existing YAML file "
                        "(see configs/datasets/ and configs/trainers/).")
    try:
        with open(path) as f:
            content = yaml.safe_load(f)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{path} is not valid YAML: {problem}{where}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read config file {path} ({err})") from None
    if content is None:
        return
    if not isinstance(content, dict):
        raise UserError(f"{path} must hold KEY: value pairs (a mapping such as OPTIM: {{LR: 0.002}}), "
                        f"not a {type(content).__name__}")
    try:
        cfg.merge_from_other_cfg(CfgNode(_ints_as_floats(cfg, content)))
    except KeyError as err:
        raise _explain_key_error(cfg, err, path) from None
    except ValueError as err:
        raise _explain_value_error(cfg, err, path) from None


def merge_from_list(cfg: CfgNode, opts: list) -> None:
    """Merge trailing ``KEY VALUE`` pairs from the command line."""
    flags = [word for word in opts[::2] if word.startswith("--")]
    if flags:
        raise UserError(f"{flags[0]} comes after the KEY VALUE pairs: flags go first (python train.py --root ... "
                        f"--output-dir ... KEY VALUE ...); move {flags[0]} and its value before the first KEY")
    if len(opts) % 2:
        raise UserError(f"config options must come in KEY VALUE pairs, got an odd number: {opts}")
    try:
        cfg.merge_from_list(_opt_ints_as_floats(cfg, opts))
    except (KeyError, AssertionError) as err:
        raise _explain_key_error(cfg, err, "command line") from None
    except ValueError as err:
        raise _explain_value_error(cfg, err, "command line") from None


def _number(cfg: CfgNode, key: str, minimum, integer: bool = False, strict: bool = False):
    value = _value(cfg, key)
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value > minimum if strict else value >= minimum)
    if not ok:
        bound = f"above {minimum}" if strict else f"{minimum} or more"
        raise UserError(f"{key} must be {kind} {bound}, got {value!r}")
    return value


def check_values(cfg: CfgNode) -> None:
    """A UserError for a value the engine cannot run with (checked before anything is built or written)."""
    for key, value in flatten(cfg).items():
        if value is None:
            raise UserError(f"{key} is empty (null/None): give it a value like its default")
    shots = cfg.DATASET.NUM_SHOTS
    if not isinstance(shots, int) or isinstance(shots, bool) or (shots < 1 and shots != -1):
        raise UserError(f"DATASET.NUM_SHOTS must be the number of training images per class (1 or more), or -1 "
                        f"for every training image; got {shots!r}")
    for key in ("DATALOADER.TRAIN_X.BATCH_SIZE", "DATALOADER.TEST.BATCH_SIZE", "DATALOADER.K_TRANSFORMS",
                "OPTIM.MAX_EPOCH", "TRAIN.PRINT_FREQ"):
        _number(cfg, key, 1, integer=True)
    for key in ("DATALOADER.NUM_WORKERS", "MODEL.TEXT_BATCH_SIZE"):
        _number(cfg, key, 0, integer=True)
    for key in ("OPTIM.LR", "OPTIM.WEIGHT_DECAY", "OPTIM.MOMENTUM", "OPTIM.WARMUP_CONS_LR", "OPTIM.WARMUP_MIN_LR"):
        _number(cfg, key, 0)
    _number(cfg, "TRAIN.CHECKPOINT_MINUTES", -math.inf, strict=True)
    size = cfg.INPUT.SIZE
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise UserError(f"INPUT.SIZE must be two positive integers (height, width), got {tuple(size)}")
    for key, allowed in (("TEST.FINAL_MODEL", ("last_step", "best_val")), ("TEST.SPLIT", ("test", "val"))):
        if _value(cfg, key) not in allowed:
            raise UserError(f'{key} must be one of {", ".join(allowed)}, got "{_value(cfg, key)}"')
