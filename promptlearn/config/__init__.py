"""Config access (Dassl's ``dassl.config``) and safe merging with clear errors for typos."""
import difflib
import logging
import os

from yacs.config import CfgNode

from ..errors import UserError
from .defaults import _C, DASSL_ONLY_KEYS

__all__ = ["get_cfg_default", "merge_from_file", "merge_from_list", "warn_dassl_only_keys"]

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


def _explain_key_error(cfg: CfgNode, err: Exception, source: str) -> UserError:
    message = str(err.args[0]) if err.args else str(err)
    bad = message.split(":", 1)[-1].strip()
    hint = ""
    close = difflib.get_close_matches(bad, _all_keys(cfg), n=1, cutoff=0.6)
    if close:
        hint = f" Did you mean {close[0]}?"
    return UserError(f"{source}: unknown config key {bad}.{hint} Keys must already exist in the defaults "
                     "or be added by a trainer (see promptlearn/config/defaults.py and trainers/*.py).")


def merge_from_file(cfg: CfgNode, path: str) -> None:
    """Merge a YAML file into ``cfg``; a missing file or an unknown key gives a UserError."""
    if not os.path.isfile(path):
        raise UserError(f"config file not found: {path}. Give an existing YAML file "
                        "(see configs/datasets/ and configs/trainers/).")
    try:
        cfg.merge_from_file(path)
    except KeyError as err:
        raise _explain_key_error(cfg, err, path) from None
    except ValueError as err:
        raise UserError(f"{path}: {err}. Fix the value's type to match the default.") from None


def merge_from_list(cfg: CfgNode, opts: list) -> None:
    """Merge trailing ``KEY VALUE`` pairs from the command line."""
    if len(opts) % 2:
        raise UserError(f"config options must come in KEY VALUE pairs, got an odd number: {opts}")
    try:
        cfg.merge_from_list(opts)
    except (KeyError, AssertionError) as err:
        raise _explain_key_error(cfg, err, "command line") from None
    except ValueError as err:
        raise UserError(f"command line: {err}. Fix the value's type to match the default.") from None
