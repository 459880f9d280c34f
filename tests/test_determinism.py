"""Identical reruns: evaluation leaves training alone, numba leaves torch's threads alone, and a run
stopped after one epoch and resumed in a new process equals the uninterrupted run bit for bit."""

import json
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from hhlib import artifacts
from hhlib.evaluate import mean_average_precision
from hhlib.runtime import cpu_name, environment, set_threads
from hhlib.train import TrainConfig, fit

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
pytestmark = pytest.mark.skipif(not Path(FASHION_MNIST).is_dir(), reason="Fashion-MNIST files absent (make setup)")


def small(tmp_path, **overrides):
    values = dict(
        dataset="fashion_mnist", data_dir=FASHION_MNIST, preset="tiny32", bits=16, img_size=32,
        query_per_class=2, train_per_class=6, database_limit=60, batch_size=10, epochs=2, eval_every=1,
        optimizer="adamw", lr=1e-3, transform_params={"pad": 2, "flip": True}, out_dir=str(tmp_path),
        progress=False, device="cpu", eval_batch_size=32, num_threads=1,
    )
    values.update(overrides)
    return TrainConfig.from_dict(values)


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_evaluation_leaves_torch_thread_count_alone(restore_threads):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    codes = np.sign(rng.standard_normal((600, 64)))
    labels = np.eye(10)[rng.integers(0, 10, 600)]
    mean_average_precision(codes[:100], codes[100:], labels[:100], labels[100:])  # a parallel numba kernel
    assert torch.get_num_threads() == 1


def test_set_threads_and_environment(restore_threads):
    assert set_threads(1) == 1 == torch.get_num_threads()
    assert set_threads(None) == 1
    with pytest.raises(ValueError, match="positive int"):
        set_threads(0)
    env = environment("cpu")
    assert env["threads"] == 1 and env["device"] == "cpu" and env["torch"] == torch.__version__
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["cpu"], "the CPU model: results repeat digit for digit only on one kind of CPU"


def test_cpu_name_keeps_family_and_model_where_a_virtual_machine_names_its_cpu_generically(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 207\n"
                       "model name\t: Intel(R) Xeon(R) Processor\ncache size\t: 307200 KB\n\n"
                       "processor\t: 1\nmodel name\t: another\n")
    assert cpu_name(cpuinfo) == "Intel(R) Xeon(R) Processor (family 6, model 207, cache 307200 KB)"
    assert cpu_name(tmp_path / "none") in (platform.processor(), platform.machine())


def test_evaluating_does_not_change_training(tmp_path, restore_threads):
    with_evals = fit(small(tmp_path / "a", eval_every=1))
    without = fit(small(tmp_path / "b", eval_every=0))
    assert [r["loss"] for r in with_evals.history] == [r["loss"] for r in without.history]
    a, b = np.load(with_evals.codes_path), np.load(without.codes_path)
    assert np.array_equal(a["database_codes"], b["database_codes"])
    assert with_evals.environment["threads"] == 1


RUNNER = textwrap.dedent("""
    import json, sys
    from hhlib.train import TrainConfig, fit
    config = TrainConfig.from_dict(json.loads(sys.argv[1]))
    fit(config, max_epochs=int(sys.argv[2]) if len(sys.argv) > 2 else None)
""")


def _run_in_new_process(config: TrainConfig, *max_epochs: int) -> None:
    subprocess.run([sys.executable, "-c", RUNNER, json.dumps(config.to_dict()), *map(str, max_epochs)],
                   check=True, capture_output=True, timeout=300)


def _final_state(config: TrainConfig) -> tuple[dict, dict]:
    checkpoint = artifacts.load_checkpoint(config.run_dir / artifacts.CHECKPOINT_FILE)
    codes = dict(np.load(config.run_dir / artifacts.CODES_FILE))
    return checkpoint["model"], codes


def test_resumed_in_a_new_process_equals_the_uninterrupted_run(tmp_path):
    whole = small(tmp_path / "whole")
    parts = small(tmp_path / "parts")
    _run_in_new_process(whole)
    _run_in_new_process(parts, 1)  # stops after epoch 1 (its evaluation ran in this process)
    assert artifacts.load_checkpoint(parts.run_dir / artifacts.CHECKPOINT_FILE)["epoch"] == 1
    _run_in_new_process(parts)  # a fresh process resumes epoch 2
    (weights_a, codes_a), (weights_b, codes_b) = _final_state(whole), _final_state(parts)
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert all(np.array_equal(codes_a[k], codes_b[k]) for k in codes_a)
    history = [json.loads(line) for line in (parts.run_dir / artifacts.METRICS_LOG_FILE).read_text().splitlines()]
    whole_history = [json.loads(line) for line in (whole.run_dir / artifacts.METRICS_LOG_FILE).read_text().splitlines()]
    assert [r["loss"] for r in history] == [r["loss"] for r in whole_history]
