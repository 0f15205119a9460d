"""keras_unet/losses.py: hand-computed values, Keras's own losses, weights, bad input."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_unet import build_unet, images, output_size
from keras_unet.losses import (DiceCELoss, DiceLoss, FocalLoss, FocalTverskyLoss, JaccardLoss,
                               TverskyLoss, prepare)

ALL_LOSSES = [DiceLoss, JaccardLoss, TverskyLoss, FocalTverskyLoss, FocalLoss, DiceCELoss]


def value(loss, *args, **kwargs):
    return float(ops.convert_to_numpy(loss(*args, **kwargs)))


# A 2x2 binary case: truth has 2 foreground pixels, the prediction finds one of them
# (0.8) and puts 0.4 on a background pixel.
TRUTH = np.array([[[1, 1], [0, 0]]], "float32")[..., None]
PRED = np.array([[[0.8, 0.0], [0.4, 0.0]]], "float32")[..., None]
# soft counts: TP = 0.8, FP = 0.4, FN = 0.2 + 1.0 = 1.2


def test_binary_region_losses_by_hand():
    assert value(DiceLoss(smooth=0), TRUTH, PRED) == pytest.approx(1 - 1.6 / (2 + 1.2))
    assert value(DiceLoss(smooth=1), TRUTH, PRED) == pytest.approx(1 - 2.6 / 4.2)
    assert value(JaccardLoss(smooth=0), TRUTH, PRED) == pytest.approx(1 - 0.8 / 2.4)
    tversky = 1 - 0.8 / (0.8 + 0.3 * 0.4 + 0.7 * 1.2)
    assert value(TverskyLoss(smooth=0), TRUTH, PRED) == pytest.approx(tversky)
    assert value(FocalTverskyLoss(smooth=0), TRUTH, PRED) == pytest.approx(tversky**0.75)
    # Tversky with alpha = beta = 0.5 is Dice
    assert value(TverskyLoss(0.5, 0.5, smooth=0), TRUTH, PRED) == pytest.approx(1 - 1.6 / 3.2)


def test_multiclass_dice_per_class_mean_by_hand():
    labels = np.array([[[0, 1, 2]]])  # one image of 1x3 pixels
    probs = np.array([[[[1.0, 0, 0], [0.5, 0.5, 0], [0, 0, 1.0]]]], "float32")
    # class 0: TP .5+... = 1.0, |T| = 1, |P| = 1.5 -> 2/2.5; class 1: 2*.5/(1+.5);
    # class 2: 2*1/(1+1) = 1
    per_class = np.array([2 / 2.5, 1 / 1.5, 1.0])
    assert value(DiceLoss(smooth=0), labels, probs) == pytest.approx(1 - per_class.mean())
    weights = [0.0, 1.0, 3.0]
    weighted = (per_class * weights).sum() / 4
    assert value(DiceLoss(smooth=0, class_weights=weights), labels, probs) == pytest.approx(1 - weighted)
    # (N, H, W, 1) masks are the same as (N, H, W)
    assert value(DiceLoss(smooth=0), labels[..., None], probs) == pytest.approx(1 - per_class.mean())


def test_region_losses_match_keras():
    rng = np.random.default_rng(0)
    truth = (rng.random((1, 8, 8, 1)) > 0.5).astype("float32")
    pred = rng.random((1, 8, 8, 1)).astype("float32")
    assert value(DiceLoss(smooth=0), truth, pred) == pytest.approx(value(keras.losses.Dice(), truth, pred), rel=1e-5)
    # Keras's Tversky puts its alpha on the false negatives; ours (Salehi et al.) on the
    # false positives
    assert value(TverskyLoss(0.3, 0.7, smooth=0), truth, pred) == pytest.approx(
        value(keras.losses.Tversky(alpha=0.7, beta=0.3), truth, pred), rel=1e-5)
    assert value(TverskyLoss(0.3, 0.7, smooth=0), truth, pred) != pytest.approx(
        value(keras.losses.Tversky(alpha=0.3, beta=0.7), truth, pred), rel=1e-3)


def test_pixel_losses_match_keras_with_pixel_weights():
    rng = np.random.default_rng(1)
    truth = (rng.random((2, 6, 6, 1)) > 0.5).astype("float32")
    pred = rng.uniform(0.05, 0.95, (2, 6, 6, 1)).astype("float32")
    weights = rng.uniform(0.5, 10, (2, 6, 6)).astype("float32")
    ours = DiceCELoss(dice_weight=0)
    for w in (None, weights):
        assert value(ours, truth, pred, w) == pytest.approx(
            value(keras.losses.BinaryCrossentropy(), truth, pred, w), rel=1e-5)
        assert value(FocalLoss(gamma=2, alpha=0.25), truth, pred, w) == pytest.approx(
            value(keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.25,
                                                       gamma=2), truth, pred, w), rel=1e-5)
    labels = rng.integers(0, 3, (2, 6, 6))
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(rng.normal(size=(2, 6, 6, 3))))
    assert value(ours, labels, probs, weights) == pytest.approx(
        value(keras.losses.SparseCategoricalCrossentropy(), labels, probs, weights), rel=1e-5)
    one_hot = np.eye(3)[labels]
    assert value(FocalLoss(gamma=2, alpha=0.25), labels, probs, weights) == pytest.approx(
        value(keras.losses.CategoricalFocalCrossentropy(alpha=0.25, gamma=2), one_hot, probs,
              weights), rel=1e-5)


def test_combined_is_the_sum_of_its_parts():
    ce = value(DiceCELoss(dice_weight=0), TRUTH, PRED)
    dice = value(DiceLoss(), TRUTH, PRED)
    # pixels (truth, p): (1, .8), (1, 0 -> clipped to Keras's epsilon 1e-7), (0, .4), (0, 0)
    eps = 1e-7
    assert ce == pytest.approx(-(np.log(0.8) + np.log(eps) + np.log(0.6) + np.log(1 - eps)) / 4,
                               rel=1e-4)
    assert value(DiceCELoss(ce_weight=2, dice_weight=3), TRUTH, PRED) == pytest.approx(2 * ce + 3 * dice)


@pytest.mark.parametrize("loss_class", ALL_LOSSES)
def test_from_logits(loss_class):
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2, 5, 5, 1)).astype("float32")
    truth = (rng.random((2, 5, 5, 1)) > 0.5).astype("float32")
    probs = 1 / (1 + np.exp(-logits))
    assert value(loss_class(from_logits=True), truth, logits) == pytest.approx(
        value(loss_class(), truth, probs), rel=1e-5)
    logits3 = rng.normal(size=(2, 5, 5, 3)).astype("float32")
    labels = rng.integers(0, 3, (2, 5, 5))
    probs3 = np.exp(logits3) / np.exp(logits3).sum(-1, keepdims=True)
    assert value(loss_class(from_logits=True), labels, logits3) == pytest.approx(
        value(loss_class(), labels, probs3), rel=1e-5)


@pytest.mark.parametrize("loss_class", [DiceLoss, JaccardLoss, TverskyLoss, FocalTverskyLoss])
def test_empty_masks_are_defined(loss_class):
    empty = np.zeros((2, 4, 4, 1), "float32")
    for smooth in (0.0, 1.0):
        assert value(loss_class(smooth=smooth), empty, empty) == 0.0  # perfect, not NaN
    assert value(loss_class(smooth=1.0), empty, np.full_like(empty, 0.5)) > 0.5


def test_region_pixel_weights_by_hand():
    # weight 3 on the missed foreground pixel: TP = 0.8, FP = 0.4, FN = 0.2 + 3 * 1.0
    weights = np.array([[[1, 3], [1, 1]]], "float32")
    expected = 1 - 1.6 / (1.6 + 0.4 + 3.2)
    assert value(DiceLoss(smooth=0), TRUTH, PRED, weights) == pytest.approx(expected)
    assert value(DiceLoss(smooth=0), TRUTH, PRED, weights[..., None]) == pytest.approx(expected)


def test_per_image_weights():
    truth = np.concatenate([TRUTH, TRUTH])
    pred = np.concatenate([PRED, TRUTH])  # second image perfect
    first = 1 - 1.6 / 3.2
    assert value(DiceLoss(smooth=0), truth, pred) == pytest.approx(first / 2)
    assert value(DiceLoss(smooth=0), truth, pred, np.array([3.0, 1.0])) == pytest.approx(3 * first / 2)
    none = DiceLoss(smooth=0, reduction="none")(truth, pred)
    np.testing.assert_allclose(ops.convert_to_numpy(none), [first, 0.0], atol=1e-6)


@pytest.mark.parametrize("loss_class", ALL_LOSSES)
def test_ignored_labels_do_not_count(loss_class):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, (1, 6, 6))
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(rng.normal(size=(1, 6, 6, 3))))
    unlabelled = labels.copy()
    unlabelled[0, :2] = 255  # two rows marked "unlabelled"
    # the same as cropping the unlabelled rows away, for every loss
    assert value(loss_class(), unlabelled, probs) == pytest.approx(
        value(loss_class(), labels[:, 2:], probs[:, 2:]), rel=1e-5)
    weights = np.ones((1, 6, 6), "float32")
    weights[0, :2] = 0
    if loss_class in (FocalLoss, DiceCELoss):
        # a pixel loss divides by the counted pixels: weight 0 still counts, 255 does not
        loss = loss_class() if loss_class is FocalLoss else DiceCELoss(dice_weight=0)
        assert value(loss, unlabelled, probs) == pytest.approx(
            value(loss, labels, probs, weights) * 36 / 24, rel=1e-5)
    else:  # a region loss only sums weighted pixels: weight 0 is the same as ignored
        assert value(loss_class(), unlabelled, probs) == pytest.approx(
            value(loss_class(), labels, probs, weights), rel=1e-5)


# ------------------------------------------------ multilabel: one sigmoid per label


def multilabel_batch(seed=7):
    """2 images of 6x6 pixels with 3 labels (float 0/1, overlapping), logits and sigmoids."""
    rng = np.random.default_rng(seed)
    truth = (rng.random((2, 6, 6, 3)) > 0.6).astype("float32")
    logits = rng.normal(size=(2, 6, 6, 3)).astype("float32")
    return truth, logits, 1 / (1 + np.exp(-logits)), rng.uniform(0.5, 5, (2, 6, 6)).astype("float32")


@pytest.mark.parametrize("loss_class", ALL_LOSSES)
def test_multilabel_is_the_mean_of_each_labels_binary_loss(loss_class):
    truth, logits, probs, weights = multilabel_batch()
    for w in (None, weights):
        if loss_class is FocalTverskyLoss:  # (1 - the mean index) ** 0.75 per image
            tversky = ops.convert_to_numpy(TverskyLoss(reduction="none")(truth, probs, w))
            expected = np.mean(tversky**0.75)
        else:
            expected = np.mean([value(loss_class(), truth[..., i:i + 1], probs[..., i:i + 1], w)
                                for i in range(3)])
        assert value(loss_class(), truth, probs, w) == pytest.approx(expected, rel=1e-5)
        # from_logits: a sigmoid per channel, not a softmax
        assert value(loss_class(from_logits=True), truth, logits, w) == pytest.approx(
            expected, rel=1e-5)


def test_multilabel_cross_entropy_is_keras_binary_cross_entropy():
    truth, logits, probs, weights = multilabel_batch()
    ce = DiceCELoss(dice_weight=0)
    for w in (None, weights):
        assert value(ce, truth, probs, w) == pytest.approx(
            value(keras.losses.BinaryCrossentropy(), truth, probs, w), rel=1e-5)
    assert value(DiceCELoss(dice_weight=0, from_logits=True), truth, logits) == pytest.approx(
        value(keras.losses.BinaryCrossentropy(from_logits=True), truth, logits), rel=1e-5)
    # bool masks alike; the labels may overlap and be all empty
    assert value(ce, truth.astype(bool), probs) == pytest.approx(value(ce, truth, probs))
    assert value(DiceLoss(), np.zeros_like(truth), np.zeros_like(probs)) == 0.0


def test_prepare_reads_the_mode_from_the_mask():
    truth, logits, _, _ = multilabel_batch()
    *_, mode = prepare(truth, logits)
    assert mode == "multilabel"
    assert prepare(truth[..., :1], logits[..., :1])[3] == "binary"
    assert prepare(truth[..., 0].astype("int32"), logits)[3] == "multiclass"
    t, p, valid, _ = prepare(truth, logits, from_logits=True)
    np.testing.assert_allclose(ops.convert_to_numpy(p), 1 / (1 + np.exp(-logits)), rtol=1e-6)
    assert ops.convert_to_numpy(valid).shape == (2, 6, 6, 1) and ops.convert_to_numpy(valid).all()


# ------------------------------- concrete masks: the verdict and text of images.as_mask

BAD_MASKS = {  # name: (y_true, output channels, the mode as_mask is asked for)
    "a soft binary mask": (np.full((1, 4, 4, 1), 0.5, "float32"), 1, "binary"),
    "a binary mask of NaN": (np.full((1, 4, 4, 1), np.nan, "float32"), 1, "binary"),
    "0/255 stored as integers": (np.array([0, 255] * 8).reshape(1, 4, 4), 2, "multiclass"),
    "a negative class index": (np.array([0, 1, -1, 2] * 4).reshape(1, 4, 4), 3, "multiclass"),
    "class indices 1.5": (np.array([0, 1, 1.5, 2] * 4).reshape(1, 4, 4), 3, "multiclass"),
    "a soft multilabel mask": (np.full((1, 4, 4, 3), 0.3, "float32"), 3, "multilabel"),
}


@pytest.mark.parametrize("case", sorted(BAD_MASKS))
def test_a_concrete_mask_is_refused_as_images_as_mask_refuses_it(case):
    y_true, channels, mode = BAD_MASKS[case]
    with pytest.raises(ValueError) as expected:
        images.as_mask(y_true, "y_true", mode, batch=True)
    y_pred = np.full((1, 4, 4, channels), 1 / channels, "float32")
    for call in (lambda t: DiceCELoss()(t, y_pred), lambda t: prepare(t, y_pred),
                 lambda t: (DiceLoss() if channels == 1 else FocalLoss())(t, y_pred)):
        for given in (y_true, ops.convert_to_tensor(y_true)):  # NumPy, an eager tensor
            with pytest.raises(ValueError) as refused:
                call(given)
            assert str(refused.value) == str(expected.value)


def test_a_traced_mask_is_checked_by_shape_and_dtype_only():
    import tensorflow as tf

    soft = np.full((1, 4, 4, 1), 0.5, "float32")
    y_pred = np.full((1, 4, 4, 1), 0.5, "float32")
    traced = tf.function(lambda t, p: DiceLoss(smooth=0)(t, p))
    assert float(traced(soft, y_pred)) == pytest.approx(0.5)  # no value check in a graph
    with pytest.raises(ValueError, match="one sigmoid output"):  # the dtype rule stays
        traced(soft.astype("int32"), y_pred)
    # 255 beside the classes is an unlabelled pixel, also when it is the only value
    labels = np.array([[[0, 1, 255, 2]]])
    probs = np.full((1, 1, 4, 3), 1 / 3, "float32")
    assert value(DiceLoss(), labels, probs) == pytest.approx(
        value(DiceLoss(), labels[..., [0, 1, 3]], probs[..., [0, 1, 3], :]))
    assert value(DiceLoss(), np.full((1, 1, 4), 255), probs) == 0.0


# ---------------------------------------- ignored labels against Keras's ignore_class

KERAS_CE = keras.losses.SparseCategoricalCrossentropy(ignore_class=255)


def ignored_batch(seed=4):
    """3 images of 8x8 pixels, 3 classes, with 32, 3 and 0 pixels labelled 255."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, (3, 8, 8))
    labels[0, :4] = 255
    labels[1, 0, :3] = 255
    logits = rng.normal(size=(3, 8, 8, 3)).astype("float32")
    probs = ops.convert_to_numpy(ops.softmax(logits)).astype("float32")
    weights = rng.uniform(0.5, 10, (3, 8, 8)).astype("float32")
    return labels, logits, probs, weights


