"""keras_unet/metrics.py: known arrays, accumulation over batches, Keras's own metrics."""

import keras
import numpy as np
import pytest

from keras_unet import build_unet
from keras_unet.losses import DiceCELoss
from keras_unet.metrics import DiceCoefficient, JaccardIndex, PixelError, iou


def result(metric, *batches):
    metric.reset_state()
    for batch in batches:
        metric.update_state(*batch)
    return float(keras.ops.convert_to_numpy(metric.result()))


def binary(truth, probs):
    return (np.array(truth, "float32")[None, :, :, None], np.array(probs, "float32")[None, :, :, None])


# truth 1 1 0 0 / prediction (at 0.5) 1 0 1 0: TP 1, |T| 2, |P| 2
BATCH_A = binary([[1, 1, 0, 0]], [[0.9, 0.2, 0.7, 0.1]])
# truth 1 1 1 1 / prediction 1 1 1 1
BATCH_B = binary([[1, 1, 1, 1]], [[0.6, 0.6, 0.6, 0.6]])


def test_binary_dice_accumulates_over_batches():
    assert result(DiceCoefficient(1), BATCH_A) == pytest.approx(0.5)
    # over both batches: TP 5, |T| 6, |P| 6 -> 10/12, not the mean (0.5 + 1) / 2
    assert result(DiceCoefficient(1), BATCH_A, BATCH_B) == pytest.approx(10 / 12)
    # at 0.15 the prediction is 1 1 1 0: TP 2, |T| 2, |P| 3
    assert result(DiceCoefficient(1, threshold=0.15), BATCH_A) == pytest.approx(2 * 2 / (2 + 3))


def test_binary_dice_from_logits_and_weights():
    truth, probs = BATCH_A
    logits = np.log(probs / (1 - probs))
    assert result(DiceCoefficient(1, from_logits=True), (truth, logits)) == pytest.approx(0.5)
    # weight 3 on the missed pixel: TP 1, |T| 1 + 3, |P| 2 -> 2 / 6
    weights = np.array([[[1, 3, 1, 1]]], "float32")
    assert result(DiceCoefficient(1), (truth, probs, weights)) == pytest.approx(2 / 6)


LABELS = np.array([[[0, 1, 2, 2]]])  # one image, 1x4 pixels
PROBS = np.array([[[[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1]]]], "float32")
# arg-max: 0 0 2 1. class 0: TP 1, |T| 1, |P| 2 -> 2/3; class 1: TP 0, |T| 1, |P| 1 -> 0;
# class 2: TP 1, |T| 2, |P| 1 -> 2/3


def test_multiclass_dice_per_class_and_mean():
    assert result(DiceCoefficient(3), (LABELS, PROBS)) == pytest.approx((2 / 3 + 0 + 2 / 3) / 3)
    assert [result(DiceCoefficient(3, class_id=c), (LABELS, PROBS)) for c in range(3)] \
        == pytest.approx([2 / 3, 0, 2 / 3])
    assert DiceCoefficient(3, class_id=2).name == "dice_class2"


def test_absent_classes_are_left_out():
    labels = np.zeros((1, 1, 4), int)
    probs = np.tile(np.array([0.9, 0.05, 0.05], "float32"), (1, 1, 4, 1))
    assert result(DiceCoefficient(3), (labels, probs)) == 1.0  # classes 1, 2 absent
    assert result(DiceCoefficient(3, class_id=1), (labels, probs)) == 1.0
    empty = binary([[0, 0]], [[0.1, 0.2]])
    assert result(DiceCoefficient(1), empty) == 1.0  # nothing to find, nothing found


def test_ignored_labels():
    labels = LABELS.copy()
    labels[0, 0, 3] = 255  # the last pixel (predicted 1) unlabelled: labels 0 1 2 -
    # class 0: 2/3; class 1: TP 0, |T| 1, |P| 0 (pixel 3 ignored) -> 0; class 2: 2*1/(1+1)
    assert result(DiceCoefficient(3), (labels, PROBS)) == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert result(PixelError(3), (labels, PROBS)) == pytest.approx(1 / 3)


# --------------------------------------------- multilabel: one sigmoid per label

def multilabel_batches(seed=8):
    """Two batches of 2 images (6x6, 3 overlapping labels, float 0/1), sigmoids, weights."""
    rng = np.random.default_rng(seed)
    return [((rng.random((2, 6, 6, 3)) > 0.6).astype("float32"),
             rng.random((2, 6, 6, 3)).astype("float32"),
             rng.uniform(0.5, 5, (2, 6, 6)).astype("float32")) for _ in range(2)]


