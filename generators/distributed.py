r"""Data-parallel generator training with ``torch.distributed``: what ``train()`` needs, nothing more.

Launch ``sim2real train-generator`` under ``torchrun`` and every rank runs the same loop::

    torchrun --standalone --nproc_per_node 4 -m sim2real_env.cli train-generator \\
        --config configs/generators/cyclegan.yaml

The ranks are found from torchrun's ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` (or from a process
group the caller already made); one rank is the single-process run, unchanged. The design, and why:

* **Gradients are averaged by a step pre-hook on each trainer optimiser** (:class:`GradientAverager`)
  rather than by wrapping modules in ``DistributedDataParallel``. Every method's trainer owns
  several networks, freezes discriminators for the generator step and steps two optimisers per
  iteration; DDP would need each of those forward passes routed through a wrapper (and
  ``find_unused_parameters`` for the frozen parts). A hook on ``optimizer.step`` sees exactly the
  gradients that are about to be applied, whatever the method did to produce them, so the
  trainers keep their code. The cost is no overlap of communication with the backward pass
  (one flattened all-reduce per optimiser step), which at these model sizes is small.
* **The global batch is the single-process batch.** Every rank draws the same ``N x B`` frame
  indices and crop parameters from generators kept identical on all ranks, then keeps its own
  ``B`` (:func:`local_part`): rank ``r`` trains on rows ``r*B .. (r+1)*B - 1``. ``N`` ranks with
  ``training.batch_size: B`` therefore see the frames one process with ``batch_size: N*B`` sees,
  and the checkpoint's sampler state is the same on every rank, so a checkpoint does not depend
  on the world size.
* Randomness *inside* a training step (UNIT's latent noise, STN-U-Net's distortion draws) comes
  from a per-(seed, step, rank) stream (:func:`step_seed`), so ranks never draw the same noise
  for different frames, and resuming on any number of ranks stays deterministic.
* Per-row draws that a trainer makes from its own generator (DiffAugment's shifts and cut-outs)
  are drawn for the global batch and sliced (:func:`global_rows`), so they too are one process's.
* Floating-point buffers (batch-norm running statistics) are broadcast from rank 0 after each
  step, as ``DistributedDataParallel`` does with ``broadcast_buffers=True``.
* Rank 0 alone writes logs, samples, the KID log and checkpoints.
"""

from __future__ import annotations

import atexit
import hashlib
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

#: torchrun's variables (``LOCAL_WORLD_SIZE`` is optional: it defaults to ``WORLD_SIZE``).
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands among the ranks; ``world_size == 1`` is the single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        """Whether there is more than one rank (collectives are needed)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files."""
        return self.rank == 0


def _env_int(name: str, default: int | None = None) -> int:
    text = os.environ.get(name)
    if text is None:
        if default is None:
            raise ValueError(f"torch.distributed: {name} is not set (torchrun sets {', '.join(ENV_VARS)})")
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"torch.distributed: {name} must be an integer, got {text!r}") from None


def detect() -> DistContext:
    """The ranks, from an initialised process group or else from torchrun's environment variables.

    Without ``WORLD_SIZE`` (a plain ``sim2real`` or ``python -m`` run) this is the single-process
    context. A partial or inconsistent set of variables is an error naming them.
    """
    if dist.is_available() and dist.is_initialized():
        world = dist.get_world_size()
        rank = dist.get_rank()
        local_world = _env_int("LOCAL_WORLD_SIZE", world)
        return DistContext(rank, world, _env_int("LOCAL_RANK", rank % max(1, local_world)), local_world)
    if "WORLD_SIZE" not in os.environ:
        return DistContext()
    world = _env_int("WORLD_SIZE")
    if world == 1:
        return DistContext()
    rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK")
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    if not (0 <= rank < world and 0 <= local_rank < local_world <= world):
        raise ValueError(
            f"torch.distributed: inconsistent RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local_rank}, "
            f"LOCAL_WORLD_SIZE={local_world}"
        )
    return DistContext(rank, world, local_rank, local_world)