def test_cross_entropy_with_ignored_labels_is_keras_ignore_class():
    from keras_unet.training import LOSSES

    labels, logits, probs, _ = ignored_batch()
    ce = DiceCELoss(dice_weight=0)
    # one image, half of it unlabelled: the mean over its 32 counted pixels
    # (1.3447, as Keras; it used to be 0.6724, the mean over all 64 pixels)
    counted = labels[0] != 255
    by_hand = -np.log(np.take_along_axis(probs[0], labels[0][..., None] % 255, -1)[..., 0])
    assert value(ce, labels[:1], probs[:1]) == pytest.approx(by_hand[counted].mean(), rel=1e-5)
    assert value(ce, labels[:1], probs[:1]) == pytest.approx(
        value(KERAS_CE, labels[:1], probs[:1]), rel=1e-5)
    # the batch: 29 + 61 + 64 counted pixels pooled, as Keras does, not a mean of
    # per-image means
    keras_ce = value(KERAS_CE, labels, probs)
    assert value(ce, labels, probs) == pytest.approx(keras_ce, rel=1e-5)
    per_image = ops.convert_to_numpy(DiceCELoss(dice_weight=0, reduction="none")(labels, probs))
    assert per_image.mean() != pytest.approx(keras_ce, rel=1e-3)
    # compile_unet(loss="cross_entropy"), and logits
    assert value(LOSSES["cross_entropy"](from_logits=False), labels, probs) == pytest.approx(
        keras_ce, rel=1e-5)
    assert value(DiceCELoss(dice_weight=0, from_logits=True), labels, logits) == pytest.approx(
        value(keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255),
              labels, logits), rel=1e-5)
    # (N, H, W, 1) masks alike
    assert value(ce, labels[..., None], probs) == pytest.approx(keras_ce, rel=1e-5)


