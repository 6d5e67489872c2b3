"""Name -> class registries (Dassl's ``Registry``) used to assemble trainers, datasets and evaluators."""
import difflib

from ..errors import UserError


class Registry:
    """A dict of classes keyed by their ``__name__``; ``register`` works as a decorator or a plain call."""

    def __init__(self, name: str):
        self._name = name
        self._obj_map = {}

    def _do_register(self, name: str, obj, force: bool = False) -> None:
        if name in self._obj_map and not force:
            raise KeyError(f'An object named "{name}" was already registered in "{self._name}" registry')
        self._obj_map[name] = obj

    def register(self, obj=None, force: bool = False):
        if obj is None:
            def wrapper(fn_or_class):
                self._do_register(fn_or_class.__name__, fn_or_class, force=force)
                return fn_or_class
            return wrapper
        self._do_register(obj.__name__, obj, force=force)
        return obj

    def get(self, name: str):
        if name not in self._obj_map:
            raise KeyError(f'Object name "{name}" does not exist in "{self._name}" registry')
        return self._obj_map[name]

    def registered_names(self) -> list:
        return list(self._obj_map.keys())

    def __contains__(self, name: str) -> bool:
        return name in self._obj_map


def check_availability(requested: str, available: list) -> None:
    """Raise a UserError naming the closest available name when ``requested`` is unknown."""
    if requested in available:
        return
    close = difflib.get_close_matches(requested, available, n=1, cutoff=0.0)
    hint = f' Did you mean "{close[0]}"?' if close else ""
    raise UserError(f'"{requested}" is not available.{hint} Available: {", ".join(sorted(available))}')
