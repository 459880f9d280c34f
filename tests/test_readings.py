"""Tests of hhlib.readings: sentences generated from metrics.json, with the spread rule applied."""

from hhlib import readings


def agg(value, std, n=3, **extra):
    return {"map": value, "map_std": std, "n_seeds": n, **extra}


def test_difference_applies_the_spread_rule():
    assert readings.difference(agg(0.80, 0.01), agg(0.77, 0.01)) == {"delta": 0.80 - 0.77, "spread": 0.02, "beyond": True}
    assert readings.difference(agg(0.80, 0.02), agg(0.79, 0.02))["beyond"] is False
    assert readings.difference({"map": 0.8, "map_std": None}, agg(0.7, 0.01))["beyond"] is None


def test_compare_states_agreement_contradiction_and_no_support():
    claim = "the interaction module helps"
    agree = readings.compare("interaction", "hybrid", agg(0.781, 0.004), "no_interaction", agg(0.760, 0.006), claim)
    assert agree == ("interaction: hybrid 0.781 ± 0.004 vs no_interaction 0.760 ± 0.006 (3 seeds): +0.021, "
                     "beyond the spread (0.010); this agrees with the paper's claim that the interaction module helps.")
    contra = readings.compare("interaction", "hybrid", agg(0.760, 0.004), "no_interaction", agg(0.781, 0.006), claim)
    assert "contradicts the paper's claim" in contra and "no_interaction is ahead" in contra
    within = readings.compare("interaction", "hybrid", agg(0.781, 0.004), "no_interaction", agg(0.772, 0.006), claim)
    assert "+0.009, within the spread (0.010); the data does not support" in within
    single = readings.compare("x", "a", {"map": 0.5}, "b", {"map": 0.4}, claim)
    assert "0.500 (1 seed)" in single and "one seed, so no spread to judge by." in single


def test_training_readings_report_seeds_convergence_and_code_length():
    metrics = {"runs": [
        {"method": "hybridhash", "bits": 16, "seeds": [0, 1, 2], **agg(0.70, 0.01),
         "map_last_evals_per_seed": [[[24, 0.69], [48, 0.70]], [[24, 0.69], [48, 0.692]], [[24, 0.70], [48, 0.701]]]},
        {"method": "hybridhash", "bits": 64, "seeds": [0, 1, 2], **agg(0.78, 0.01),
         "map_last_evals_per_seed": [[[24, 0.70], [48, 0.78]]] * 3},
    ]}
    lines = readings.training_readings(metrics)
    assert lines[0].startswith("hybridhash 16 bits: mAP 0.700 ± 0.010 over seeds [0, 1, 2]")
    assert "+0.010, +0.002, +0.001; still improving" in lines[0]
    assert "+0.080, +0.080, +0.080; still improving" in lines[1]
    assert "this agrees with the paper's claim that longer codes retrieve better" in lines[2]
    converged = {"runs": [{"method": "hybridhash", "bits": 16, **agg(0.7, 0.01),
                           "map_last_evals_per_seed": [[[24, 0.7], [48, 0.701]]]}]}
    assert "converged by hhlib's rule" in readings.training_readings(converged)[0]


def test_ablation_readings_judge_each_change_and_rank_methods_by_family():
    base = {"study": "baseline", "name": "hybridhash (paper)", "loss": "wml", "bits": 16, "family": "symmetric"}
    metrics = {"ablations": [
        {**base, **agg(0.70, 0.01)},
        {"study": "backbone", "name": "backbone=cnn", "loss": "wml", "bits": 16, **agg(0.75, 0.01)},
        {"study": "loss", "name": "loss=dpsh", "loss": "dpsh", "bits": 16, "family": "symmetric", **agg(0.60, 0.02)},
        {"study": "loss", "name": "loss=csq", "loss": "csq", "bits": 16, "family": "central_similarity", **agg(0.72, 0.02)},
    ]}
    lines = readings.ablation_readings(metrics)
    assert lines[0].startswith("Rule: a difference counts only when")
    assert "contradicts the paper's claim that the hybrid network beats pure CNN" in lines[1]
    assert "backbone=cnn is ahead" in lines[1]
    assert lines[2] == "method ranking, central_similarity family, 16 bits: csq 0.720 ± 0.020."
    assert lines[3] == "method ranking, symmetric family, 16 bits: wml 0.700 ± 0.010 > dpsh 0.600 ± 0.020."
    assert lines[4] == "convergence, 16 bits: no run was evaluated twice, so there is no evidence either way."


