"""Which items a loader visits, and in what order (Dassl's ``build_sampler``). In one process: RandomSampler or
SequentialSampler by name. Under torchrun every rank takes a disjoint share: in training a DistributedSampler
(reshuffled each epoch with the run's seed unless sequential), in evaluation every world-size-th item."""
from torch.utils.data.distributed import DistributedSampler
from torch.utils.data.sampler import RandomSampler, Sampler, SequentialSampler

from ..errors import UserError
from ..utils.distributed import get_rank, get_world_size

SAMPLERS = {"RandomSampler": RandomSampler, "SequentialSampler": SequentialSampler}


class ShardSampler(Sampler):
    """Rank r of W takes items r, r+W, r+2W, ... in order: no padding, so evaluation counts every item once."""

    def __init__(self, data_source, rank: int, world_size: int):
        self.indices = range(rank, len(data_source), world_size)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


def build_sampler(sampler_type: str, cfg=None, data_source=None, batch_size: int = 32, is_train: bool = True):
    if sampler_type not in SAMPLERS:
        raise UserError(f'unknown sampler "{sampler_type}"; use one of {", ".join(SAMPLERS)}')
    world = get_world_size()
    if world == 1:
        return SAMPLERS[sampler_type](data_source)
    if not is_train:
        return ShardSampler(data_source, get_rank(), world)
    seed = cfg.SEED if cfg is not None and cfg.SEED >= 0 else 0
    return DistributedSampler(data_source, shuffle=sampler_type != "SequentialSampler", seed=seed)