def test_dice_ce_with_ignored_labels_is_keras_ce_plus_dice():
    labels, _, probs, weights = ignored_batch()
    for w in (None, weights):
        dice = value(DiceLoss(), labels, probs, w)
        ce = value(KERAS_CE, labels, probs, w)
        assert value(DiceCELoss(), labels, probs, w) == pytest.approx(ce + dice, rel=1e-5)
        assert value(DiceCELoss(ce_weight=2, dice_weight=0.5), labels, probs, w) == \
            pytest.approx(2 * ce + 0.5 * dice, rel=1e-5)


def test_pixel_and_image_weights_with_ignored_labels_match_keras():
    labels, _, probs, weights = ignored_batch()
    ce = DiceCELoss(dice_weight=0)
    # pixel weights: the weighted sum over the batch divided by its 154 counted pixels
    assert value(ce, labels, probs, weights) == pytest.approx(
        value(KERAS_CE, labels, probs, weights), rel=1e-5)
    assert value(ce, labels, probs, weights[..., None]) == pytest.approx(
        value(KERAS_CE, labels, probs, weights), rel=1e-5)
    # per-image weights (Keras needs them broadcast to the pixels)
    images = np.array([3.0, 1.0, 0.5], "float32")
    assert value(ce, labels, probs, images) == pytest.approx(
        value(KERAS_CE, labels, probs, np.broadcast_to(images[:, None, None], labels.shape)),
        rel=1e-5)
    # "mean_with_sample_weight": divided by the summed pixel weights instead
    assert value(DiceCELoss(dice_weight=0, reduction="mean_with_sample_weight"),
                 labels, probs, weights) == pytest.approx(
        value(keras.losses.SparseCategoricalCrossentropy(
            ignore_class=255, reduction="mean_with_sample_weight"), labels, probs, weights),
        rel=1e-5)