def test_ablation_readings_name_the_configurations_still_improving():
    def row(name, study, gains):
        evidence = [[[8, 0.6], [16, 0.6 + gain]] for gain in gains]
        return {"study": study, "name": name, "loss": "wml", "bits": 16, **agg(0.6, 0.01), "map_last_evals_per_seed": evidence}
    metrics = {"ablations": [row("hybridhash (paper)", "baseline", [0.001, 0.002, -0.003]),
                             row("backbone=nest", "backbone", [0.001, 0.020, 0.004]),
                             row("variant=local_only", "variant", [0.008, 0.0, 0.0])]}
    assert readings.ablation_readings(metrics)[-1] == (
        "convergence, 16 bits: 1 of 3 configurations gained under 0.005 mAP (epochs 8 -> 16) for every seed; still "
        "improving (largest gain over seeds): backbone=nest (+0.020), variant=local_only (+0.008): their figures are lower bounds.")


def test_evaluation_readings_compare_with_the_paper_only_where_it_gives_a_figure():
    metrics = {"runs": [{"method": "hybridhash", "bits": 64, **agg(0.80, 0.01), "map_tie_aware": 0.8004,
                         "precision_within_radius": 0.7, "precision_within_radius_std": 0.02,
                         "mean_returned_within_radius": 812.4}],
               "paper_reference": {"map": {"64": 0.87}, "source": "Table 2"}}
    (line,) = readings.evaluation_readings(metrics)
    assert "64 bits: mAP 0.800 ± 0.010 (tie-aware 0.800: ties do not change the figure)" in line
    assert "the paper reports 0.870 (Table 2): ours is 0.070 below it" in line
    assert "precision within Hamming radius 2: 0.700 ± 0.020, 812 items returned" in line
    metrics["paper_reference"] = {}
    assert readings.evaluation_readings(metrics)[-1].startswith("The paper gives no figure")


def test_split_and_tsne_readings():
    metrics = {"split": {"sizes": {"query": 20, "train": 40}, "per_class": {"query": [2] * 10, "train": [3, 5]}, "topk": None},
               "tsne": {"separation": {"16": {"continuous": 0.41, "codes": 0.39}}}}
    assert readings.split_readings(metrics) == [
        "Split: query 20 images, train 40 images; mAP is computed over all database items.",
        "query: 10 classes, balanced, 2 per class.", "train: 2 classes, unbalanced (3 to 5 images per class)."]
    (tsne,) = readings.tsne_readings(metrics)
    assert tsne.startswith("16 bits: class silhouette in the t-SNE map 0.41") and "loses little" in tsne
    assert readings.tsne_readings({}) == ["No t-SNE separation is recorded yet: run notebook 04."]
    overlapping = {"tsne": {"separation": {"16": {"continuous": -0.3, "codes": 0.02}}}}
    assert readings.tsne_readings(overlapping)[0].endswith("the classes overlap in both maps.")


def test_collapsed_runs_are_marked_wherever_they_appear():
    assert readings.format_value({"map": 0.1, "map_std": 0.0, "collapsed": True}) == "0.100 ± 0.000 (collapsed codes: not a result)"


def test_a_collapsed_configuration_gives_no_verdict_on_a_claim():
    # notebook 05's global_only: far behind, but only because two of its seeds ended with constant codes
    base, collapsed = agg(0.662, 0.030), agg(0.158, 0.099, collapsed=True)
    text = readings.compare("variant, 16 bits", "hybridhash (paper)", base, "variant=global_only", collapsed,
                            readings.PAPER_CLAIMS["variant"])
    assert text.endswith("+0.504, beyond the spread (0.129); no verdict on the paper's claim that the interaction module "
                         "(both branches together) helps: the codes of variant=global_only collapsed (in at least one "
                         "seed), so the difference is not a result.")
    assert "agrees" not in text
    assert readings._standing(collapsed, base) == "unjudged (collapsed codes)"
    assert readings._standing(agg(0.70, 0.01), base) == "level"


