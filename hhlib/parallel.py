"""Several independent training runs at once: one process per core instead of one run on all cores.

The study trains many small models (one per code length, one per ablation). On a CPU a small32
step at batch 64 is made of thousands of small kernels that gain little from a second thread
(docs/performance.md: on the loaded 2-core machine two threads were slower than one), so two
runs side by side with one thread each finish the same work sooner than the same runs one after
the other with two threads each. Each run is an ordinary :func:`hhlib.train.fit` in a fresh
(spawned) process with a fixed thread count, so its result does not depend on which runs share
the machine with it: the same configs and ``threads_per_run`` give the same codes.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor

import torch

from hhlib.train import ConfigError, RunResult, TrainConfig, fit

__all__ = ["fit_many", "fit_runs", "threads_problem"]


def _start_worker(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def _fit_config(values: dict) -> dict:
    result = fit(TrainConfig.from_dict(values))
    return result.to_dict()


def fit_many(configs: list[TrainConfig], processes: int | None = None, threads_per_run: int = 1) -> list[RunResult]:
    """Train every config, ``processes`` runs at a time, each in its own process.

    Args:
        configs: validated training configs; each must write to its own run folder.
        processes: runs at once; None = the CPU cores available / ``threads_per_run`` (at least 1).
        threads_per_run: torch intra-op threads of each run (1 = one core per run).

    Returns:
        The :class:`RunResult` of each config, in the order given.

    Raises:
        ConfigError: a config is not a TrainConfig, two configs share a run folder, or
            processes / threads_per_run < 1.
    """
    for config in configs:
        if not isinstance(config, TrainConfig):
            raise ConfigError(f"fit_many() takes TrainConfigs, got {type(config).__name__}: use TrainConfig.from_dict")
    folders = [str(config.run_dir) for config in configs]
    shared = sorted({folder for folder in folders if folders.count(folder) > 1})
    if shared:
        raise ConfigError(f"configs share run folders {shared}: give each a distinct run_name (or out_dir)")
    if threads_per_run < 1 or (processes is not None and processes < 1):
        raise ConfigError(f"processes ({processes}) and threads_per_run ({threads_per_run}) must be >= 1")
    if processes is None:
        processes = max(1, len(os.sched_getaffinity(0)) // threads_per_run)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited thread pools or RNG
    with ProcessPoolExecutor(max_workers=min(processes, max(len(configs), 1)), mp_context=context,
                             initializer=_start_worker, initargs=(threads_per_run,)) as pool:
        results = list(pool.map(_fit_config, [config.to_dict() for config in configs]))
    return [RunResult(**result) for result in results]


def fit_runs(configs: list[TrainConfig], parallel_runs: int = 1) -> list[RunResult]:
    """Train every config: one after another in this process, or ``parallel_runs`` at a time.

    The notebooks' single entry point for training their runs. With ``parallel_runs`` > 1 each run
    gets its own process (:func:`fit_many`) with the config's ``num_threads`` threads, which must
    therefore be set: the thread count is part of a run's numerics, so it may not depend on how
    many runs share the machine.

    Args:
        configs: validated training configs, each with its own run folder.
        parallel_runs: runs trained at once (1 = one after another in this process).

    Returns:
        The :class:`RunResult` of each config, in the order given.

    Raises:
        ConfigError: ``parallel_runs`` < 1, or > 1 with a config whose ``num_threads`` is None
            (before any run starts).
    """
    if isinstance(parallel_runs, bool) or not isinstance(parallel_runs, int) or parallel_runs < 1:
        raise ConfigError(f"parallel_runs={parallel_runs!r} must be an int >= 1 (1: one run after another)")
    if parallel_runs == 1:
        return [fit(config) for config in configs]
    problem = threads_problem(parallel_runs, [config.num_threads for config in configs])
    if problem:
        raise ConfigError(problem)
    return fit_many(configs, processes=parallel_runs, threads_per_run=configs[0].num_threads)


def threads_problem(parallel_runs: int, thread_counts: Iterable[int | None]) -> str | None:
    """Why runs with these ``num_threads`` cannot train ``parallel_runs`` at a time (None: they can).

    Used by :func:`fit_runs` and by ``hhlib.params`` (which checks the parameter files before any work).
    """
    threads = set(thread_counts)
    if parallel_runs > 1 and (None in threads or len(threads) > 1):
        return (f"parallel_runs={parallel_runs} needs one num_threads for every run, got {sorted(threads, key=str)}: "
                "set num_threads (e.g. 1 with parallel_runs = the CPU cores), or parallel_runs: 1")
    return None
