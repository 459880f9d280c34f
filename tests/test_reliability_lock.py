"""One writer per outputs folder (issue 15, item 8): a second run stops and names the holder; no stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from hhlib import lock


def _run_locked(folder, *command):
    # lock.py as a script (as the Makefile runs it): no torch import, so each call takes milliseconds
    return subprocess.run([sys.executable, lock.__file__, str(folder), *command],
                          capture_output=True, text=True, timeout=60)


def test_second_run_is_refused_and_told_who_holds_the_folder(tmp_path):
    with lock.hold(tmp_path / "set", ["make", "reproduce"]):
        assert lock.holder(tmp_path / "set")["pid"] == os.getpid()
        with pytest.raises(lock.LockedError, match=rf"set is in use by pid {os.getpid()} on .*running 'make reproduce'"):
            with lock.hold(tmp_path / "set"):
                pass
        refused = _run_locked(tmp_path / "set", "true")
        assert refused.returncode == lock.LOCKED_EXIT_STATUS
        assert f"in use by pid {os.getpid()}" in refused.stderr and "kill" in refused.stderr


def test_lock_of_a_dead_process_does_not_block(tmp_path):
    folder = tmp_path / "set"
    holder = subprocess.Popen([sys.executable, lock.__file__, str(folder), "sleep", "30"], start_new_session=True)
    try:
        for _ in range(200):  # wait until the holder wrote its pid
            if lock.holder(folder).get("pid") == holder.pid:
                break
            subprocess.run(["sleep", "0.05"])
        with pytest.raises(lock.LockedError):
            with lock.hold(folder):
                pass
    finally:
        os.killpg(holder.pid, signal.SIGKILL)  # holder and its sleep: no cleanup code runs, the text stays
        holder.wait()
    assert lock.holder(folder)["pid"] == holder.pid
    with lock.hold(folder, ["again"]):
        assert lock.holder(folder)["command"] == "again"


def test_command_runs_under_the_lock_and_its_status_is_returned(tmp_path):
    assert _run_locked(tmp_path / "set", sys.executable, "-c", "import sys; sys.exit(7)").returncode == 7
    assert _run_locked(tmp_path / "set", "true").returncode == 0
    assert lock.main([]) == 2