def _ablations(epochs, base, cnn, no_interaction, dpsh):
    rows = [("baseline", "hybridhash (paper)", "wml", base), ("backbone", "backbone=cnn_full", "wml", cnn),
            ("variant", "variant=no_interaction", "wml", no_interaction), ("loss", "loss=dpsh", "dpsh", dpsh)]
    return {"ablations": [{"study": study, "name": name, "loss": loss, "bits": 16, "epochs": epochs, **agg(*value)}
                          for study, name, loss, value in rows]}


def test_longer_training_readings_say_which_verdicts_the_longer_runs_change(tmp_path):
    from hhlib import artifacts

    shorter = tmp_path / "metrics.json"
    artifacts.write_json(shorter, _ablations(16, (0.66, 0.03), (0.75, 0.03), (0.62, 0.02), (0.68, 0.01)))
    longer = _ablations(48, (0.78, 0.01), (0.82, 0.01), (0.70, 0.01), (0.685, 0.01))
    lines = readings.longer_training_readings(longer, shorter)
    assert lines[0] == "hybridhash (paper), 16 bits: 0.660 ± 0.030 after 16 epochs, 0.780 ± 0.010 after 48 (+0.120)."
    assert lines[2] == "variant=no_interaction, 16 bits: 0.620 ± 0.020 after 16 epochs, 0.700 ± 0.010 after 48 (+0.080)."
    # cnn_full stays ahead (0.09 > 0.06, then 0.04 > 0.02); no_interaction: level (0.04 < 0.05) -> behind (0.08 > 0.02);
    # dpsh: level (0.02 < 0.04) -> behind (0.04 > 0.02)
    assert lines[4] == ("verdicts against the paper's method, 16 bits (ahead / level / behind by the spread rule): 1 of 3 "
                        "unchanged by the longer training; changed: variant=no_interaction level -> behind, "
                        "loss=dpsh level -> behind.")
    # dpsh gains 0.005, within its spread (0.02): more training did not help it; the others gain beyond theirs
    assert lines[5] == ("plateau, 16 bits (16 -> 48 epochs): 1 of 4 configurations gained no more than the spread from "
                        "the longer training, so they had stopped improving (loss=dpsh); still improving beyond the "
                        "spread: hybridhash (paper) (+0.120), variant=no_interaction (+0.080), backbone=cnn_full (+0.070).")
    assert lines[6] == "the paper's loss ranks 2 of 2 methods after the shorter training and 1 of 2 after the longer."
    assert readings.longer_training_readings(longer, None) == []


def test_longer_training_ranks_only_the_methods_both_lengths_trained(tmp_path):
    # make converged CONVERGED=doubled trains the paper's loss alone: no ranking of one method against the shorter 2
    from hhlib import artifacts

    shorter = tmp_path / "metrics.json"
    artifacts.write_json(shorter, _ablations(48, (0.78, 0.01), (0.82, 0.01), (0.70, 0.01), (0.74, 0.01)))
    longer = {"ablations": [r for r in _ablations(96, (0.79, 0.01), (0.83, 0.01), (0.71, 0.01), (0.0, 0.0))["ablations"]
                            if r["study"] != "loss"]}
    lines = readings.longer_training_readings(longer, shorter)
    assert not any("ranks" in line for line in lines)
    assert lines[-1] == ("plateau, 16 bits (48 -> 96 epochs): 3 of 3 configurations gained no more than the spread from "
                         "the longer training, so they had stopped improving (hybridhash (paper), backbone=cnn_full, "
                         "variant=no_interaction).")