def rank_device(context: DistContext, device: torch.device) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` when training on CUDA, else ``device`` (CPU)."""
    if device.type != "cuda" or not context.enabled:
        return device
    if context.local_rank >= torch.cuda.device_count():
        raise ValueError(
            f"torch.distributed: LOCAL_RANK {context.local_rank} but only {torch.cuda.device_count()} CUDA "
            "device(s); start at most that many processes per node (--nproc_per_node)"
        )
    torch.cuda.set_device(context.local_rank)
    return torch.device("cuda", context.local_rank)


def init_process_group(context: DistContext, device: torch.device) -> bool:
    """Join the ranks (NCCL on CUDA, gloo on CPU) unless a group exists; returns whether it made one."""
    if not context.enabled or dist.is_initialized():
        return False
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    atexit.register(_destroy)  # torchrun's processes end after one run; leave the group cleanly
    return True


def _destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def threads_per_rank(context: DistContext, requested: int) -> int:
    """``requested`` torch threads, capped so that the ranks on one node never oversubscribe its cores."""
    if not context.enabled:
        return requested
    return max(1, min(requested, (os.cpu_count() or 1) // max(1, context.local_world_size)))


def step_seed(seed: int, step: int, rank: int) -> int:
    """Seed of the randomness inside training step ``step`` on ``rank`` (independent of the world size)."""
    digest = hashlib.sha256(f"{seed}/{step}/{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


@contextmanager
def forked_rng(context: DistContext, device: torch.device, seed: int | None = None) -> Iterator[None]:
    """Run a block on its own RNG stream and give the caller's back afterwards (only when distributed).

    With ``seed``, the block starts from that seed (a training step's own randomness); without,
    it continues a copy of the current stream (rank-0-only work such as sample grids, whose draws
    must not move rank 0's shared stream ahead of the other ranks').
    """
    if not context.enabled:
        yield
        return
    devices: list[int] = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        if seed is not None:
            torch.manual_seed(seed)
        yield


def local_part(batch: torch.Tensor, context: DistContext) -> torch.Tensor:
    """The rows of a global batch of ``world_size x B`` rows that belong to this rank."""
    # of ``world_size x B`` rows."""
    if not context.enabled:
        return batch
    if batch.shape[0] % context.world_size:
        raise ValueError(f"a global batch of {batch.shape[0]} rows does not split over {context.world_size} ranks")
    size = batch.shape[0] // context.world_size
    return batch[context.rank * size : (context.rank + 1) * size]


def global_rows(rows: int) -> tuple[int, slice]:
    """For a local batch of ``rows``: the global batch's row count and this rank's slice of it.

    Per-row random draws made for the global batch and sliced (``torch.rand(total)[mine]``) are
    the draws one process with that batch makes, and every rank's generator moves on alike; not
    distributed, this is ``(rows, slice(0, rows))``, the plain draws.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return rows, slice(0, rows)
    rank = dist.get_rank()
    return rows * dist.get_world_size(), slice(rank * rows, (rank + 1) * rows)


def gather_batch(batch: torch.Tensor) -> torch.Tensor:
    """Every rank's ``batch`` concatenated in rank order (no gradient); the batch itself when not distributed.

    For state that must be the same on every rank, such as CycleGAN's image pools: each rank
    queries the pool with the global batch of fakes and keeps its own rows, so the pools (and
    their random draws) match one process with the global batch.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return batch
    batch = batch.detach().contiguous()
    parts = [torch.empty_like(batch) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, batch)
    return torch.cat(parts, 0)


def own_rows(batch: torch.Tensor) -> torch.Tensor:
    """Rows of this rank in a batch made by :func:`gather_batch` (the batch itself when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return batch
    size = batch.shape[0] // dist.get_world_size()
    return batch[dist.get_rank() * size : (dist.get_rank() + 1) * size]


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over the ranks (no gradient); ``value`` itself when not distributed."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


def mean_losses(losses: dict[str, float], context: DistContext, device: torch.device) -> dict[str, float]:
    """Each loss averaged over the ranks: the global batch's loss when every rank has ``B`` rows."""
    if not context.enabled or not losses:
        return losses
    names = sorted(losses)
    values = mean_over_ranks(torch.tensor([losses[n] for n in names], dtype=torch.float64, device=device))
    return dict(zip(names, values.tolist(), strict=True))


def any_rank(flag: bool, context: DistContext, device: torch.device) -> bool:
    """Whether ``flag`` is true on any rank (so that a signal on one rank stops all at the same step)."""
    if not context.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def _flat_all_reduce_mean(tensors: list[torch.Tensor]) -> None:
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


class GradientAverager:
    """Averages the gradients of an optimiser's parameters over the ranks just before each ``step()``.

    Parameters without a gradient (frozen ones, a discriminator during the generator update) are
    left alone; which parameters have one depends only on the method's code, so it is the same
    on every rank. ``close()`` removes the hooks.
    """

    def __init__(self, optimizers: Iterable[torch.optim.Optimizer]) -> None:
        self.handles = [optimizer.register_step_pre_hook(self._hook) for optimizer in optimizers]

    @staticmethod
    def _hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for grad in grads:
            by_dtype.setdefault(grad.dtype, []).append(grad)
        for same in by_dtype.values():
            _flat_all_reduce_mean(same)

    def close(self) -> None:
        """Stop averaging."""
        for handle in self.handles:
            handle.remove()
        self.handles = []


def trained_modules(trainer: Any) -> list[nn.Module]:
    """The trainer's modules that hold a parameter one of its optimisers updates (model included)."""
    optimized = {id(p) for optimizer in trainer.optimizers for group in optimizer.param_groups for p in group["params"]}
    candidates = [trainer.model, *(v for v in vars(trainer).values() if isinstance(v, nn.Module))]
    seen: set[int] = set()
    modules = []
    for module in candidates:
        if id(module) not in seen and any(id(p) in optimized for p in module.parameters()):
            seen.add(id(module))
            modules.append(module)
    return modules


def broadcast_modules(modules: Iterable[nn.Module], buffers_only: bool = False) -> None:
    """Copy rank 0's parameters (unless ``buffers_only``) and floating-point buffers to every rank."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    tensors: list[torch.Tensor] = []
    for module in modules:
        if not buffers_only:
            tensors += [p.data for p in module.parameters()]
        tensors += [b for b in module.buffers() if b.is_floating_point()]
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for tensor in tensors:
        by_dtype.setdefault(tensor.dtype, []).append(tensor)
    for same in by_dtype.values():
        flat = torch.cat([t.reshape(-1) for t in same])
        dist.broadcast(flat, src=0)
        offset = 0
        for t in same:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()


def broadcast_rng(generator: torch.Generator, device: torch.device) -> None:
    """Give every rank rank 0's state of ``generator`` (a CPU generator, e.g. the frame sampler)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    state = generator.get_state().to(device)
    dist.broadcast(state, src=0)
    generator.set_state(state.cpu())


def check_in_sync(modules: Iterable[nn.Module], context: DistContext, device: torch.device) -> None:
    """Raise ``RuntimeError`` unless every rank holds the same weights and buffers (a safety net).

    The ranks apply identical updates, so they can only drift apart through a bug such as a step
    whose control flow depends on the rank; then the checkpoint (rank 0's) would not be the model
    the other ranks trained, and this says so instead of saving it silently.
    """
    if not context.enabled:
        return
    sums = [
        t.detach().double().sum()
        + (t.detach().double().flatten() * torch.linspace(1, 2, t.numel(), device=device)).sum()
        for module in modules
        for t in [*module.parameters(), *module.buffers()]
        if t.is_floating_point() and t.numel()
    ]
    if not sums:
        return
    local = torch.stack(sums)
    low, high = local.clone(), local.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    if not torch.equal(low, high):
        differing = int((low != high).sum())
        raise RuntimeError(
            f"torch.distributed: the ranks' weights differ ({differing} of {low.numel()} tensors); "
            "a training step must not depend on the rank"
        )


def barrier(context: DistContext) -> None:
    """Wait for every rank (so that files rank 0 wrote exist before any rank returns)."""
    if context.enabled:
        dist.barrier()