def test_reduction_none_and_sum_average_each_image_over_its_own_pixels():
    labels, _, probs, weights = ignored_batch()
    pixels = ops.convert_to_numpy(keras.losses.SparseCategoricalCrossentropy(
        ignore_class=255, reduction="none")(labels, probs)) * weights  # 0 where ignored
    counts = (labels != 255).sum(axis=(1, 2))
    assert counts.tolist() == [32, 61, 64]
    expected = pixels.sum(axis=(1, 2)) / counts
    none = DiceCELoss(dice_weight=0, reduction="none")(labels, probs, weights)
    np.testing.assert_allclose(ops.convert_to_numpy(none), expected, rtol=1e-5)
    assert value(DiceCELoss(dice_weight=0, reduction="sum"), labels, probs, weights) == \
        pytest.approx(expected.sum(), rel=1e-5)
    # the default pools the batch instead
    assert value(DiceCELoss(dice_weight=0), labels, probs, weights) == pytest.approx(
        pixels.sum() / counts.sum(), rel=1e-5)


def test_focal_loss_with_ignored_labels_is_keras_focal_on_the_counted_pixels():
    labels, logits, probs, weights = ignored_batch()
    counted = labels != 255
    keras_focal = keras.losses.CategoricalFocalCrossentropy(alpha=0.25, gamma=2)
    one_hot = np.eye(3, dtype="float32")[labels[counted]]  # (154, 3): counted pixels only
    for w in (None, weights):
        expected = value(keras_focal, one_hot, probs[counted], None if w is None else w[counted])
        assert value(FocalLoss(gamma=2, alpha=0.25), labels, probs, w) == pytest.approx(
            expected, rel=1e-5)
        assert value(FocalLoss(gamma=2, alpha=0.25, from_logits=True), labels, logits, w) == \
            pytest.approx(expected, rel=1e-5)