def test_multilabel_metrics_are_per_label_binary_metrics():
    batches = multilabel_batches()
    for use_weights in (False, True):
        chosen = [b if use_weights else b[:2] for b in batches]
        label = [[tuple(a[..., c:c + 1] if a.ndim == 4 else a for a in b) for b in chosen]
                 for c in range(3)]
        dice = [result(DiceCoefficient(1), *label[c]) for c in range(3)]
        assert result(DiceCoefficient(3), *chosen) == pytest.approx(np.mean(dice), rel=1e-6)
        assert result(DiceCoefficient(3, class_id=2), *chosen) == pytest.approx(dice[2])
        ious = [result(iou(1), *label[c]) for c in range(3)]
        assert result(iou(3, multilabel=True), *chosen) == pytest.approx(np.mean(ious), rel=1e-5)
        assert result(iou(3, 1, multilabel=True), *chosen) == pytest.approx(ious[1], rel=1e-5)
        accuracy = keras.metrics.BinaryAccuracy()  # over every pixel and label
        for truth, probs, weights in chosen if use_weights else batches:
            accuracy.update_state(truth, probs, np.repeat(weights[..., None], 3, -1)
                                  if use_weights else None)
        assert result(PixelError(3), *chosen) == pytest.approx(1 - float(accuracy.result()),
                                                                rel=1e-5)
    assert iou(3, multilabel=True).name == "iou" and isinstance(iou(3, multilabel=True),
                                                                 JaccardIndex)
    truth, probs, _ = batches[0]
    logits = np.log(probs / (1 - probs))
    assert result(DiceCoefficient(3, from_logits=True), (truth, logits)) == pytest.approx(
        result(DiceCoefficient(3), (truth, probs)))


def test_multilabel_model_trains_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.random((4, 16, 16, 1)).astype("float32")
    labels = np.concatenate([images > 0.3, images > 0.6, images < 0.2], -1).astype("float32")
    model = build_unet((16, 16, 1), 3, depth=2, filters=4, multilabel=True)
    model.compile("adam", DiceCELoss(), metrics=[DiceCoefficient(3), iou(3, multilabel=True),
                                                 PixelError(3)])
    history = model.fit(images, labels, epochs=1, verbose=0)
    assert {"dice", "iou", "pixel_error"} <= set(history.history)
    model.save(tmp_path / "unet.keras")
    loaded = keras.models.load_model(tmp_path / "unet.keras", safe_mode=True)
    evaluated = loaded.evaluate(images, labels, verbose=0, return_dict=True)
    assert evaluated["pixel_error"] == pytest.approx(
        result(PixelError(3), (labels, model.predict(images, verbose=0))), abs=1e-6)


# ------------------------------------- ignored labels against Keras's own metrics

def ignored_batches(seed=6):
    """Two batches of 2 images (8x8, 3 classes) with 20, 0, 5 and 64 pixels labelled
    255, and pixel weights."""
    rng = np.random.default_rng(seed)
    batches = []
    for ignored in ((20, 0), (5, 64)):
        labels = rng.integers(0, 3, (2, 8, 8))
        for image, n in enumerate(ignored):
            labels[image].flat[:n] = 255
        probs = rng.random((2, 8, 8, 3)).astype("float32")
        weights = rng.uniform(0.5, 5, (2, 8, 8)).astype("float32")
        batches.append((labels, probs, weights))
    return batches


def test_dice_with_ignored_labels_and_weights_matches_keras_iou():
    # per class, Dice = 2 IoU / (1 + IoU) on the same weighted counts
    batches = ignored_batches()
    for use_weights in (False, True):
        chosen = [b if use_weights else b[:2] for b in batches]
        for c in range(3):
            keras_iou = keras.metrics.IoU(3, [c], sparse_y_pred=False, ignore_class=255,
                                          dtype="float32")
            j = result(keras_iou, *chosen)
            assert 0 < j < 1
            assert result(DiceCoefficient(3, class_id=c), *chosen) == pytest.approx(
                2 * j / (1 + j), rel=1e-5)


def test_pixel_error_with_ignored_labels_and_weights_matches_keras_accuracy():
    batches = ignored_batches()
    for use_weights in (False, True):
        accuracy = keras.metrics.SparseCategoricalAccuracy()
        for labels, probs, weights in batches:
            counted = (labels != 255).astype("float32") * (weights if use_weights else 1)
            accuracy.update_state(np.where(labels == 255, 0, labels), probs, counted)
        chosen = [b if use_weights else b[:2] for b in batches]
        assert result(PixelError(3), *chosen) == pytest.approx(
            1 - float(accuracy.result()), rel=1e-5)
    # (not the same as counting the unlabelled pixels as class 0)
    assert result(PixelError(3), *[b[:2] for b in batches]) != pytest.approx(
        result(PixelError(3), *[(np.where(l == 255, 0, l), p) for l, p, _ in batches]),
        rel=1e-3)


