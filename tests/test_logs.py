"""Tests of hhlib.logs and the training log: one INFO line per epoch, to stderr without any setup."""

import logging
import re

import pytest
import torch

from hhlib import artifacts, logs
from hhlib.train import TrainConfig, fit

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@pytest.fixture
def bare_logging(monkeypatch):
    """No handler on the hhlib logger, as in a fresh interpreter; restored afterwards.

    The root logger's handlers (pytest's capture handler) are removed inside each test: pytest adds
    them again at the start of the test's call phase.
    """
    logger = logging.getLogger(logs.LOGGER_NAME)
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers, logger.level = [], logging.NOTSET
    yield lambda handlers: monkeypatch.setattr(logging.getLogger(), "handlers", handlers)
    logger.handlers, logger.level, logger.propagate = saved


def test_epoch_message_with_and_without_map():
    record = {"epoch": 3, "loss": 0.41214, "images_per_second": 1830.4}
    assert logs.epoch_message("wml_64", record, 15, 125.2) == "wml_64 epoch 3/15 loss 0.4121 1830 img/s 2m05s left"
    record["map"] = 0.70119
    assert logs.epoch_message("wml_64", record, 15, 0) == "wml_64 epoch 3/15 loss 0.4121 mAP 0.7012 1830 img/s 0m00s left"


def test_default_handler_writes_to_the_current_stderr(bare_logging, monkeypatch, capsys):
    bare_logging([])
    monkeypatch.setenv(logs.LEVEL_VARIABLE, "info")
    logger = logs.install_default_handler()
    assert logs.install_default_handler() is logger and len(logger.handlers) == 1  # idempotent
    logging.getLogger("hhlib.train").info("epoch line")
    logging.getLogger("hhlib.train").debug("hidden")
    err = capsys.readouterr().err
    assert "hhlib.train epoch line" in err and "hidden" not in err


def test_application_logging_configuration_wins(bare_logging, monkeypatch):
    bare_logging([logging.NullHandler()])
    assert logs.install_default_handler().handlers == []


def test_bad_level_is_a_clear_error(bare_logging, monkeypatch):
    bare_logging([])
    monkeypatch.setenv(logs.LEVEL_VARIABLE, "LOUD")
    with pytest.raises(ValueError, match="HHLIB_LOG_LEVEL='LOUD' is not a logging level"):
        logs.install_default_handler()


def test_fit_logs_one_line_per_epoch(tmp_path, caplog):
    torch.set_num_threads(1)
    config = TrainConfig.from_dict(dict(
        dataset="fashion_mnist", data_dir=FASHION_MNIST, preset="tiny32", bits=16, img_size=32,
        query_per_class=2, train_per_class=4, database_limit=50, batch_size=8, epochs=2, eval_every=2,
        optimizer="adamw", lr=1e-3, out_dir=str(tmp_path), progress=False, device="cpu",
    ))
    with caplog.at_level(logging.INFO, logger="hhlib"):
        result = fit(config)
    lines = [r.getMessage() for r in caplog.records if r.name == "hhlib.train"]
    history = artifacts.read_jsonl(result.metrics_path)
    assert len(lines) == 2
    assert re.fullmatch(rf"{re.escape(config.resolved_run_name)} epoch 1/2 loss {history[0]['loss']:.4f} \d+ img/s \d+m\d\ds left", lines[0])
    assert f"epoch 2/2 loss {history[1]['loss']:.4f} mAP {result.final_map:.4f} " in lines[1]
    assert lines[1].endswith("0m00s left")


def test_strip_log_lines_keeps_everything_but_the_log(tmp_path, capsys):
    import nbformat

    log = "00:09:26 hhlib.train wml_16 epoch 1/2 loss 1.3863 544 img/s 0m01s left\n"
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("fit()", outputs=[
            nbformat.v4.new_output("stream", name="stderr", text=log + "UserWarning: keep me\n" + log),
            nbformat.v4.new_output("stream", name="stdout", text=log),
            nbformat.v4.new_output("stream", name="stderr", text=log),
        ]),
        nbformat.v4.new_markdown_cell("# title"),
    ])
    path = tmp_path / "run.ipynb"
    nbformat.write(notebook, path)
    assert logs.main(["strip", str(path)]) == 0
    assert "3 log lines removed" in capsys.readouterr().out
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert [(o.name, o.text) for o in outputs] == [("stderr", "UserWarning: keep me\n"), ("stdout", log)]
    assert logs.strip_log_lines(path) == 0
    assert logs.main(["clean", str(path)]) == 2