def test_all_pixels_ignored():
    labels, _, probs, _ = ignored_batch()
    labels[0] = 255  # image 0 entirely unlabelled: 0, not NaN, and out of the pool
    none = ops.convert_to_numpy(DiceCELoss(dice_weight=0, reduction="none")(labels, probs))
    assert none[0] == 0.0 and np.isfinite(none).all()
    assert value(DiceCELoss(dice_weight=0), labels, probs) == pytest.approx(
        value(KERAS_CE, labels, probs), rel=1e-5)
    everything = np.full_like(labels, 255)
    for loss in ALL_LOSSES:
        assert value(loss(), everything, probs) == 0.0
    assert value(KERAS_CE, everything, probs) == 0.0


def test_evaluate_with_ignored_labels_matches_keras():
    """Inside model.evaluate (a traced graph, unknown batch size) too."""
    from keras_unet.training import compile_unet

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.random((4, 16, 16, 1)).astype("float32")
    labels = (images[..., 0] * 3).astype("int32")
    labels[0, :8] = 255
    labels[2, :, :3] = 255
    model = compile_unet(build_unet((16, 16, 1), 3, depth=2, filters=4), loss="cross_entropy",
                         metrics=[])
    evaluated = model.evaluate(images, labels, batch_size=4, verbose=0)
    assert evaluated == pytest.approx(
        value(KERAS_CE, labels, model.predict(images, verbose=0)), rel=1e-4)


