"""One writer per outputs folder: an advisory ``flock`` on ``outputs/<set>/.lock``.

Two ``make reproduce`` runs on the same parameter set would both write ``.running-*`` notebooks,
checkpoints and ``metrics.json`` (HybridHash trains one model per code length, Sec. 4.1, so a
study writes many files over hours). The pipeline therefore runs under :func:`hold`: the second
run stops at once and says who holds the folder. The lock is the kernel's ``flock``, which dies
with its process, so a crashed or killed run never leaves a lock behind; the file's text (pid,
host, start time, command) is only there to name the holder.

Command line: ``python hhlib/lock.py <folder> <command> [args...]`` (or ``python -m hhlib.lock``)
runs the command while holding the folder's lock and exits with its status (3 when the lock is
held). The Makefile runs it as a script: it imports nothing from hhlib, so it starts without torch.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["LOCK_FILE", "LockedError", "hold", "holder", "main"]

LOCK_FILE = ".lock"
LOCKED_EXIT_STATUS = 3  # the command line's exit status when another process holds the folder


class LockedError(RuntimeError):
    """The folder is locked by another live process; ``holder`` is what that process wrote."""

    def __init__(self, folder: Path, holder_info: dict[str, Any]):
        self.folder = folder
        self.holder = holder_info
        who = (f"pid {holder_info.get('pid')} on {holder_info.get('host')}, started {holder_info.get('started')}, "
               f"running {holder_info.get('command')!r}") if holder_info else "a process that has not said who it is"
        super().__init__(
            f"{folder} is in use by {who}: wait for it to finish, or stop it (kill {holder_info.get('pid', '<pid>')}) "
            "and run again (an interrupted run resumes from its checkpoints)"
        )


def holder(folder: str | Path) -> dict[str, Any]:
    """What the current (or last) holder of ``folder``'s lock wrote: pid, host, started, command ({} if none)."""
    path = Path(folder) / LOCK_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


@contextmanager
def hold(folder: str | Path, command: Sequence[str] = ()) -> Iterator[Path]:
    """Hold the exclusive lock of ``folder`` (created if missing) for the ``with`` block.

    Args:
        folder: the outputs folder, e.g. ``outputs/fashion_mnist``.
        command: what this process runs (written into the lock file for the message others see).

    Yields:
        The lock file's path.

    Raises:
        LockedError: another live process holds the lock (names its pid, host, start time, command).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    handle = open(path, "a+", encoding="utf-8")  # append mode: opening never erases the holder's text
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(folder, holder(folder)) from None
        handle.truncate(0)
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": " ".join(command)}))
        handle.flush()
        yield path
    finally:
        handle.close()  # closing the descriptor releases the flock


def main(argv: Sequence[str]) -> int:
    """``python -m hhlib.lock <folder> <command> [args...]``: run a command holding the folder's lock.

    Args:
        argv: the folder, then the command and its arguments.

    Returns:
        The command's exit status; 3 when the folder is locked; 2 on a usage error.
    """
    if len(argv) < 2:
        print("usage: python -m hhlib.lock <folder> <command> [args...]", file=sys.stderr)
        return 2
    folder, command = argv[0], list(argv[1:])
    try:
        with hold(folder, command):
            return subprocess.call(command)
    except LockedError as error:
        print(f"hhlib.lock: {error}", file=sys.stderr)
        return LOCKED_EXIT_STATUS


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