_BACKEND_SCRIPT = """
import json, sys, numpy as np, keras
from keras_unet.metrics import DiceCoefficient, PixelError, iou
classes, labels = json.loads(sys.stdin.read())
values = []
for batches, multilabel in ((classes, False), (labels, True)):
    batches = [[np.array(a, dtype="float32" if i or multilabel else "int32")
                for i, a in enumerate(b)] for b in batches]
    for metric in (DiceCoefficient(3), DiceCoefficient(3, class_id=1), PixelError(3)) + (
            (iou(3, multilabel=True),) if multilabel else ()):
        for batch in batches:
            metric.update_state(*batch)
        values.append(float(keras.ops.convert_to_numpy(metric.result())))
print(json.dumps({"backend": keras.backend.backend(), "values": values}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_metrics_on_other_backends(backend):
    import json
    import os
    import subprocess
    import sys

    batches, multilabel = ignored_batches(), multilabel_batches()
    done = subprocess.run([sys.executable, "-c", _BACKEND_SCRIPT],
                          input=json.dumps([[[a.tolist() for a in b] for b in batches]
                                            for batches in (batches, multilabel)]),
                          env=dict(os.environ, KERAS_BACKEND=backend), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    assert theirs["backend"] == backend
    metrics = (DiceCoefficient(3), DiceCoefficient(3, class_id=1), PixelError(3))
    here = [result(metric, *batches) for metric in metrics]
    here += [result(metric, *multilabel) for metric in metrics + (iou(3, multilabel=True),)]
    np.testing.assert_allclose(theirs["values"], here, rtol=1e-5)


def test_pixel_error_matches_keras_accuracy():
    assert result(PixelError(1), BATCH_A) == pytest.approx(0.5)
    assert result(PixelError(1), BATCH_A, BATCH_B) == pytest.approx(2 / 8)
    assert result(PixelError(3), (LABELS, PROBS)) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (3, 8, 8))
    probs = rng.random((3, 8, 8, 4)).astype("float32")
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    accuracy.update_state(labels, probs)
    assert result(PixelError(4), (labels, probs)) == pytest.approx(1 - float(accuracy.result()))
    truth = (rng.random((3, 8, 8, 1)) > 0.5).astype("float32")
    p = rng.random((3, 8, 8, 1)).astype("float32")
    binary_accuracy = keras.metrics.BinaryAccuracy()
    binary_accuracy.update_state(truth, p)
    assert result(PixelError(1), (truth, p)) == pytest.approx(1 - float(binary_accuracy.result()))


def test_iou():
    # binary: TP 1, FP 1, FN 1 -> 1/3
    assert result(iou(1), BATCH_A) == pytest.approx(1 / 3)
    # multi-class, arg-max 0 0 2 1: class 0: 1/(1+1+0)=1/2, class 1: 0/2 = 0, class 2: 1/2
    assert result(iou(3), (LABELS, PROBS)) == pytest.approx(1 / 3)
    assert result(iou(3, class_id=2), (LABELS, PROBS)) == pytest.approx(1 / 2)
    labels = LABELS.copy()
    labels[0, 0, 3] = 255
    # with pixel 3 ignored, arg-max 0 0 2 on labels 0 1 2: class 0: 1/2; class 1: 0/1;
    # class 2: 1/1
    assert result(iou(3, ignore_class=255), (labels, PROBS)) == pytest.approx(1 / 2)
    assert isinstance(iou(1), keras.metrics.BinaryIoU)


def test_iou_with_a_float_weight_map():
    # weights below 1 must not be truncated to 0 (Keras's IoU counts in integers by
    # default): IoU = Dice / (2 - Dice) on the same weighted counts
    labels, probs, weights = ignored_batches()[0]
    weights = weights / 5  # 0.1 .. 1
    for c in range(3):
        d = result(DiceCoefficient(3, class_id=c), (labels, probs, weights))
        assert result(iou(3, class_id=c, ignore_class=255), (labels, probs, weights)) == \
            pytest.approx(d / (2 - d), rel=1e-5)
    truth = (labels[..., None] == 1).astype("float32")
    d = result(DiceCoefficient(1), (truth, probs[..., :1], weights))
    assert result(iou(1), (truth, probs[..., :1], weights)) == pytest.approx(d / (2 - d), rel=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_classes must be an integer >= 1; got 0"):
        DiceCoefficient(0)
    with pytest.raises(ValueError, match="class_id must be one of None, 0, 1, 2; got 3"):
        DiceCoefficient(3, class_id=3)
    with pytest.raises(ValueError, match="class_id must be one of None, 0, 1; got 5"):
        iou(2, class_id=5)
    with pytest.raises(ValueError, match=r"dice was made for 2 classes; the output has the shape \(1, 1, 4, 3\)"):
        DiceCoefficient(2).update_state(LABELS, PROBS)
    with pytest.raises(ValueError, match=r"mask shape \(1, 3, 3, 1\) does not fit the output shape \(1, 4, 4, 1\)"):
        PixelError(1).update_state(np.zeros((1, 3, 3, 1)), np.zeros((1, 4, 4, 1)))


@pytest.mark.parametrize("metric", [DiceCoefficient(3, class_id=1, threshold=0.3),
                                    PixelError(1, from_logits=True), iou(3), iou(1),
                                    iou(3, class_id=2, multilabel=True)])
def test_serialization_round_trip(metric):
    again = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert type(again) is type(metric) and again.get_config() == metric.get_config()


def test_metrics_in_fit_history():
    rng = np.random.default_rng(0)
    images = rng.random((4, 32, 32, 1)).astype("float32")
    labels = (images[..., 0] * 3).astype("int32")
    model = build_unet((32, 32, 1), 3, depth=2, filters=4)
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=[DiceCoefficient(3), DiceCoefficient(3, class_id=0), iou(3),
                           PixelError(3)])
    history = model.fit(images, labels, epochs=1, verbose=0)
    assert {"dice", "dice_class0", "mean_iou", "pixel_error"} <= set(history.history)
    probs = model.predict(images, verbose=0)
    evaluated = model.evaluate(images, labels, verbose=0, return_dict=True)
    assert evaluated["pixel_error"] == pytest.approx(result(PixelError(3), (labels, probs)), abs=1e-6)


def test_metrics_agree_with_the_numpy_scores():
    """The training metrics and keras_unet.evaluation compute the same numbers."""
    from keras_unet import evaluation

    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, (4, 16, 16))
    probs = rng.random((4, 16, 16, 3)).astype("float32")
    assert result(DiceCoefficient(3), (labels, probs)) == pytest.approx(
        evaluation.dice(labels, probs, n_classes=3)["mean"], rel=1e-6)
    assert result(PixelError(3), (labels, probs)) == pytest.approx(
        evaluation.pixel_error(labels, probs, n_classes=3), rel=1e-6)
    assert result(iou(3), (labels, probs)) == pytest.approx(
        evaluation.iou(labels, probs, n_classes=3)["mean"], rel=1e-6)
    truth = (rng.random((4, 16, 16, 1)) > 0.5).astype("float32")
    p = rng.random((4, 16, 16, 1)).astype("float32")
    assert result(DiceCoefficient(1), (truth, p)) == pytest.approx(evaluation.dice(truth, p), rel=1e-6)
    assert result(iou(1), (truth, p)) == pytest.approx(evaluation.iou(truth, p), rel=1e-6)


def test_metrics_on_volumes_by_hand():
    # (N, D, H, W, 1): truth 2 of 8 voxels; at 0.5 the prediction has one of them:
    # TP 1, |T| 2, |P| 1 -> Dice 2/3, IoU 1/2, 1 wrong voxel of 8
    truth = np.zeros((1, 2, 2, 2, 1), "float32")
    truth[0, 0, 0, :, 0] = 1
    probs = np.zeros((1, 2, 2, 2, 1), "float32")
    probs[0, 0, 0, 0, 0], probs[0, 1, 1, 1, 0] = 0.8, 0.4
    assert result(DiceCoefficient(1), (truth, probs)) == pytest.approx(2 / 3)
    assert result(JaccardIndex(1), (truth, probs)) == pytest.approx(1 / 2)
    assert result(PixelError(1), (truth, probs)) == pytest.approx(1 / 8)
    # class indices (N, D, H, W): slice 1 is class 1, the arg-max finds 2 of its 4 voxels
    labels = np.zeros((1, 2, 2, 2), "int32")
    labels[0, 1] = 1
    scores = np.zeros((1, 2, 2, 2, 2), "float32")
    scores[..., 0] = 1
    scores[0, 1, 0] = [0, 1]
    assert [result(DiceCoefficient(2, class_id=c), (labels, scores)) for c in (0, 1)] \
        == pytest.approx([8 / 10, 4 / 6])
    assert result(PixelError(2), (labels, scores)) == pytest.approx(2 / 8)
