"""The benchmarks' own correctness. The accuracy scripts (benchmarks/isbi_cv.py, drive.py and
the applications' lungs.py, liver.py, kidney.py and tumour_volumes.py) run end to end on the
real data at tiny settings (at the real ones they take 10 min to an hour; their figures are in
benchmarks/README.md): the splits, the scoring, the report.
And throughput.py's PyTorch peer has exactly our network's topology."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run(script, *args, fails=False):
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *map(str, args)],
                          capture_output=True, text=True, timeout=900)
    assert (done.returncode != 0) == fails, done.stderr[-3000:]
    return done


def test_isbi_cv_scores_a_fold_of_held_out_slices(shared_data, tmp_path):
    out = run("isbi_cv.py", "--data-dir", shared_data / "isbi2012_em", "--folds", 2,
              "--minutes", 0.05, "--every", 0.01, "--filters", 4,
              "--json", tmp_path / "isbi.json", "--plot", tmp_path / "curve.png").stdout
    result = json.loads((tmp_path / "isbi.json").read_text())
    (fold,) = result["folds"]
    assert fold["fold"] == 2 and fold["held_out"] == list(range(12, 18))  # contiguous blocks
    assert fold["parameters"] == 122_762  # depth 4, filters 4, batch norm, 2 classes
    for name in ("V_rand", "V_info", "pixel_error", "dice_cell", "dice_membrane"):
        assert 0 < fold[name] < 1, name
    # A barely trained model is far from the targets, and the report says so.
    assert fold["pixel_error"] > 0.061 and "<= 0.061: missed" in out
    times = [t for t, _ in fold["curve"]]
    assert times == sorted(times) and times[-1] >= 0.05
    assert all(0 <= d <= 1 for _, d in fold["curve"])
    assert "| 2 | 12-17 |" in out and "| **mean** |" in out and "Time to accuracy" in out
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_isbi_cv_refuses_a_tile_the_network_cannot_take(shared_data):
    done = run("isbi_cv.py", "--data-dir", shared_data / "isbi2012_em", "--tile", 500,
               fails=True)
    assert "--tile 500 does not fit a valid-padding U-Net of depth 4; the nearest that do: " \
           "[492, 508]" in done.stderr


def test_drive_scores_the_official_test_images_inside_the_fov(shared_data, tmp_path):
    out = run("drive.py", "--data-dir", shared_data / "drive", "--filters", 4, "--depth", 2,
              "--tile", 64, "--epochs", 1, "--steps-per-epoch", 2, "--tta", "none",
              "--json", tmp_path / "drive.json").stdout
    result = json.loads((tmp_path / "drive.json").read_text())
    assert [row["name"] for row in result["images"]] == [f"{i:02d}" for i in range(1, 21)]
    for scores in (result["pooled"], result["mean"], *result["images"]):
        assert 0 <= scores["f1"] <= 1 and 0 <= scores["auc"] <= 1
    # header and rule, the 20 test images, their mean, pooled, target
    assert out.count("\n| ") == 2 + 20 + 3
    assert f"| **{result['pooled']['f1']:.4f}** | **{result['pooled']['auc']:.4f}** |" in out


@pytest.mark.backend("torch")
def test_the_pytorch_peer_has_our_topology():
    """benchmarks/throughput.py's PyTorch U-Net: the paper's network layer for layer, so
    that images/s compare like with like."""
    import importlib.util

    from keras_unet import build_unet

    spec = importlib.util.spec_from_file_location("throughput", BENCHMARKS / "throughput.py")
    throughput = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(throughput)
    for padding, size, out, params, gflop in [("valid", 572, 388, 31_030_658, 300.86),
                                              ("same", 256, 256, 31_030_658, 96.19)]:
        ours = build_unet((size, size, 1), 2, padding=padding)
        torch_model = throughput.torch_unet(64, padding)
        flops, torch_out = throughput.torch_flops(torch_model, size)
        assert ours.count_params() == params
        assert sum(p.numel() for p in torch_model.parameters()) == params
        assert ours.output_shape[1] == torch_out == out
        assert throughput.conv_flops(ours) == flops
        assert flops / 1e9 == pytest.approx(gflop, abs=0.005)


def test_volume_prediction_and_training_figures_on_a_real_scan(shared_data):
    """benchmarks/volume.py at tiny settings: lung2's CT, both paddings tiled and plain, in
    fresh processes; the table and the training line."""
    out = run("volume.py", "--data", shared_data / "tumour_volumes", "--shape", "16,64,64",
              "--tiles", "60,64,64", "--filters", 2, "--patch", "16,32,32", "--steps", 1).stdout
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| valid")
            or line.startswith("| same")]
    # valid: 20x24x24 outputs abut, 1 x 3 x 3 tiles; same: 16x20x20 kept, steps of 12
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("| valid, 60x64x64", "`predict_tiled`", "9"),
        ("| valid, 60x64x64", "plain `predict_on_batch` of the same tiles", "9"),
        ("| same, 60x64x64", "`predict_tiled`", "50"),
        ("| same, 60x64x64", "plain `predict_on_batch` of the same tiles", "50")]
    assert [r[4] for r in rows[1::2]] == ["1.00x", "1.00x"]
    assert "training, 3D U-Net depth 3, filters 4, batch norm" in out and "patches/s" in out


def test_tumour_volumes_leave_one_out_scores_each_held_out_volume(shared_data, tmp_path):
    """benchmarks/tumour_volumes.py at tiny settings, two folds: the other four volumes
    trained on, the held-out one predicted whole and scored with its own voxel spacing."""
    out = run("tumour_volumes.py", "--data-dir", shared_data / "tumour_volumes", "--cases",
              "breast1,brain2", "--filters", 2, "--depth", 2, "--tile", "8,32,32", "--steps", 2,
              "--batch-size", 2, "--json", tmp_path / "volumes.json").stdout
    result = json.loads((tmp_path / "volumes.json").read_text())
    rows = {row["case"]: row for row in result["volumes"]}
    assert list(rows) == ["breast1", "brain2"]
    assert rows["breast1"]["shape"] == [21, 120, 45] and rows["breast1"]["tumour_voxels"] == 143
    assert rows["brain2"]["spacing"] == [6.5, 0.78125, 0.78125]
    assert rows["brain2"]["tumour_voxels"] == 453  # as PROVENANCE.md counts them
    for row in rows.values():
        assert 0 <= row["dice"] <= 1 and 0 <= row["surface_dice"] <= 1 and row["hd95"] >= 0
    assert result["mean"]["dice"] == pytest.approx(np.mean([r["dice"] for r in rows.values()]))
    assert "| breast1 | 21x120x45 | 2.1x0.664062x0.664062 | 143 |" in out
    assert f"| **mean** | | | | | **{result['mean']['dice']:.4f}** |" in out
    assert "No target" in out


def test_tumour_volumes_refuses_an_unknown_case_and_a_patch_off_the_pooling_grid(shared_data):
    folder = shared_data / "tumour_volumes"
    assert "--cases: lung3 not in brain1, brain2, breast1, lung2, lung1" in run(
        "tumour_volumes.py", "--data-dir", folder, "--cases", "lung3", fails=True).stderr
    grid = "--tile 10,64,64: D, H, W must be multiples of 4, 8, 8 (the pooling of depth 3)"
    assert grid in run(
        "tumour_volumes.py", "--data-dir", folder, "--tile", "10,64,64", fails=True).stderr


@pytest.mark.parametrize("multilabel", [False, True])
def test_lungs_scores_each_structure_of_the_held_out_x_rays(shared_data, tmp_path, multilabel):
    """benchmarks/lungs.py at tiny settings: trained on the training patients' X-rays resized
    whole, scored on each held-out X-ray at its own size (classes, or the complete labels)."""
    out = run("lungs.py", "--data-dir", shared_data / "lung_cxr", "--size", 32, "--depth", 2,
              "--filters", 2, "--steps", 2, "--batch-size", 2, "--json", tmp_path / "lungs.json",
              *(["--multilabel"] if multilabel else [])).stdout
    result = json.loads((tmp_path / "lungs.json").read_text())
    rows = result["images"]
    assert len(rows) == 7 and all(0 <= r[s] <= 1 for r in rows for s in result["targets"])
    first = rows[0]
    assert f"| {first['name']} | {first['width']}x{first['height']} | " in out
    assert result["parameters"] == (2_009 if multilabel else 2_012)
    for structure, target in (("left_lung", 0.95), ("cardiomediastinum", 0.90)):
        assert result["targets"][structure] == target
        assert result["mean"][structure] == pytest.approx(np.mean([r[structure] for r in rows]))
    assert ("other lung" in out) != multilabel and "| target | |" in out
    assert all((r["other_lung"] is None) == multilabel for r in rows)


def test_liver_scores_each_test_patient_of_the_split(shared_data, tmp_path):
    """benchmarks/liver.py at tiny settings: trained on the 98 training patients' slices,
    scored per test patient (all of a patient's slices pooled) at 256x256."""
    out = run("liver.py", "--data-dir", shared_data / "liver_ct", "--size", 32, "--depth", 2,
              "--filters", 2, "--epochs", 1, "--steps-per-epoch", 2, "--batch-size", 2,
              "--json", tmp_path / "liver.json").stdout
    result = json.loads((tmp_path / "liver.json").read_text())
    rows, summary = result["patients"], result["summary"]
    assert len(result["train_patients"]) == 98 and len(rows) == 24
    assert sum(r["slices"] for r in rows) == 130 and rows[0]["patient"] == "10005"
    scores = [r["dice"] for r in rows]
    assert all(0 <= d <= 1 for d in scores) and summary["mean"] == pytest.approx(np.mean(scores))
    assert summary["worst"] == min(scores) and not summary["target_met"]
    assert f"| 10005 | {rows[0]['slices']} | {rows[0]['liver_pixels']:,} |" in out
    assert "| target: mean >= 0.95 | missed |" in out
    assert "--size 96: 256 divided by a power of 2" in run(
        "liver.py", "--data-dir", shared_data / "liver_ct", "--size", 96, fails=True).stderr


def test_kidney_holds_out_each_named_patient_with_each_loss(shared_data, tmp_path):
    """benchmarks/kidney.py at tiny settings, two folds and two losses; patient 10038's one
    slice has no tumour, so its tumour Dice is undefined and shown as the pixels called tumour."""
    folder = shared_data / "kidney_tumour_ct"
    out = run("kidney.py", "--data-dir", folder, "--patients", "10038,10041", "--losses",
              "dice_ce,focal_tversky", "--size", 64, "--tile", 32, "--depth", 2, "--filters", 2,
              "--steps", 2, "--batch-size", 2, "--json", tmp_path / "kidney.json").stdout
    result = json.loads((tmp_path / "kidney.json").read_text())
    folds = {(r["patient"], r["loss"]): r for r in result["folds"]}
    assert sorted(folds) == [(p, loss) for p in ("10038", "10041")
                             for loss in ("dice_ce", "focal_tversky")]
    for (patient, _), r in folds.items():
        assert r["slices"] == 1 and r["train_slices"] == 23 and 0 <= r["kidney"] <= 1
        assert (r["tumour"] is None) == (patient == "10038") and r["tumour_pixels"] == (
            0 if patient == "10038" else 193)
    assert result["summary"]["dice_ce"]["tumour_patients"] == 1
    assert "| 10038 | 1 |" in out and "px called tumour)" in out
    assert "--patients: 99 not among 10036, 10037, 10038, 10040, 10041" in run(
        "kidney.py", "--data-dir", folder, "--patients", "99", fails=True).stderr
    assert "comma-separated loss names" in run(
        "kidney.py", "--data-dir", folder, "--losses", "nope", fails=True).stderr
