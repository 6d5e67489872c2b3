"""Samplers by name (Dassl's ``build_sampler``), with DistributedSampler under torchrun."""
import random
from collections import defaultdict

from torch.utils.data.distributed import DistributedSampler
from torch.utils.data.sampler import RandomSampler, Sampler, SequentialSampler

from ..errors import UserError
from ..utils.distributed import get_rank, get_world_size


class RandomClassSampler(Sampler):
    """Each batch holds ``n_ins`` images of each of ``batch_size // n_ins`` random classes."""

    def __init__(self, data_source, batch_size: int, n_ins: int):
        if batch_size < n_ins:
            raise UserError(f"batch size {batch_size} is smaller than N_INS {n_ins}")
        self.data_source = data_source
        self.batch_size = batch_size
        self.n_ins = n_ins
        self.ncls_per_batch = batch_size // n_ins
        self.index_dic = defaultdict(list)
        for index, item in enumerate(data_source):
            self.index_dic[item.label].append(index)
        self.labels = list(self.index_dic.keys())
        if self.ncls_per_batch > len(self.labels):
            raise UserError(f"RandomClassSampler needs {self.ncls_per_batch} classes per batch, "
                            f"the dataset has {len(self.labels)}")
        self.length = len(list(self.__iter__()))

    def __iter__(self):
        batch_idxs_dict = defaultdict(list)
        for label in self.labels:
            idxs = list(self.index_dic[label])
            if len(idxs) < self.n_ins:
                idxs = random.choices(idxs, k=self.n_ins)
            random.shuffle(idxs)
            batch_idxs = []
            for idx in idxs:
                batch_idxs.append(idx)
                if len(batch_idxs) == self.n_ins:
                    batch_idxs_dict[label].append(batch_idxs)
                    batch_idxs = []
        avai_labels = list(self.labels)
        final_idxs = []
        while len(avai_labels) >= self.ncls_per_batch:
            selected_labels = random.sample(avai_labels, self.ncls_per_batch)
            for label in selected_labels:
                batch_idxs = batch_idxs_dict[label].pop(0)
                final_idxs.extend(batch_idxs)
                if len(batch_idxs_dict[label]) == 0:
                    avai_labels.remove(label)
        return iter(final_idxs)

    def __len__(self):
        return self.length


class ShardSampler(Sampler):
    """Rank r of W takes items r, r+W, r+2W, ... in order: no padding, so evaluation counts every item once."""

    def __init__(self, data_source, rank: int, world_size: int):
        self.indices = list(range(len(data_source)))[rank::world_size]

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


def build_sampler(sampler_type: str, cfg=None, data_source=None, batch_size: int = 32, n_domain: int = 0,
                  n_ins: int = 2, is_train: bool = True):
    if get_world_size() > 1:
        if not is_train:
            return ShardSampler(data_source, get_rank(), get_world_size())
        # every rank sees a disjoint shard, reshuffled per epoch (the trainer calls set_epoch); the shuffle
        # follows the run's seed, as the single-process samplers do
        seed = cfg.SEED if cfg is not None and cfg.SEED >= 0 else 0
        return DistributedSampler(data_source, shuffle=sampler_type != "SequentialSampler", seed=seed)
    if sampler_type == "RandomSampler":
        return RandomSampler(data_source)
    if sampler_type == "SequentialSampler":
        return SequentialSampler(data_source)
    if sampler_type == "RandomClassSampler":
        return RandomClassSampler(data_source, batch_size, n_ins)
    raise UserError(f'unknown sampler "{sampler_type}"; use RandomSampler, SequentialSampler or RandomClassSampler')
