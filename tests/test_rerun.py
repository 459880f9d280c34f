"""hhlib.rerun: two metrics.json files compared digit for digit, wall-clock fields and run folders aside."""

import json
import math

from hhlib import rerun

MACHINE = {"torch": "2.14.1", "threads": 2, "cpu": "Intel(R) Xeon(R) Processor (family 6, model 207, cache 307200 KB)",
           "cpu_capability": "AVX512"}
STUDY = {
    "dataset": "fashion_mnist",
    "runs": [{"bits": 16, "map": 0.8129580028103804, "map_per_seed": [0.81, 0.82], "train_seconds": 474.5,
              "images_per_second": 590.5, "run_dir": "checkpoints/wml_16-6b9a79f4", "run_dirs": ["a", "b"]}],
    "environment": MACHINE,
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
    again["tsne"] = {}
    assert rerun.differences(STUDY, again) == ["tsne: only in the second file"]
    again = rerun_of(STUDY)
    again["runs"].append({"bits": 64})
    assert len(rerun.differences(STUDY, again)) == 1


def test_the_environment_is_not_a_result_but_says_whether_digits_must_agree():
    other_cpu = {**MACHINE, "cpu": "Intel(R) Xeon(R) Processor (family 6, model 143, cache 107520 KB)"}
    again = {**rerun_of(STUDY), "environment": other_cpu}
    assert rerun.differences(STUDY, again) == []
    assert "same machine" in rerun.environment_note(STUDY, rerun_of(STUDY))
    note = rerun.environment_note(STUDY, again)
    assert "different machines" in note and "model 143" in note and "judge the rerun by the spread" in note
    older = {**rerun_of(STUDY), "environment": {"torch": "2.14.1", "threads": 2}}
    assert "first file does not record the CPU model" in rerun.environment_note(older, STUDY)


def _rows(*maps_and_stds):
    return {"ablations": [{"name": f"config {i}", "bits": 16, "map": m, "map_std": s}
                          for i, (m, s) in enumerate(maps_and_stds)]}


def test_spread_check_counts_rows_whose_means_agree_within_the_summed_stds():
    old = _rows((0.790, 0.004), (0.700, 0.010), (0.600, None))
    new = _rows((0.797, 0.004), (0.730, 0.010), (0.900, None))  # +0.007 within 0.008; +0.030 beyond 0.020; one seed
    agree, beyond = rerun.spread_check(old, new)
    assert agree == 1
    assert beyond == ["ablations: config 1, 16 bits: 0.700 ± 0.010 -> 0.730 ± 0.010 (+0.030, spread 0.020)"]
    new["ablations"].append({"name": "only in the rerun", "bits": 16, "map": 0.5, "map_std": 0.01})
    assert rerun.spread_check(old, new) == (agree, beyond), "a row without a partner is not judged"


def test_command_line_exit_codes(tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(STUDY))
    second.write_text(json.dumps(rerun_of(STUDY, train_seconds=1.0)))
    assert rerun.main([str(first), str(second)]) == 0
    assert "all 5 values agree" in capsys.readouterr().out, "the environment is not counted: it is not a result"
    second.write_text(json.dumps(rerun_of(STUDY, map=0.5)))
    assert rerun.main([str(first), str(second)]) == 1
    out = capsys.readouterr().out
    assert "runs[0].map: 0.8129580028103804 -> 0.5" in out and "same machine" in out
    assert "spread: 0 of 0 result rows" in out, "the row has no spread (no map_std): not judged"
    assert rerun.main([str(first), str(tmp_path / "missing.json")]) == 2
    assert "not found" in capsys.readouterr().err


def test_a_changed_data_fingerprint_is_named_as_the_cause(tmp_path, capsys):
    corpus = {"files": ["deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"], "stanzas": 63440}
    old = {**STUDY, "text_hashing": {"protocol": {"fingerprint": corpus}, "runs": [{"map": 0.260}]}}
    updated = {**corpus, "stanzas": 66555, "files": corpus["files"] + ["x_dists_bookworm-updates_main_Packages.lz4"]}
    new = {**STUDY, "text_hashing": {"protocol": {"fingerprint": updated}, "runs": [{"map": 0.259}]}}
    assert rerun.data_notes(old, old) == [] and rerun.data_notes(old, STUDY) == [], "absent in one file: no note"
    (note,) = rerun.data_notes(old, new)
    assert note.startswith("data: the text study (notebook 06) read other apt package lists")
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(old))
    second.write_text(json.dumps(new))
    assert rerun.main([str(first), str(second)]) == 1
    out = capsys.readouterr().out
    assert "text_hashing.protocol.fingerprint.stanzas: 63440 -> 66555" in out and note in out
    second.write_text(json.dumps({**new, "text_hashing": {**old["text_hashing"], "runs": [{"map": 0.259}]}}))
    assert rerun.main([str(first), str(second)]) == 1
    assert "data: every recorded data fingerprint agrees." in capsys.readouterr().out
