"""hhlib's log: the ``hhlib`` logger of the standard ``logging`` module, and its default console handler.

The library reports through ``logging.getLogger("hhlib.<module>")`` (training: one INFO line per epoch).
So that these lines show without any setup, in a terminal, a notebook or a papermill run alike,
:func:`install_default_handler` gives the ``hhlib`` logger one handler writing to the current
``sys.stderr``, unless the application configured logging itself (a handler on the root logger).
The level comes from the environment variable ``HHLIB_LOG_LEVEL`` (default ``INFO``; ``WARNING``
silences the epoch lines). Code that wants its own format just configures logging before calling hhlib.

``make reproduce`` shows these lines in the terminal as they come (papermill ``--log-output``) and then
removes them from the executed notebook with ``python -m hhlib.logs strip <notebook>``
(:func:`strip_log_lines`), so the rendered study keeps its tables and figures without hundreds of
epoch lines; every epoch is also in the run's ``metrics.jsonl``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["LEVEL_VARIABLE", "LOGGER_NAME", "epoch_message", "install_default_handler", "strip_log_lines"]

LOGGER_NAME = "hhlib"
LEVEL_VARIABLE = "HHLIB_LOG_LEVEL"
FORMAT = "%(asctime)s %(name)s %(message)s"
DATE_FORMAT = "%H:%M:%S"
LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d hhlib(?:\.\w+)* .*(?:\n|$)", flags=re.M)  # a line in FORMAT


class _CurrentStderrHandler(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is at the time of the record.

    Jupyter kernels and pytest replace ``sys.stderr``; a handler holding the stream it was created
    with would write to a stale one.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _level_from_environment() -> int:
    name = os.environ.get(LEVEL_VARIABLE, "INFO").strip().upper()
    level = logging.getLevelName(name)
    if not isinstance(level, int):
        raise ValueError(f"{LEVEL_VARIABLE}={name!r} is not a logging level: use DEBUG, INFO, WARNING or ERROR")
    return level


def install_default_handler() -> logging.Logger:
    """Make the ``hhlib`` logger print to stderr at ``HHLIB_LOG_LEVEL``, once; return it.

    Nothing changes when the ``hhlib`` logger already has a handler or the root logger has one
    (the application's logging configuration wins), or when its level was set explicitly.

    Raises:
        ValueError: ``HHLIB_LOG_LEVEL`` is not a level name.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if logger.handlers or logging.getLogger().handlers:
        return logger
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(_level_from_environment())
    logger.propagate = False
    return logger


def epoch_message(run_name: str, record: dict, epochs: int, seconds_left: float) -> str:
    """One training epoch as a log line: loss, mAP when evaluated, throughput and time left.

    Args:
        run_name: the run's name, e.g. ``"wml_64"``.
        record: the epoch's entry of the run's history (``epoch``, ``loss``, ``images_per_second``,
            and ``map`` on evaluated epochs).
        epochs: the run's number of epochs.
        seconds_left: estimated seconds until the run ends.

    Returns:
        e.g. ``"wml_64 epoch 3/15 loss 0.4121 mAP 0.7012 1830 img/s 2m05s left"``.
    """
    parts = [f"{run_name} epoch {record['epoch']}/{epochs}", f"loss {record['loss']:.4f}"]
    if "map" in record:
        parts.append(f"mAP {record['map']:.4f}")
    parts.append(f"{record['images_per_second']:.0f} img/s")
    minutes, seconds = divmod(max(round(seconds_left), 0), 60)
    parts.append(f"{minutes}m{seconds:02d}s left")
    return " ".join(parts)


def strip_log_lines(path: str | Path) -> int:
    """Remove the default handler's lines from the stderr outputs of an executed notebook, in place.

    Other stderr text (warnings, errors) stays; an output left empty is dropped.

    Args:
        path: an ``.ipynb`` file.

    Returns:
        The number of lines removed.
    """
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    removed = 0
    for cell in notebook.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                removed += len(LOG_LINE.findall(output["text"]))
                output["text"] = LOG_LINE.sub("", output["text"])
                if not output["text"]:
                    continue
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept
    nbformat.write(notebook, path)
    return removed


def main(argv: Sequence[str]) -> int:
    """``python -m hhlib.logs strip NOTEBOOK.ipynb ...``: :func:`strip_log_lines` on each file."""
    if len(argv) < 2 or argv[0] != "strip":
        print("usage: python -m hhlib.logs strip NOTEBOOK.ipynb [...]", file=sys.stderr)
        return 2
    for path in argv[1:]:
        print(f"{path}: {strip_log_lines(path)} log lines removed (they are in each run's metrics.jsonl)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