def test_the_plateau_reading_names_a_configuration_that_longer_training_lowered(tmp_path):
    # 96 -> 192 epochs: the paper's method falls beyond the spread (0.79 -> 0.77), cnn_full stays, no_interaction gains
    from hhlib import artifacts

    shorter = tmp_path / "metrics.json"
    artifacts.write_json(shorter, _ablations(96, (0.79, 0.004), (0.837, 0.005), (0.752, 0.017), (0.74, 0.01)))
    longer = {"ablations": [r for r in _ablations(192, (0.774, 0.002), (0.836, 0.005), (0.79, 0.01), (0.0, 0.0))["ablations"]
                            if r["study"] != "loss"]}
    assert readings.longer_training_readings(longer, shorter)[-2] == (
        "plateau, 16 bits (96 -> 192 epochs): 2 of 3 configurations gained no more than the spread from the longer "
        "training, so they had stopped improving (hybridhash (paper), backbone=cnn_full); of those, the longer training "
        "lowered hybridhash (paper) (-0.016) beyond the spread: past their best, more training hurts them; still "
        "improving beyond the spread: variant=no_interaction (+0.038).")
    # the paper's method judged at its better length (96 epochs), every other configuration at its own better length
    assert readings.longer_training_readings(longer, shorter)[-1] == (
        "each at its better length, 16 bits (the length with the higher mean, chosen per configuration after the "
        "fact, so every figure is its best of two): against hybridhash (paper) 0.790 ± 0.004 (96 epochs): "
        "backbone=cnn_full 0.837 ± 0.005 (96) ahead; variant=no_interaction 0.790 ± 0.010 (192) level.")


def test_longer_training_readings_stop_on_a_missing_shorter_study(tmp_path):
    import pytest

    with pytest.raises(FileNotFoundError, match="render the study first"):
        readings.longer_training_readings({"ablations": []}, tmp_path / "none.json")


def search_point(trial, lr, val_map, collapsed=False, excluded=None, chosen=False):
    return {"trial": trial, "lr": lr, "val_map": val_map, "collapsed": collapsed, "excluded": excluded, "chosen": chosen}


def test_search_readings_name_every_loss_weight_the_search_moved_from_its_default():
    def point(trial, lr, weight, val_map, chosen=False):
        return {**search_point(trial, lr, val_map, chosen=chosen), "loss_params": {"quantization_weight": weight}}

    searched = {  # DCH: the weight stage beats the default at the chosen lr; CSQ keeps its default; CNNH has no grid
        "loss=dch": [point(0, 0.001, 0.1, 0.737), point(1, 0.002, 0.1, 0.760), point(2, 0.004, 0.1, 0.755),
                     point(3, 0.002, 0.01, 0.741), point(4, 0.002, 1.0, 0.781, chosen=True)],
        "loss=csq": [point(0, 0.001, 1e-4, 0.762), point(1, 0.002, 1e-4, 0.765, chosen=True), point(2, 0.004, 1e-4, 0.763),
                     point(3, 0.002, 1e-5, 0.760), point(4, 0.002, 1e-3, 0.751)],
        "loss=cnnh": [search_point(0, 0.001, 0.756, chosen=True), search_point(1, 0.002, 0.754)],
    }
    assert readings.search_readings({"ablation_search": searched}) == [
        "search: 3 of 3 searched runs train with their best validation trial's recipe (the same grid for every run, on a "
        "validation split of the training images).",
        "search, loss=dch: trains with quantization_weight 1.0 (validation mAP 0.781), not its default quantization_weight "
        "0.1 (0.760 at the same lr 0.002).",
        "search, loss weights: 1 of 2 runs with a weight grid keep their loss's default weights (the same number of weight "
        "points for every loss, the default among them, tried at the training recipe the first stage chose)."]


def test_the_collapse_margin_reading_names_only_the_collapse_next_to_the_best_trial():
    def point(trial, lr, weight, val_map, chosen=False, collapsed=False):
        return {**search_point(trial, lr, val_map, chosen=chosen, collapsed=collapsed),
                "loss_params": {"discriminative_weight": weight}}

    sdh = [point(0, 0.001, 1.0, 0.596, chosen=True), point(1, 0.002, 1.0, 0.623), point(2, 0.004, 1.0, 0.102, collapsed=True),
           point(3, 0.001, 0.1, 0.269), point(4, 0.001, 10.0, 0.102, collapsed=True)]  # trial 4's collapse is not the reason
    assert readings.search_readings({"ablation_search": {"loss=sdh": sdh}})[0] == (
        "search, loss=sdh: trains at lr 0.001, discriminative_weight 1.0 (validation mAP 0.596), not at its best validation "
        "trial, lr 0.002, discriminative_weight 1.0 (0.623), because lr 0.004, discriminative_weight 1.0 collapsed: "
        "hhlib.search skips a collapsed grid point and the learning rate just below it (the collapse margin).")


