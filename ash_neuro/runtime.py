"""Process-level plumbing shared by every command: device, seeds, RNG state, distribution.

Distributed runs use PyTorch's own engine: launched with `torchrun`, each process reads
RANK/WORLD_SIZE/LOCAL_RANK from the environment (gloo on the CPU, NCCL on CUDA, each process
on GPU `LOCAL_RANK`); with none set, everything is rank 0 of 1. `distributed_session` joins the
process group and leaves it on every exit path, errors included.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ash_neuro.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` picks CUDA when present; `cuda` without a GPU is a one-line error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                "device 'cuda' requested but no CUDA GPU is visible; use --device cpu"
            )
        return torch.device("cuda", local_rank)
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"unknown device '{name}'; use auto, cpu or cuda")


def is_main_process() -> bool:
    """Rank 0 of a torchrun launch, or a single process (what prints and writes)."""
    return int(os.environ.get("RANK", "0")) == 0


@contextmanager
def distributed_session(name: str) -> Iterator[tuple[torch.device, DistInfo]]:
    """(device, DistInfo) of this process for the device `name` (auto, cpu, cuda). Launched by
    torchrun (WORLD_SIZE > 1), it joins the process group first (the CUDA device of this
    process is set before, as NCCL requires) and destroys the group when the block ends, however
    it ends; a single process gets rank 0 of 1 and no group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(name, local_rank if world_size > 1 else 0)
    if world_size <= 1:
        yield device, DistInfo()
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    joined = not torch.distributed.is_initialized()
    if joined:
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        yield device, DistInfo(torch.distributed.get_rank(), world_size, local_rank)
    finally:
        if joined and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def gather_objects(value: Any, dist: DistInfo) -> list[Any]:
    """`value` of every rank, in rank order (every rank calls it; a single process: `[value]`)."""
    if not dist.enabled:
        return [value]
    gathered: list[Any] = [None] * dist.world_size
    torch.distributed.all_gather_object(gathered, value)
    return gathered


def all_ranks_agree(flag: bool, dist: DistInfo, device: torch.device) -> bool:
    """True when `flag` is True on every rank (every rank calls it), so that all ranks take the
    same branch, e.g. all stop when one rank's loss is NaN instead of the others blocking."""
    if not dist.enabled:
        return flag
    value = torch.tensor(float(flag), device=device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MIN)
    return bool(value.item())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(device: torch.device | None = None) -> dict:
    """This process's RNG states as tensors and primitives (safe for
    `torch.load(weights_only=True)`): Python, NumPy, torch's CPU generator and, on CUDA, the
    generator of this process's own GPU."""
    np_state = np.random.get_state()
    state = {
        "python": list(random.getstate()[1]),
        "python_pos": random.getstate()[2],
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "torch": torch.get_rng_state(),
    }
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device | None = None) -> None:
    """Restore `rng_state`'s states; the CUDA one only on this process's own GPU `device`."""
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    np.random.set_state(
        ("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0)
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def configure_threads(threads: int) -> None:
    """0 leaves PyTorch's default; otherwise pin intra-op threads (CPU runs)."""
    if threads > 0:
        torch.set_num_threads(threads)
