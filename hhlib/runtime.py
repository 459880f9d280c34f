"""Where and how computation runs: device choice, seeding, mixed precision, distributed setup.

Nothing else in hhlib hard-codes a device: every ``device="auto"`` goes through
:func:`resolve_device`, so the same code runs on a laptop CPU, one GPU, or several under
``torchrun`` (HybridHash paper, Sec. 4.1 trains with mixed precision on GPUs).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device request into a ``torch.device``.

    Args:
        device: ``"auto"`` (the ``TORCH_DEVICE`` environment variable if set, else CUDA
            when available, else MPS, else CPU), or any name ``torch.device`` accepts.

    Returns:
        The resolved device. Under ``torchrun`` with CUDA, ``"auto"`` picks ``cuda:LOCAL_RANK``.

    Raises:
        ValueError: the name is not a device, or names CUDA on a machine without it.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        device = os.environ.get("TORCH_DEVICE", "")
        if not device:
            if torch.cuda.is_available():
                return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
                return torch.device("mps")
            return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device {device!r} is not a torch device: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asks for CUDA, but this machine has no CUDA GPU: use device='auto' or 'cpu'")
    return resolved


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and every GPU) with one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(threads: int | None = None) -> int:
    """Fix torch's intra-op thread count for the rest of the process and return it.

    The thread count is part of a run's numerics (reductions split differently), so a run records
    it and a resumed run sets the same one.

    Args:
        threads: threads to use; None keeps torch's current count (by default one per core).

    Returns:
        The thread count now in force.

    Raises:
        ValueError: threads is not a positive int.
    """
    if threads is not None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"threads={threads!r} must be a positive int (or None for torch's default, one per core)")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def cpu_name(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model: its name with family, model and cache size from ``/proc/cpuinfo`` on Linux, else what
    ``platform`` knows (``"x86_64"`` at least).

    Training on the CPU is bit for bit repeatable on one kind of CPU, but another model can take other
    kernels (instruction set, cache-dependent blocking) and so round differently (docs/training.md, "Determinism and resume").
    A virtual machine often names its CPU generically, so the family and model numbers are kept too.
    """
    import platform

    fields = _first_cpuinfo_entry(Path(cpuinfo))
    name = fields.get("model name") or platform.processor() or platform.machine()
    details = [f"{label} {fields[key]}" for key, label in (("cpu family", "family"), ("model", "model"),
                                                           ("cache size", "cache")) if fields.get(key)]
    return f"{name} ({', '.join(details)})" if details else name


def _first_cpuinfo_entry(cpuinfo: Path) -> dict[str, str]:
    """``key -> value`` of the first processor in a ``/proc/cpuinfo`` file ({} where there is none)."""
    if not cpuinfo.is_file():
        return {}
    fields: dict[str, str] = {}
    for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def environment(device: str | torch.device = "auto") -> dict[str, object]:
    """What a result depends on besides its config: library versions, thread count, device, CPU.

    Returns:
        ``{"python", "torch", "numpy", "numba", "threads", "device", "device_name", "cpu_count", "cpu",
        "cpu_capability"}``, JSON-ready; recorded in metrics.json and every run's result.json. ``cpu`` is
        the CPU model and ``cpu_capability`` the vector instruction set torch's CPU kernels use (e.g.
        ``"AVX512"``): CPU results are repeatable digit for digit only where both are the same.
    """
    import platform

    resolved = resolve_device(device)
    try:
        import numba

        numba_version = numba.__version__
    except ImportError:  # pragma: no cover - numba is a dependency
        numba_version = None
    name = torch.cuda.get_device_name(resolved) if resolved.type == "cuda" else platform.processor() or platform.machine()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "numba": numba_version,
        "threads": torch.get_num_threads(),
        "device": str(resolved),
        "device_name": name,
        "cpu_count": os.cpu_count(),
        "cpu": cpu_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def autocast_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """The mixed-precision dtype for ``device``, or None when autocast should stay off.

    bfloat16 on GPUs that support it (no loss scaling needed), float16 on older GPUs,
    and None on CPU/MPS, where autocast brings no speed for these models.
    """
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@dataclass(frozen=True)
class DistributedContext:
    """What this process is in a (possibly single-process) data-parallel run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(backend: str | None = None) -> DistributedContext:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Args:
        backend: ``"nccl"`` or ``"gloo"``; None picks nccl when CUDA is available, else gloo.

    Returns:
        The rank, world size and local rank; a single-process context when not launched
        by torchrun (no ``WORLD_SIZE`` in the environment).
    """
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size <= 1:
        return DistributedContext()
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend=backend)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    return DistributedContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank)
