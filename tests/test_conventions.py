"""One convention for masks: every stage that takes a mask gives the verdict of
images.as_mask on the same array (accepted or refused) and, refused, the same text after
the argument's name. (Inference takes images and writes masks; it reads none: not here.)
The tensor form (losses, metrics) has no ignore_index argument: as Keras's ignore_class, a
class index beyond the output's classes is void there, so 255 is read as ignore_index=255."""

import re

import matplotlib
import numpy as np
import pytest
from PIL import Image

from keras_unet import data, evaluation, images, losses, metrics, viz, weights

matplotlib.use("Agg")

RNG = np.random.default_rng(0)
BINARY = RNG.random((8, 8)) > 0.5
CLASSES = RNG.integers(0, 3, (8, 8))
ARRAYS = {  # name: a mask array
    "bool": BINARY,
    "float 0/1": BINARY.astype(np.float32),
    "uint8 0/1/2": CLASSES.astype(np.uint8),
    "int64 0/255": BINARY.astype(np.int64) * 255,
    "uint8 0/255": BINARY.astype(np.uint8) * 255,
    "float with 0.5": np.where(BINARY, 0.5, 1.0),
    "NaN": np.where(BINARY, np.nan, 0.0),
    "negative ints": CLASSES - 1,
    "0/1/255": np.where(CLASSES == 2, 255, CLASSES),
    "(H, W, 3) int": np.stack([CLASSES] * 3, -1),
    "multilabel float": np.stack([BINARY, ~BINARY, BINARY], -1).astype(np.float32),
}


def _mode(array):
    """The mode as_mask infers (the kind of output each stage is given)."""
    if array.dtype.kind in "iu":
        return "multiclass"
    return "binary" if array.ndim == 2 or array.shape[-1] == 1 else "multilabel"


def _channels(array):
    return {"binary": 1, "multiclass": 4, "multilabel": array.shape[-1]}[_mode(array)]


def _output(array):
    """A model output for the mask: (1, H, W, C) probabilities."""
    return np.full((1, 8, 8, _channels(array)), 1 / _channels(array), np.float32)


def _prediction(array):
    """A prediction of the mask's kind, (H, W[, C])."""
    return np.zeros((8, 8, _channels(array)) if _mode(array) == "multilabel" else (8, 8),
                    np.int64 if _mode(array) == "multiclass" else np.float32)


def _png(array, tmp_path):
    """A PNG file of the array, where a gray PNG holds it: a one-channel integer or bool
    array of 0..255, not 0/255 (which a file means as binary)."""
    if array.dtype.kind not in "biu" or array.ndim != 2 or array.min() < 0 or array.max() > 255:
        pytest.skip("not a gray PNG")
    if array.dtype != bool and set(np.unique(array).tolist()) == {0, 255}:
        pytest.skip("0/255 in a file is a binary mask")
    path = tmp_path / "mask.png"
    Image.fromarray(array.astype(np.uint8) * (255 if array.dtype == bool else 1)).save(path)
    return images.read_mask(path, "binary" if array.dtype == bool else "multiclass")


def _multiclass(array):
    return {"n_classes": 4} if _mode(array) == "multiclass" else {}


STAGES = {  # name: (the modes it takes, a call with the mask)
    "images.as_mask": (None, lambda a, tmp: images.as_mask(a)),
    "data.make_dataset": (None, lambda a, tmp: data.make_dataset(
        np.zeros((1, 8, 8, 1), np.float32), a[None], batch_size=1, augment=False,
        shuffle=False, repeat=False, **_multiclass(a))),
    "weights.class_weight_map": (("binary", "multiclass"),
                                 lambda a, tmp: weights.class_weight_map(a)),
    "weights.border_weight_map": (("binary", "multiclass"),
                                  lambda a, tmp: weights.border_weight_map(a)),
    "losses": (None, lambda a, tmp: losses.DiceLoss()(a[None], _output(a))),
    "metrics": (None, lambda a, tmp: metrics.DiceCoefficient(_channels(a)).update_state(
        a[None], _output(a))),
    "evaluation.dice": (None, lambda a, tmp: evaluation.dice(
        a, _prediction(a), **_multiclass(a),
        **({"mode": "multilabel"} if _mode(a) == "multilabel" else {}))),
    "viz.show_predictions": (None, lambda a, tmp: viz.show_predictions(
        np.zeros((1, 8, 8, 1), np.float32), a[None], n=1,
        mode="multilabel" if _mode(a) == "multilabel" else None)),
    "read_mask of a PNG": (("binary", "multiclass"), lambda a, tmp: _png(a, tmp)),
}


TENSOR_FORM = {"losses", "metrics"}


def _refusal(call):
    """The text of the ValueError that ``call`` raises, or None if it raises none."""
    try:
        call()
    except ValueError as error:
        return str(error)
    finally:
        matplotlib.pyplot.close("all")
    return None


@pytest.mark.parametrize("stage", sorted(STAGES))
@pytest.mark.parametrize("case", sorted(ARRAYS))
def test_every_stage_reads_a_mask_as_as_mask_does(stage, case, tmp_path):
    array, (modes, call) = ARRAYS[case], STAGES[stage]
    if modes is not None and _mode(array) not in modes:
        pytest.skip(f"{stage} takes {' or '.join(modes)} masks")
    void = {"ignore_index": 255} if stage in TENSOR_FORM and 255 in array else {}
    expected = [_refusal(lambda: images.as_mask(array, "NAME", **void)),  # a stage may read
                _refusal(lambda: images.as_mask(array[None], "NAME", batch=True, **void))]
    got = _refusal(lambda: call(array, tmp_path))
    if expected[0] is None:
        assert got is None, f"{stage} refuses what as_mask accepts: {got}"
        return
    assert got is not None, f"{stage} accepts what as_mask refuses: {expected[0]}"
    texts = [re.sub("^NAME ", "", text) for text in expected]
    assert any(text in got for text in texts), f"{stage}: {got!r}, expected {texts[0]!r}"