def test_search_readings_explain_every_choice_that_is_not_the_best_trial():
    searched = {
        "loss=sdh": [search_point(0, 0.001, 0.596, chosen=True), search_point(1, 0.002, 0.623, excluded="next to a collapse at trial 2"),
                     search_point(2, 0.004, 0.102, collapsed=True, excluded="collapsed")],
        "loss=dch": [search_point(0, 0.001, 0.737), search_point(1, 0.002, 0.760, chosen=True), search_point(2, 0.004, 0.755)],
    }
    lines = readings.search_readings({"ablation_search": searched})
    assert lines == [
        "search, loss=sdh: trains at lr 0.001 (validation mAP 0.596), not at its best validation trial, lr 0.002 (0.623), "
        "because lr 0.004 collapsed: hhlib.search skips a collapsed grid point and the learning rate just below it "
        "(the collapse margin).",
        "search: 1 of 2 searched runs train with their best validation trial's recipe (the same grid for every run, on a "
        "validation split of the training images)."]
    best_collapsed = {"loss=x": [search_point(0, 0.001, 0.5, chosen=True), search_point(1, 0.002, 0.6, collapsed=True)]}
    assert "lr 0.002 (0.600), because it collapsed" in readings.search_readings({"ablation_search": best_collapsed})[0]
    assert readings.search_readings({}) == [] and readings.search_readings({"ablation_search": {}}) == []
    rows = {"ablations": [agg(0.7, 0.01, study="baseline", bits=16, name="hybridhash (paper)", loss="wml")],
            "ablation_search": searched}
    assert readings.ablation_readings(rows)[-2:] == lines  # notebook 05's readings (and results.md) end with them


def test_unused_bits_name_each_configuration_with_its_count_per_seed():
    rows = [
        {"name": "loss=ninh", "bits": 16, "constant_bits_per_seed": [2, 0, 2]},
        {"name": "loss=dch", "bits": 16, "constant_bits_per_seed": [0, 0, 0]},
        {"name": "loss=sdh", "bits": 16, "constant_bits_per_seed": [16, 0, 0], "collapsed": True},  # flagged elsewhere
        {"name": "loss=dch", "bits": 64, "constant_bits_per_seed": [0, 0, 0]},
    ]
    assert readings.unused_bits_reading(rows, 16) == (
        "unused bits, 16 bits: 1 of 2 configurations leave bits constant over the database (count per seed): "
        "loss=ninh 2, 0, 2. A constant bit carries no information, so those codes retrieve with fewer than 16 bits; "
        "the others use every bit.")
    assert readings.unused_bits_reading(rows, 64) == (
        "unused bits, 64 bits: no bit is constant over the database in any seed (1 configuration): every bit carries "
        "information.")
    assert readings.unused_bits_reading([{"name": "old", "bits": 16, "map": 0.7}], 16) is None  # not recorded


def test_training_and_ablation_readings_carry_the_unused_bits():
    run = {"method": "hybridhash", "bits": 16, "seeds": [0, 1], **agg(0.7, 0.01), "constant_bits_per_seed": [0, 1]}
    lines = readings.training_readings({"runs": [run]})
    assert lines[1].startswith("unused bits, 16 bits: 1 of 1 configurations") and "hybridhash 0, 1." in lines[1]
    base = {"study": "baseline", "name": "hybridhash (paper)", "loss": "wml", "bits": 16, **agg(0.7, 0.01),
            "constant_bits_per_seed": [0, 0]}
    assert readings.ablation_readings({"ablations": [base]})[-1].startswith("unused bits, 16 bits: no bit is constant")
