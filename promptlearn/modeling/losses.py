"""GOPro's self-supervised losses, gathered across ranks in one place.

- ``simclr_loss``: SLIP's SimCLR loss between two views' projected features (temperature tau, both
  directions, self-similarities masked out); in a distributed run each rank's queries are contrasted
  with the keys of every rank, and the gradient flows back to every rank's features.
- ``prompt_consistency_loss``: distance between the text features of the original view's prompts and
  an augmented view's, per image and class: the L2 norm of the difference (the paper's equation) or
  the mean squared difference over all elements (the official code).
"""
import torch
import torch.nn.functional as F

from ..errors import UserError
from ..utils.distributed import all_gather_with_grad, get_rank

SEM_DISTANCES = ("l2", "mse")


def simclr_loss(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent between (B, E) features of two views: positives are the same image in the other view."""
    z_a = F.normalize(z_a.float(), dim=-1)
    z_b = F.normalize(z_b.float(), dim=-1)
    all_a = all_gather_with_grad(z_a)
    all_b = all_gather_with_grad(z_b)
    local = z_a.shape[0]
    labels = torch.arange(local, device=z_a.device) + get_rank() * local
    # a large negative on every pair (i, i) of the same view removes self-similarity from the softmax
    self_mask = F.one_hot(labels, all_a.shape[0]).to(z_a.dtype) * 1e9
    logits_ab = z_a @ all_b.t() / temperature
    logits_ba = z_b @ all_a.t() / temperature
    logits_aa = z_a @ all_a.t() / temperature - self_mask
    logits_bb = z_b @ all_b.t() / temperature - self_mask
    loss_a = F.cross_entropy(torch.cat([logits_ab, logits_aa], dim=1), labels)
    loss_b = F.cross_entropy(torch.cat([logits_ba, logits_bb], dim=1), labels)
    return (loss_a + loss_b) / 2


def prompt_consistency_loss(text_a: torch.Tensor, text_b: torch.Tensor, distance: str = "l2") -> torch.Tensor:
    """Distance between L2-normalized text features (B, C, E) of two views' prompts."""
    if distance == "l2":
        return (text_a.float() - text_b.float()).norm(dim=-1).mean()
    if distance == "mse":
        return F.mse_loss(text_a.float(), text_b.float())
    raise UserError(f'TRAINER.GOPRO.SEM_DISTANCE must be one of {SEM_DISTANCES}, got "{distance}"')
