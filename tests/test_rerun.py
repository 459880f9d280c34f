"""hhlib.rerun: two metrics.json files compared digit for digit, wall-clock fields and run folders aside."""

import json
import math

from hhlib import rerun

STUDY = {
    "dataset": "fashion_mnist",
    "runs": [{"bits": 16, "map": 0.8129580028103804, "map_per_seed": [0.81, 0.82], "train_seconds": 474.5,
              "images_per_second": 590.5, "run_dir": "checkpoints/wml_16-6b9a79f4", "run_dirs": ["a", "b"]}],
    "environment": {"torch": "2.14.1", "threads": 2},
}


def rerun_of(study, **changes):
    copy = json.loads(json.dumps(study))
    copy["runs"][0].update(changes)
    return copy


def test_times_and_run_folders_may_differ():
    again = rerun_of(STUDY, train_seconds=435.0, images_per_second=643.6, run_dir="x", run_dirs=["y", "z"])
    assert rerun.differences(STUDY, again) == []


def test_a_changed_digit_is_reported_with_its_path():
    next_float = math.nextafter(0.8129580028103804, 1.0)  # the smallest change a float can show
    again = rerun_of(STUDY, map=next_float)
    assert rerun.differences(STUDY, again) == [f"runs[0].map: 0.8129580028103804 -> {next_float!r}"]
    seeds = rerun_of(STUDY, map_per_seed=[0.81, 0.83])
    assert rerun.differences(STUDY, seeds) == ["runs[0].map_per_seed[1]: 0.82 -> 0.83"]


def test_an_undefined_value_in_both_runs_agrees():
    assert rerun.differences(rerun_of(STUDY, map=float("nan")), rerun_of(STUDY, map=float("nan"))) == []
    assert rerun.differences(STUDY, rerun_of(STUDY, map=float("nan"))) == ["runs[0].map: 0.8129580028103804 -> nan"]


def test_missing_fields_and_rows_are_reported():
    again = rerun_of(STUDY)
    del again["environment"]
    again["tsne"] = {}
    assert rerun.differences(STUDY, again) == ["environment: only in the first file", "tsne: only in the second file"]
    again = rerun_of(STUDY)
    again["runs"].append({"bits": 64})
    assert len(rerun.differences(STUDY, again)) == 1


def test_command_line_exit_codes(tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(STUDY))
    second.write_text(json.dumps(rerun_of(STUDY, train_seconds=1.0)))
    assert rerun.main([str(first), str(second)]) == 0
    assert "all 7 values agree" in capsys.readouterr().out
    second.write_text(json.dumps(rerun_of(STUDY, map=0.5)))
    assert rerun.main([str(first), str(second)]) == 1
    assert "runs[0].map: 0.8129580028103804 -> 0.5" in capsys.readouterr().out
    assert rerun.main([str(first), str(tmp_path / "missing.json")]) == 2
    assert "not found" in capsys.readouterr().err
