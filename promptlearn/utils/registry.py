"""Classes by name: the tables ``TRAINER_REGISTRY``, ``DATASET_REGISTRY`` and ``EVALUATOR_REGISTRY`` that configs
refer to (``TRAINER.NAME``, ``DATASET.NAME``, ``TEST.EVALUATOR``), with Dassl's ``Registry`` interface."""
import difflib
import logging

from ..errors import UserError

logger = logging.getLogger(__name__)


class Registry:
    """A table of classes keyed by ``__name__``. ``@REGISTRY.register()`` enters a class where it is defined;
    ``REGISTRY.register(cls)`` is the same as a call. A name can be entered once unless ``force=True``."""

    def __init__(self, name: str):
        self.name = name
        self._classes = {}

    def register(self, obj=None, force: bool = False):
        def enter(cls):
            if cls.__name__ in self._classes and not force:
                raise KeyError(f"{cls.__name__} is already registered in the {self.name} registry "
                               "(register(..., force=True) replaces it)")
            self._classes[cls.__name__] = cls
            return cls

        return enter if obj is None else enter(obj)

    def get(self, name: str):
        if name not in self._classes:
            raise KeyError(f"nothing is registered as {name} in the {self.name} registry")
        return self._classes[name]

    def registered_names(self) -> list:
        return list(self._classes)

    def __contains__(self, name: str) -> bool:
        return name in self._classes

    def build(self, name: str, *args, verbose: bool = True, **kwargs):
        """An instance of the class registered as ``name``; an unknown name is a UserError naming the closest."""
        check_availability(name, self.registered_names())
        if verbose:
            logger.info(f"{self.name.lower()}: {name}")
        return self._classes[name](*args, **kwargs)


def check_availability(requested: str, available: list) -> None:
    """Raise a UserError naming the closest available name when ``requested`` is unknown."""
    if requested in available:
        return
    close = difflib.get_close_matches(requested, available, n=1, cutoff=0.0)
    hint = f' Did you mean "{close[0]}"?' if close else ""
    raise UserError(f'"{requested}" is not available.{hint} Available: {", ".join(sorted(available))}')