_BACKEND_SCRIPT = """
import json, sys, numpy as np, keras
from keras import ops
from keras_unet.losses import DiceCELoss, FocalLoss
arrays = json.loads(sys.stdin.read())
labels, logits, weights, multilabel, multilabel_logits = (np.array(a) for a in arrays)
multilabel = multilabel.astype("float32")
values = [ops.convert_to_numpy(loss(labels, logits, weights)).tolist() for loss in (
    DiceCELoss(from_logits=True), FocalLoss(from_logits=True),
    DiceCELoss(dice_weight=0, from_logits=True, reduction="none"))]
values += [float(ops.convert_to_numpy(loss(multilabel, multilabel_logits))) for loss in (
    DiceCELoss(from_logits=True), FocalLoss(from_logits=True))]
refused = []
for soft in (np.full((1, 4, 4, 1), 0.5, "float32"), ops.full((1, 4, 4, 1), 0.5)):
    try:
        DiceCELoss()(soft, np.full((1, 4, 4, 1), 0.5, "float32"))
    except ValueError as error:
        refused.append(str(error))
traced = None  # a JAX trace: checked by shape and dtype only
if keras.backend.backend() == "jax":
    import jax
    traced = float(jax.jit(lambda t, p: DiceCELoss(dice_weight=0)(t, p))(
        np.full((1, 4, 4, 1), 0.5, "float32"), np.full((1, 4, 4, 1), 0.5, "float32")))
print(json.dumps({"backend": keras.backend.backend(), "values": values, "refused": refused,
                  "traced": traced}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_losses_on_other_backends(backend):
    import json
    import os
    import subprocess
    import sys

    labels, logits, _, weights = ignored_batch()
    multilabel, multilabel_logits, _, _ = multilabel_batch()
    arrays = json.dumps([a.tolist() for a in (labels, logits, weights, multilabel,
                                              multilabel_logits)])
    done = subprocess.run([sys.executable, "-c", _BACKEND_SCRIPT], input=arrays,
                          env=dict(os.environ, KERAS_BACKEND=backend), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    here = [ops.convert_to_numpy(loss(labels, logits, weights)) for loss in (
        DiceCELoss(from_logits=True), FocalLoss(from_logits=True),
        DiceCELoss(dice_weight=0, from_logits=True, reduction="none"))]
    here += [value(loss, multilabel, multilabel_logits) for loss in (
        DiceCELoss(from_logits=True), FocalLoss(from_logits=True))]
    for theirs, ours in zip(result["values"], here):
        np.testing.assert_allclose(theirs, ours, rtol=1e-5)
    with pytest.raises(ValueError) as expected:
        images.as_mask(np.full((1, 4, 4, 1), 0.5), "y_true", "binary", batch=True)
    assert result["refused"] == [str(expected.value)] * 2  # NumPy and the backend's tensor
    assert result["traced"] == (None if backend == "torch" else pytest.approx(-np.log(0.5)))


def test_nan_predictions_propagate():
    # documented: NaN in the output gives a NaN loss (TerminateOnNaN stops training)
    pred = PRED.copy()
    pred[0, 0, 0, 0] = np.nan
    assert np.isnan(value(DiceLoss(), TRUTH, pred))


@pytest.mark.parametrize(
    "truth, pred_shape, message",
    [
        (np.zeros((1, 8, 8, 1)), (1, 6, 6, 1),
         r"mask shape \(1, 8, 8, 1\) does not fit the output shape \(1, 6, 6, 1\): expected "
         r"\(1, 6, 6\) or \(1, 6, 6, 1\) \(crop the masks of a valid-padding model"),
        (np.zeros((1, 8, 8, 3), int), (1, 8, 8, 3),  # one-hot integers: not multilabel
         r"y_true must have the shape \(N, H, W\) or \(N, H, W, 1\), or \(N, H, W, labels\) of "
         r"0/1 floats"),
        (np.zeros((1, 8, 8, 2)), (1, 8, 8, 3), "has 2 channels for the output shape"),
        (np.zeros((1, 8, 8, 2)), (1, 8, 8, 1), r"\(1, 8, 8, 1\); expected 1$"),
        (np.zeros((1, 8)), (1, 8, 8, 2), r"mask shape \(1, 8\) does not fit the output shape"),
        (np.zeros((8, 8)), (8, 8), "y_pred must be"),
    ],
)
def test_shape_errors(truth, pred_shape, message):
    with pytest.raises(ValueError, match=message):
        DiceLoss()(truth, np.zeros(pred_shape, "float32"))


def test_bad_arguments():
    with pytest.raises(ValueError, match="gamma must be a finite number > 0; got 0"):
        TverskyLoss(gamma=0)
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0; got -1"):
        TverskyLoss(alpha=-1)
    with pytest.raises(ValueError, match="gamma must be a finite number >= 0; got -1"):
        FocalLoss(gamma=-1)
    with pytest.raises(ValueError, match="class_weights has 2 entries for 3 output classes"):
        DiceLoss(class_weights=[1, 1])(np.zeros((1, 2, 2)), np.full((1, 2, 2, 3), 1 / 3))
    with pytest.raises(ValueError, match="sample_weight of shape"):
        DiceLoss()(TRUTH, PRED, np.ones((1, 2, 2, 2)))


@pytest.mark.parametrize("loss_class", ALL_LOSSES)
def test_serialization_round_trip(loss_class):
    loss = loss_class(from_logits=True)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(again) is loss_class and again.get_config() == loss.get_config()
    assert value(again, TRUTH, PRED) == pytest.approx(value(loss, TRUTH, PRED))


def test_fit_valid_padding_model_with_pixel_weights():
    """The weight map reaches the loss through sample_weight, masks and weights cropped."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.random((4, 44, 44, 1)).astype("float32")
    out = output_size(44, 2, "valid")
    border = (44 - out) // 2
    masks = (images[:, border:-border, border:-border] > 0.5).astype("float32")
    weights = rng.uniform(1, 10, (4, out, out)).astype("float32")
    model = build_unet((44, 44, 1), 1, depth=2, filters=4, padding="valid", dropout=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=DiceCELoss())
    evaluated = model.evaluate(images, masks, sample_weight=weights, batch_size=4, verbose=0)
    by_hand = value(DiceCELoss(), masks, model.predict(images, verbose=0), weights)
    assert evaluated == pytest.approx(by_hand, rel=1e-4)
    unweighted = model.evaluate(images, masks, batch_size=4, verbose=0)
    assert evaluated > 2 * unweighted  # weights averaging 5.5 scale the CE term
    history = model.fit(images, masks, sample_weight=weights, batch_size=4, epochs=5, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0] and np.isfinite(losses).all()


