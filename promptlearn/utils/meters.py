"""Running means for progress reports, with Dassl's names: ``AverageMeter`` (one quantity) and ``MetricMeter``
(a group keyed by name, e.g. the losses a training step reports)."""
from collections import defaultdict


class AverageMeter:
    """``val``: the latest value; ``avg``: the mean of all values so far, each weighted by its ``n`` (with
    ``ema=True``, an exponential moving average that gives each new value a weight of 0.1)."""

    def __init__(self, ema: bool = False):
        self.ema = ema
        self.reset()

    def reset(self) -> None:
        self.val = self.avg = self.sum = 0.0
        self.count = 0

    def update(self, val, n: int = 1) -> None:
        val = float(val)  # a number or a one-element tensor
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = (0.9 * self.avg + 0.1 * val) if self.ema else self.sum / self.count


class MetricMeter:
    """One AverageMeter per name; ``update`` takes a dict of numbers (or one-element tensors)."""

    def __init__(self, delimiter: str = " "):
        self.meters = defaultdict(AverageMeter)
        self.delimiter = delimiter

    def update(self, values: dict) -> None:
        if values is None:
            return
        if not isinstance(values, dict):
            raise TypeError(f"MetricMeter.update takes a dict of name -> value, got {type(values).__name__}")
        for name, value in values.items():
            self.meters[name].update(value)

    def __str__(self) -> str:
        return self.delimiter.join(f"{name} {m.val:.4f} ({m.avg:.4f})" for name, m in self.meters.items())
