"""Unusable checkpoints (issue 15, item 6): one message naming the file and the fix, never torch's internals."""

from __future__ import annotations

import pickle

import pytest
import torch

from hhlib import artifacts

GOOD = {"model": {"w": torch.ones(2)}, "config": {"bits": 16}, "epoch": 1}


def _truncated(path):
    artifacts.save_checkpoint(path, GOOD)
    path.write_bytes(path.read_bytes()[:100])


def _empty(path):
    path.write_bytes(b"")


def _plain_pickle(path):
    path.write_bytes(pickle.dumps(GOOD))


def _keyless(path):
    artifacts.save_checkpoint(path, {"weights": torch.ones(2)})


def _not_a_dict(path):
    torch.save([torch.ones(2)], path)


def _code_object(path):
    torch.save({"model": {}, "config": {}, "epoch": 1, "hook": pickle.Pickler}, path)


@pytest.mark.parametrize("write", [_truncated, _empty, _plain_pickle, _keyless, _not_a_dict, _code_object])
def test_bad_checkpoint_gives_one_message(tmp_path, write):
    path = tmp_path / "checkpoint.pt"
    write(path)
    with pytest.raises(artifacts.CheckpointError, match=r"checkpoint .*checkpoint.pt is unreadable or not an hhlib "
                                                        r"checkpoint: delete it to start over"):
        artifacts.load_checkpoint(path)


def test_good_checkpoint_still_loads(tmp_path):
    path = artifacts.save_checkpoint(tmp_path / "checkpoint.pt", GOOD)
    assert artifacts.load_checkpoint(path)["epoch"] == 1