def test_losses_on_volumes_by_hand():
    # (N, D, H, W, 1): truth has 2 of 8 voxels; the prediction puts 0.8 on one of them and
    # 0.4 on a voxel of the other slice: TP 0.8, |T| 2, |P| 1.2
    truth = np.zeros((1, 2, 2, 2, 1), "float32")
    truth[0, 0, 0, :, 0] = 1
    pred = np.zeros((1, 2, 2, 2, 1), "float32")
    pred[0, 0, 0, 0, 0], pred[0, 1, 1, 1, 0] = 0.8, 0.4
    assert value(DiceLoss(smooth=0), truth, pred) == pytest.approx(1 - 1.6 / 3.2)
    assert value(JaccardLoss(smooth=0), truth, pred) == pytest.approx(1 - 0.8 / 2.4)
    # class indices (N, D, H, W): slice 1 is class 1; the output finds 2 of its 4 voxels
    # class 0: TP 4, |T| 4, |P| 6 -> 8/10; class 1: TP 2, |T| 4, |P| 2 -> 4/6
    labels = np.zeros((1, 2, 2, 2), "int32")
    labels[0, 1] = 1
    probs = np.zeros((1, 2, 2, 2, 2), "float32")
    probs[..., 0] = 1
    probs[0, 1, 0] = [0, 1]
    assert value(DiceLoss(smooth=0), labels, probs) == pytest.approx(1 - (0.8 + 4 / 6) / 2)
    with pytest.raises(ValueError, match=r"mask shape \(1, 2, 2, 3\) does not fit the output"):
        DiceLoss()(labels[..., :1].repeat(3, -1), probs)
