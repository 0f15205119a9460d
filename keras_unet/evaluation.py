"""Offline scores on NumPy arrays: overlap, vessel-map and ISBI 2012 scores.

Everything here takes finished predictions as NumPy arrays (no Keras, no tensors) and
uses only numpy, scipy and scikit-image. The training-time Keras metrics live in
``keras_unet.metrics``.

Conventions, as everywhere in the package:

- a binary mask holds 0 and 1 (``bool`` is fine), any shape: ``(H, W)``, ``(H, W, 1)``
  or a batch ``(N, H, W[, 1])``. A 0/255 mask is refused: divide it by 255 first.
- a multi-class mask holds integer class indices ``0 .. n_classes - 1``.
- probabilities are floats in ``[0, 1]``; they are binarised with ``p > threshold``
  (strictly greater, as Keras's binary metrics and the ISBI challenge do).
- a trailing channel axis of size 1 may be present on one side and not the other.

Scores pool every pixel they are given: a batch is scored as one big image (micro
average). Score images one by one for a per-image mean. When a score's denominator is
empty (say Dice of an empty truth against an empty prediction) the score is 1.0, not
NaN: nothing was there to find and nothing was found. An empty truth against a
prediction that is not empty scores 0.0 (Dice, IoU and F1 alike). The ISBI V_rand and
V_info of an image with no cell in its truth follow the same rule: 1.0 if the proposal
is empty too, else 0.0. No score returns NaN or lets NumPy warn.

Binary masks and class-index masks do not mix: a binary prediction (bool, or floats in
[0, 1]) against a truth of class indices above 1, or the reverse, is an error
(:func:`check_same_kind`), not a score over the wrong classes.

The ISBI 2012 challenge scores (``isbi_pixel_error``, ``isbi_scores``) follow the
challenge's own Fiji code, ``fiji/Trainable_Segmentation``,
``src/main/java/trainableSegmentation/metrics/`` (``PixelError.java``,
``RandError.java``, ``VariationOfInformation.java``) and
``src/main/java/trainableSegmentation/utils/WatershedTransform2D.java``, run as the
challenge's scripts run them; see each function for the details.
"""

import numbers
import re
from collections import deque

import numpy as np
from scipy import ndimage
from scipy.stats import rankdata
from skimage.metrics import contingency_table

from keras_unet.images import mask_classes, pair_files, read_mask


def _fiji_thresholds():
    """The thresholds of the challenge scripts' loop ``for (th = 0.0; th <= 1.0;
    th += 0.1)``: eleven values, the last one 0.9999999999999999 by float rounding."""
    thresholds, th = [], 0.0
    while th <= 1.0:
        thresholds.append(th)
        th += 0.1
    return np.array(thresholds)


#: The probability thresholds the ISBI 2012 scripts sweep (0.0, 0.1, ..., 1.0 as
#: accumulated in floating point by Fiji; 11 values).
ISBI_THRESHOLDS = _fiji_thresholds()

# States of the border pixels while the proposal is flooded (labels are > 0, lines 0).
_OUTSIDE, _UNREACHED, _QUEUED = -3, -1, -2


# ---------------------------------------------------------------------- arguments


def check_numeric(value, argument):
    """``value`` as a non-empty numeric (or bool) array without NaN, else a ValueError
    naming ``argument``: the one array check of the scores and of :mod:`keras_unet.viz`.

    Example:
        >>> check_numeric([0, 1], "prediction").tolist()
        [0, 1]
        >>> check_numeric([0.5, float("nan")], "prediction")
        Traceback (most recent call last):
        ValueError: prediction contains 1 NaN value(s)
    """
    array = np.asarray(value)
    if array.dtype != bool and not (np.issubdtype(array.dtype, np.integer)
                                    or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{argument} must be a numeric array; got dtype {array.dtype}")
    if array.size == 0:
        raise ValueError(f"{argument} is empty (shape {array.shape})")
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError(f"{argument} contains {int(np.isnan(array).sum())} NaN value(s)")
    return array


def _binary(value, argument):
    """A mask of 0 and 1 as a bool array."""
    array = check_numeric(value, argument)
    if array.dtype != bool:
        bad = np.setdiff1d(np.unique(array), [0, 1])
        if bad.size:
            shown = ", ".join(f"{v:g}" for v in bad[:5]) + (", ..." if bad.size > 5 else "")
            classes = array.dtype.kind in "iu" and bad.max() < 255
            raise ValueError(
                f"{argument} must be a binary mask of 0 and 1; found {shown}"
                + (" (a 0/255 mask needs mask // 255)" if 255 in bad else "")
                + (" (class indices? pass n_classes=)" if classes else "")
            )
    return array.astype(bool)


def _probabilities(value, argument):
    """Values in [0, 1] (probabilities, or a 0/1 mask)."""
    array = check_numeric(value, argument)
    low, high = array.min(), array.max()
    if low < 0 or high > 1:
        classes = array.dtype.kind in "iu" and low >= 0
        raise ValueError(
            f"{argument} must lie in [0, 1]; found values from {low:g} to {high:g}"
            + (" (class indices? pass n_classes=)" if classes else "")
        )
    return array


def _class_indices(value, argument, n_classes):
    """Integer class indices in [0, n_classes) as an int64 array."""
    array = check_numeric(value, argument)
    if array.dtype == bool:
        array = array.astype(np.int64)
    bad = array[(array < 0) | (array >= n_classes) | (array != np.round(array))]
    if bad.size:
        raise ValueError(
            f"{argument} must hold integer class indices in [0, {n_classes}); "
            f"found {np.unique(bad)[:5].tolist()}"
        )
    return array.astype(np.int64)


def _threshold(value, argument="threshold"):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{argument} must be a number in [0, 1]; got {value!r}")
    return np.float64(value)  # compared in float64 (a Python float would be cast to float32)


def _thresholds(thresholds):
    try:
        array = np.asarray(thresholds, dtype=float).ravel()
    except (TypeError, ValueError):
        array = np.array([np.nan])
    if array.size == 0 or not np.all((array >= 0) & (array <= 1)):  # NaN fails too
        raise ValueError(
            f"thresholds must be a non-empty sequence of numbers in [0, 1]; got {thresholds!r}"
        )
    return array


def _n_classes(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
        raise ValueError(
            f"n_classes must be an integer >= 2, or None for a binary mask; got {value!r}"
        )
    return int(value)


def _drop_channel(array):
    return array[..., 0] if array.ndim >= 3 and array.shape[-1] == 1 else array


def _same_shape(truth, other, argument):
    """``truth`` and ``other`` with equal shapes, a trailing channel of 1 allowed."""
    if truth.shape == other.shape:
        return truth, other
    if truth.shape == other.shape + (1,):
        return truth[..., 0], other
    if other.shape == truth.shape + (1,):
        return truth, other[..., 0]
    raise ValueError(
        f"truth and {argument} must have the same shape; got {truth.shape} and {other.shape}"
    )


def _binary_pair(truth, prediction, argument, threshold):
    """The truth and the binarised prediction as bool arrays of one shape."""
    truth = _binary(truth, "truth")
    prediction = _probabilities(prediction, argument)
    truth, prediction = _same_shape(truth, prediction, argument)
    return truth, prediction > threshold


def _field_of_view(mask, truth):
    """A bool selector of the pixels to score (all of them when ``mask`` is None)."""
    if mask is None:
        return np.ones(truth.shape, bool)
    fov = _binary(mask, "mask")
    _, fov = _same_shape(truth, fov, "mask")
    if not fov.any():
        raise ValueError("mask selects no pixel: it must hold 1 inside the field of view")
    return fov


# ------------------------------------------------------------- overlap scores


def _ratio(numerator, denominator):
    """``numerator / denominator``, or 1.0 when both are empty (0 / 0)."""
    return 1.0 if denominator == 0 else float(numerator / denominator)


def _foreground_dice(truth, prediction):
    """Dice of two bool masks."""
    both = int(np.count_nonzero(truth & prediction))
    return _ratio(2 * both, int(np.count_nonzero(truth)) + int(np.count_nonzero(prediction)))


def _kind(array):
    """``"binary"`` (bool, or floats in [0, 1]), ``"classes"`` (integers above 1, or
    floats above 1) or ``"either"`` (integers 0 and 1) of a checked numeric array."""
    if array.dtype == bool:
        return "binary"
    low, high = array.min(), array.max()
    if array.dtype.kind == "f" and 0 <= low and high <= 1:
        return "binary"
    return "either" if array.dtype.kind in "iu" and 0 <= low and high <= 1 else "classes"


def check_same_kind(truth, prediction):
    """Refuse to score a binary mask against class indices, or the reverse.

    A binary mask is bool or floats in [0, 1] (a 0/1 mask, or probabilities: what a
    sigmoid model predicts and ``read_mask`` gives for binary masks); class indices
    are integers (what a softmax model's arg-max and ``read_mask`` give for class
    masks). Integer masks of 0 and 1 only go with either. :func:`dice`,
    :func:`iou` and :func:`pixel_error` call this with ``n_classes`` (without it, a
    truth or prediction that is not binary is refused, with the advice to pass
    ``n_classes``); a front end that reads mask files can call it first, for a
    message about the files.

    Raises:
        ValueError: if one is binary and the other holds class indices above 1, saying
            which is which.

    Example:
        >>> check_same_kind(np.array([0, 1, 1]), np.array([0.2, 0.9, 0.7]))  # fine
        >>> check_same_kind(np.array([0, 3, 2]), np.array([0.0, 1.0, 1.0]))
        Traceback (most recent call last):
        ...
        ValueError: truth holds class indices (0, 2, 3) but prediction is a binary mask (float64 in [0, 1]): score a binary prediction against binary truths and class indices against class indices
    """
    kinds = {}
    for argument, value in (("truth", truth), ("prediction", prediction)):
        array = check_numeric(value, argument)
        kind = _kind(array)
        if kind == "classes":
            values = np.unique(array)
            shown = ", ".join(f"{v:g}" for v in values[:5]) + (", ..." if values.size > 5 else "")
            kinds[argument] = kind, f"holds class indices ({shown})"
        elif kind == "binary":
            kinds[argument] = kind, f"is a binary mask ({array.dtype} in [0, 1])"
    if len({kind for kind, _ in kinds.values()}) == 2:
        raise ValueError(
            f"truth {kinds['truth'][1]} but prediction {kinds['prediction'][1]}: score a "
            f"binary prediction against binary truths and class indices against class indices"
        )


def _confusion(truth, prediction, n_classes):
    """``counts[i, j]``: pixels of true class i predicted as class j."""
    flat = n_classes * truth.ravel().astype(np.int64) + prediction.ravel()
    return np.bincount(flat, minlength=n_classes**2).reshape(n_classes, n_classes)


def _counts(truth, prediction, n_classes, threshold):
    """Confusion counts of a binary (``n_classes=None``: 2x2) or multi-class prediction."""
    if n_classes is None:
        threshold = _threshold(threshold)
        truth, prediction = _binary_pair(truth, prediction, "prediction", threshold)
        return _confusion(truth, prediction, 2)
    n_classes = _n_classes(n_classes)
    truth = _class_indices(truth, "truth", n_classes)
    prediction = check_numeric(prediction, "prediction")
    if (prediction.dtype.kind == "f" and prediction.shape != truth.shape
            and prediction.shape[-1] == n_classes):  # probabilities per class
        prediction = _probabilities(prediction, "prediction").argmax(axis=-1)
    else:
        check_same_kind(truth, prediction)
        prediction = _class_indices(prediction, "prediction", n_classes)
    truth, prediction = _same_shape(truth, prediction, "prediction")
    return _confusion(truth, prediction, n_classes)


def _overlap(truth, prediction, n_classes, threshold, kind):
    """Dice (``kind="dice"``) or IoU for the binary or the multi-class mode."""
    counts = _counts(truth, prediction, n_classes, threshold)
    hits = np.diag(counts)
    missed = counts.sum(axis=1) - hits  # false negatives of each class
    extra = counts.sum(axis=0) - hits  # false positives of each class
    scores = np.array([
        _ratio(2 * t, 2 * t + m + e) if kind == "dice" else _ratio(t, t + m + e)
        for t, m, e in zip(hits, missed, extra)
    ])
    if n_classes is None:
        return float(scores[1])  # the foreground class
    return {"per_class": scores, "mean": float(scores.mean())}


def dice(truth, prediction, *, n_classes=None, threshold=0.5):
    """Dice coefficient ``2 |T & P| / (|T| + |P|)`` of a prediction.

    Two modes, chosen by ``n_classes``:

    - binary (``n_classes=None``): ``truth`` is a 0/1 mask, ``prediction`` a 0/1 mask or
      probabilities of the foreground (binarised with ``p > threshold``). Returns a
      float, the Dice of the foreground.
    - multi-class (``n_classes >= 2``): ``truth`` holds class indices; ``prediction``
      holds class indices of the same shape, or per-class probabilities with a
      trailing axis of ``n_classes`` (the arg-max is taken). Returns
      ``{"per_class": array of n_classes floats, "mean": float}``; the mean is the
      plain mean over the classes.

    All pixels are pooled (a batch is one big image). A class that is absent from both
    truth and prediction scores 1.0.

    Raises:
        ValueError: on NaN, values outside {0, 1} / the classes / [0, 1], different
            shapes, or a bad ``n_classes`` / ``threshold``.

    Example:
        >>> truth = np.array([[1, 1, 0, 0]])
        >>> dice(truth, np.array([[0.9, 0.2, 0.7, 0.0]]))  # 2*1 / (2 + 2)
        0.5
        >>> scores = dice(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), n_classes=3)
        >>> scores["per_class"].round(3).tolist(), round(scores["mean"], 3)
        ([1.0, 0.667, 0.667], 0.778)
    """
    return _overlap(truth, prediction, n_classes, threshold, "dice")


def iou(truth, prediction, *, n_classes=None, threshold=0.5):
    """Intersection over union (Jaccard index) ``|T & P| / |T | P|`` of a prediction.

    Same arguments, modes and return types as :func:`dice` (a float for a binary mask,
    ``{"per_class": array, "mean": float}`` with ``n_classes``); an empty truth with an
    empty prediction scores 1.0. For one class, ``iou = dice / (2 - dice)``.

    Example:
        >>> truth = np.array([[1, 1, 0, 0]])
        >>> round(iou(truth, np.array([[0.9, 0.2, 0.7, 0.0]])), 4)  # 1 / 3
        0.3333
        >>> iou(np.zeros((2, 2)), np.zeros((2, 2)))  # nothing to find, nothing found
        1.0
    """
    return _overlap(truth, prediction, n_classes, threshold, "iou")


def pixel_error(truth, prediction, *, n_classes=None, threshold=0.5):
    """Fraction of misclassified pixels, ``1 - pixel accuracy``: the offline twin of
    the training metric ``keras_unet.metrics.PixelError``.

    Same arguments and modes as :func:`dice` (binary: 0/1 truth against a 0/1 mask or
    probabilities binarised with ``p > threshold``; multi-class with ``n_classes``).
    The ISBI 2012 challenge's "pixel error" is a different number, 1 - the best
    F-score over thresholds: :func:`isbi_pixel_error`.

    Example:
        >>> truth = np.array([[1, 1, 0, 0]])
        >>> pixel_error(truth, np.array([[0.9, 0.2, 0.7, 0.0]]))  # 2 of 4 wrong
        0.5
        >>> pixel_error(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), n_classes=3)
        0.25
    """
    counts = _counts(truth, prediction, n_classes, threshold)
    return float(1.0 - np.trace(counts) / counts.sum())


def isbi_pixel_error(probabilities, truth, *, thresholds=ISBI_THRESHOLDS):
    """The ISBI 2012 pixel error: 1 - the maximal F-score of pixel similarity.

    This is the challenge's definition, not the fraction of misclassified pixels
    (that one is :func:`pixel_error`, and the training metric
    ``keras_unet.metrics.PixelError``). For each threshold the
    probabilities are binarised with ``p > t`` and compared with the truth, the cell
    interiors (1) being the positive class; the F-score is
    ``2 TP / (2 TP + FP + FN)``, i.e. the Dice of the cell class, with precision or
    recall taken as 1 when there is no false positive or false negative. The error is
    1 minus the best F-score over ``thresholds``. Counts are summed over all images of
    a batch before the F-score (as Fiji sums them over the slices of a stack).

    Source: ``PixelError.getPixelErrorMaximalFScore(0.0, 1.0, 0.1)`` and
    ``ClassificationStatistics`` in ``fiji/Trainable_Segmentation``
    (``src/main/java/trainableSegmentation/metrics/``), called by the challenge's
    script (``imagej/imagej.github.io``,
    ``Segmentation_evaluation_metrics_-_Script.mw``); the challenge page lists it as
    "1 - the maximal F-score of pixel similarity". It is the pixel error of the
    challenge's leaderboard that the U-Net paper quotes (0.0611, Table 1).

    Args:
        probabilities: probabilities of the cell interior, in [0, 1].
        truth: 0/1 mask, 1 = cell interior (the ISBI masks' 255).
        thresholds: the thresholds to try (default: the challenge's 0.0, 0.1, ..., 1.0).

    Example:
        >>> truth = np.array([[1, 1, 0, 0]])
        >>> isbi_pixel_error(np.array([[0.9, 0.6, 0.4, 0.0]]), truth)  # perfect at 0.5
        0.0
        >>> p = np.array([[0.9, 0.2, 0.7, 0.0]])  # best at t = 0.1: [1, 1, 1, 0], F = 4/5
        >>> round(isbi_pixel_error(p, truth), 4), isbi_pixel_error(p, truth, thresholds=[0.5])
        (0.2, 0.5)
    """
    thresholds = _thresholds(thresholds)
    truth, probabilities = _isbi_pair(truth, probabilities)
    return 1.0 - max(_foreground_dice(truth, probabilities > t) for t in thresholds)


# --------------------------------------------------------------- vessel maps


def precision_recall_f1(truth, prediction, threshold=0.5, mask=None):
    """Precision, recall (sensitivity) and F1 of a binary prediction, e.g. a vessel map.

    ``prediction`` (a 0/1 mask or probabilities, binarised with ``p > threshold``) is
    compared with the 0/1 ``truth``; only the pixels where ``mask`` is 1 count (the
    field of view of a retina image; all pixels when ``mask`` is None).

    Returns ``{"precision": TP / (TP + FP), "recall": TP / (TP + FN),
    "f1": 2 TP / (2 TP + FP + FN)}``. A ratio with nothing in its denominator is 1.0:
    no positive predicted means no false positive (precision 1.0), no positive to find
    means nothing missed (recall 1.0). F1 is the harmonic mean of the two and equals
    the :func:`dice` of the foreground.

    Example:
        >>> truth = np.array([[1, 1, 0, 0], [1, 0, 0, 0]])
        >>> prediction = np.array([[0.8, 0.1, 0.9, 0.0], [0.7, 0.0, 0.0, 0.0]])
        >>> precision_recall_f1(truth, prediction)  # TP 2, FP 1, FN 1
        {'precision': 0.666..., 'recall': 0.666..., 'f1': 0.666...}
        >>> fov = np.array([[1, 1, 0, 1], [1, 1, 1, 1]])  # the false positive is outside
        >>> precision_recall_f1(truth, prediction, mask=fov)
        {'precision': 1.0, 'recall': 0.666..., 'f1': 0.8}
    """
    truth, prediction = _binary_pair(truth, prediction, "prediction", _threshold(threshold))
    fov = _field_of_view(mask, truth)
    truth, prediction = truth[fov], prediction[fov]
    tp = int(np.count_nonzero(truth & prediction))
    fp = int(np.count_nonzero(prediction)) - tp
    fn = int(np.count_nonzero(truth)) - tp
    return {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn)}


def _scored_pixels(truth, probabilities, mask, score):
    """The truth (bool) and probabilities of the pixels ``mask`` selects, flat, with
    positives and negatives among them (else ``score`` is undefined)."""
    truth = _binary(truth, "truth")
    probabilities = _probabilities(probabilities, "probabilities")
    truth, probabilities = _same_shape(truth, probabilities, "probabilities")
    fov = _field_of_view(mask, truth)
    truth, probabilities = truth[fov], probabilities[fov]
    n_pos = int(np.count_nonzero(truth))
    if n_pos == 0 or n_pos == truth.size:
        which = "positive" if n_pos else "negative"
        raise ValueError(
            f"{score} needs positive and negative truth pixels; every scored pixel is {which}"
        )
    return truth, probabilities


def roc_auc(truth, probabilities, mask=None):
    """Area under the ROC curve of probabilities against a 0/1 truth.

    Computed exactly from ranks (the Mann-Whitney U statistic): the probability that a
    random positive pixel scores higher than a random negative one, ties counting one
    half. Only the pixels where ``mask`` is 1 count (the field of view; all pixels when
    ``mask`` is None).

    Raises:
        ValueError: if the scored pixels are all positive or all negative (the AUC is
            then undefined), besides the usual argument checks.

    Example:
        >>> truth = np.array([0, 0, 1, 1])
        >>> roc_auc(truth, np.array([0.1, 0.4, 0.35, 0.8]))  # 3 of 4 pairs ordered
        0.75
        >>> roc_auc(truth, np.array([0.1, 0.4, 0.4, 0.8]))  # the tie counts 1/2
        0.875
    """
    truth, probabilities = _scored_pixels(truth, probabilities, mask, "roc_auc")
    n_pos = int(np.count_nonzero(truth))
    n_neg = truth.size - n_pos
    ranks = rankdata(probabilities)  # average ranks: ties share them
    u = ranks[truth].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def roc_curve(truth, probabilities, mask=None):
    """The ROC curve of probabilities against a 0/1 truth, exactly: one point per
    distinct probability.

    As the threshold falls through the distinct probabilities, a pixel is called
    positive when ``p >= threshold``; each point is the false-positive rate (negatives
    called positive) and the true-positive rate (positives found) at one threshold. The
    curve starts at (0, 0) (threshold ``inf``) and ends at (1, 1); the area under it is
    :func:`roc_auc`. Only the pixels where ``mask`` is 1 count.

    Returns:
        ``{"fpr", "tpr", "thresholds"}``: float64 arrays of one length, thresholds
        falling. The point of the package's usual binarisation ``p > t`` is the last
        one whose threshold is above ``t``.

    Raises:
        ValueError: as :func:`roc_auc`.

    Example:
        >>> curve = roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
        >>> curve["fpr"].tolist(), curve["tpr"].tolist()
        ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
        >>> curve["thresholds"].tolist()
        [inf, 0.8, 0.4, 0.35, 0.1]
    """
    truth, probabilities = _scored_pixels(truth, probabilities, mask, "roc_curve")
    order = np.argsort(probabilities, kind="stable")[::-1]
    ranked, hits = probabilities[order].astype(np.float64), truth[order]
    last = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]  # end of each tie run
    true_pos = np.cumsum(hits)[last]
    false_pos = (last + 1) - true_pos
    return {
        "fpr": np.r_[0.0, false_pos / false_pos[-1]],
        "tpr": np.r_[0.0, true_pos / true_pos[-1]],
        "thresholds": np.r_[np.inf, ranked[last]],
    }


# ------------------------------------------------------------- ISBI 2012 scores


def flood_proposal(foreground):
    """Label a binary proposal as the ISBI 2012 scripts do before V_rand and V_info.

    The 4-connected components of ``foreground`` (the proposed cells) are grown into
    the background (the proposed membranes) until they meet, leaving 1-pixel-wide
    watershed lines (label 0) where two cells meet: the challenge's "border thinning".

    This is the classic watershed (Soille and Vincent) of
    ``WatershedTransform2D(binaryProposal, 4)`` in ``fiji/Trainable_Segmentation``
    (``src/main/java/trainableSegmentation/utils/WatershedTransform2D.java``) on the
    inverted binary proposal, reproduced pixel for pixel: membrane pixels are flooded
    breadth-first from the cells, in Fiji's order (column by column; neighbours left,
    up, right, down); a pixel takes the label of its already flooded neighbours, or
    becomes a line if they carry two different labels or are all lines. With no
    foreground at all, the whole image is one segment (label 1).
    skimage.segmentation.watershed(..., watershed_line=True) puts some lines elsewhere.

    Returns:
        int array of ``foreground``'s shape (2-D): cells 1..k, watershed lines 0.

    Example:
        >>> flood_proposal(np.array([[1, 1, 0, 0, 1, 1]])).tolist()  # line on the right
        [[1, 1, 1, 0, 2, 2]]
    """
    foreground = _binary(foreground, "foreground")
    if foreground.ndim != 2:
        raise ValueError(f"foreground must be a 2-D image; got shape {foreground.shape}")
    labels, count = ndimage.label(foreground)  # 4-connected components
    if count == 0:
        return np.ones(labels.shape, labels.dtype)
    # Fiji scans x (columns) in the outer loop: on the transpose, C order is Fiji's
    # order. A one-pixel frame keeps every neighbour inside the array.
    grid = np.pad(labels.T, 1, constant_values=_OUTSIDE)
    grid[grid == 0] = _UNREACHED
    row = grid.shape[1]
    offsets = (-row, -1, row, 1)  # (x-1, y), (x, y-1), (x+1, y), (x, y+1)
    cells = grid.ravel()
    near_cell = np.zeros(cells.shape, bool)
    for offset in offsets:
        near_cell |= np.roll(cells, -offset) > 0
    start = np.flatnonzero((cells == _UNREACHED) & near_cell)
    cells = cells.tolist()  # plain lists: ~10x faster than indexing an array here
    for p in start:
        cells[p] = _QUEUED
    queue = deque(start.tolist())
    while queue:
        p = queue.popleft()
        label, clash = _QUEUED, False
        for offset in offsets:
            q = p + offset
            value = cells[q]
            if value > 0:  # a flooded cell
                if label <= 0 and not clash:
                    label = value
                elif label > 0 and label != value:
                    label, clash = 0, True  # two cells meet: a line for good
            elif value == 0:  # a line: a line too, unless a cell comes next
                if label == _QUEUED:
                    label = 0
            elif value == _UNREACHED:
                cells[q] = _QUEUED
                queue.append(q)
        cells[p] = label
    grid = np.array(cells, dtype=labels.dtype).reshape(grid.shape)
    return grid[1:-1, 1:-1].T


def _entropy(counts, n, singletons=0):
    """Entropy of a partition of n pixels into ``counts`` plus ``singletons`` pixels
    that are each a segment of their own."""
    q = counts[counts > 0] / n
    return float(-(q * np.log(q)).sum() + singletons / n * np.log(n))


def _rand_and_info(cells, segments):
    """Foreground-restricted V_rand and V_info of one image (Fiji's N^2 versions).

    ``cells``: labelled truth (0 = membrane); ``segments``: flooded proposal (0 = line).
    Only the truth's cell pixels count; there, each proposal line pixel is a segment of
    its own (the ``p_i0 / n`` terms of Fiji's code).
    """
    inside = cells > 0
    n = int(inside.sum())
    table = contingency_table(cells[inside], segments[inside], sparse_type="array")
    sizes = np.asarray(table.sum(axis=1)).ravel().astype(np.int64)  # truth cells (t_k)
    lines = int(table[:, [0]].sum())  # proposal line pixels inside the cells
    joint = table[:, 1:]
    overlaps = joint.data.astype(np.int64)  # p_ij
    proposed = np.asarray(joint.sum(axis=0)).ravel().astype(np.int64)  # s_k
    sum_joint = overlaps @ overlaps + lines
    sum_truth = sizes @ sizes
    sum_proposed = proposed @ proposed + lines
    v_rand = 2 * sum_joint / (sum_truth + sum_proposed)
    h_truth = _entropy(sizes, n)
    h_proposed = _entropy(proposed, n, lines)
    h_joint = _entropy(overlaps, n, lines)
    if h_truth == 0 or h_proposed == 0:  # one segment on a side: Fiji scores 0
        return float(v_rand), 0.0
    mutual = h_truth + h_proposed - h_joint
    return float(v_rand), float(2 * mutual / (h_truth + h_proposed))


def _isbi_pair(truth, probabilities):
    """Checked truth (bool) and probabilities of one shape. The ISBI functions take
    ``(probabilities, truth)``: a truth with values strictly between 0 and 1 is a
    swapped call, and says so."""
    array = np.asarray(truth)
    if array.dtype.kind == "f" and ((array > 0) & (array < 1)).any():
        raise ValueError(
            "truth holds values between 0 and 1: it must be a 0/1 mask. The order is "
            "(probabilities, truth); were the arguments swapped?"
        )
    truth = _binary(truth, "truth")
    probabilities = _probabilities(probabilities, "probabilities")
    return _same_shape(truth, probabilities, "probabilities")


def _isbi_stack(truth, probabilities):
    """Truth and probabilities as (N, H, W) stacks of one shape."""
    truth, probabilities = _isbi_pair(truth, probabilities)
    truth, probabilities = _drop_channel(truth), _drop_channel(probabilities)
    if truth.ndim not in (2, 3):
        raise ValueError(
            "isbi_scores needs 2-D images: (H, W), (H, W, 1), (N, H, W) or "
            f"(N, H, W, 1); got shape {truth.shape}"
        )
    if truth.ndim == 2:
        truth, probabilities = truth[None], probabilities[None]
    return truth, probabilities


def isbi_scores(probabilities, truth, *, thresholds=ISBI_THRESHOLDS):
    """The ISBI 2012 challenge's scores: V_rand and V_info after border thinning, and
    the pixel error.

    Input convention: ``probabilities`` are the model's probabilities of the cell
    interior; ``truth`` is a 0/1 mask with 1 = cell interior (the ISBI masks' 255, so
    ``mask // 255``). Note the order, prediction first (a truth that is not 0/1 is an
    error that says so). That is the challenge's convention too: its code binarises truth
    and proposal alike (``value > t``) and takes the bright components as segments.
    Images are ``(H, W)`` or ``(H, W, 1)``, or a stack ``(N, H, W[, 1])``.

    What the challenge computed (``RandError.getMaximalVRandAfterThinning(0.0, 1.0,
    0.1, true)`` and ``VariationOfInformation.getMaximalVInfoAfterThinning(0.0, 1.0,
    0.1)`` of ``fiji/Trainable_Segmentation``, run by the script of
    ``imagej/imagej.github.io``,
    ``Segmentation_evaluation_after_border_thinning_-_Script.mw``), per image and
    threshold ``t``:

    1. the truth's cells are its 4-connected components of 1s (0 = membrane);
    2. the proposal is ``probabilities > t``; its 4-connected components are grown
       over the proposed membranes until they meet, leaving 1-pixel watershed lines
       (border thinning, :func:`flood_proposal`);
    3. only the truth's cell pixels count (foreground restriction); there, with
       ``p_ij`` the fraction of them in truth cell i and proposed segment j, and
       ``t_i``, ``s_j`` the marginals, each watershed-line pixel being a segment of
       its own,

       ``V_rand = sum p_ij^2 / (alpha sum s_j^2 + (1 - alpha) sum t_i^2)``,
       ``V_info = I(S; T) / (alpha H(S) + (1 - alpha) H(T))``, with ``alpha = 0.5``
       (the harmonic means of the split and merge scores). V_info is 0 when either
       side is a single segment (zero entropy), as in Fiji.

    An image whose truth has no cell pixel leaves nothing to restrict the scores to;
    there V_rand and V_info are 1.0 at a threshold whose proposal is empty too, else
    0.0 (the rule of :func:`dice` for empty masks), never NaN.

    Each score is averaged over the images of a stack at each threshold, and the best
    threshold is kept (separately for V_rand and V_info). Both are 1.0 for a perfect
    segmentation; merged or split cells lower them.

    Differences from ``skimage.metrics.adapted_rand_error(truth_labels, labels)``
    (scikit-image 0.26, ``skimage/metrics/_adapted_rand_error.py``): skimage returns
    the error ``1 - V_rand`` (with precision and recall) of two label images it is
    given; it counts pairs of distinct pixels, ``n_ij (n_ij - 1)``, where Fiji counts
    ``n_ij^2``; it treats the test image's label 0 as one big segment, where Fiji
    makes each of those pixels its own segment; and it does no connected-component
    labelling, no border thinning and no threshold sweep. Its default
    ``ignore_labels=(0,)`` is the same foreground restriction. (Its precision and
    recall are also swapped with respect to its docstring: scikit-image issue #6485.)

    Args:
        probabilities: probabilities of the cell interior, in [0, 1].
        truth: 0/1 mask, 1 = cell interior (an image without cells scores as above).
        thresholds: thresholds to try (default :data:`ISBI_THRESHOLDS`, the
            challenge's 0.0, 0.1, ..., 1.0; Fiji's "binary proposal" option is
            ``thresholds=[0.0]``).

    Returns:
        dict with ``"V_rand"``, ``"V_info"`` (floats, the best over the thresholds),
        ``"pixel_error"`` (:func:`isbi_pixel_error` over the same thresholds),
        ``"V_rand_threshold"``, ``"V_info_threshold"`` (where they were reached, the
        first one on a tie), ``"thresholds"`` and ``"V_rand_per_threshold"``,
        ``"V_info_per_threshold"`` (arrays).

    Example:
        >>> truth = np.array([[1, 1, 0, 1, 1],
        ...                   [1, 1, 0, 1, 1]])
        >>> scores = isbi_scores(truth.astype(float), truth)
        >>> scores["V_rand"], round(scores["V_info"], 12), scores["pixel_error"]
        (1.0, 1.0, 0.0)
        >>> merged = isbi_scores(np.ones((2, 5)), truth)  # the two cells made one
        >>> round(merged["V_rand"], 4), merged["V_info"]  # 2*32 / (32 + 64)
        (0.6667, 0.0)
        >>> empty = np.zeros((2, 5))  # no cell: right only where none is proposed
        >>> isbi_scores(empty, empty)["V_rand"]
        1.0
        >>> isbi_scores(np.ones((2, 5)), empty, thresholds=[0.5])["V_rand"]
        0.0
    """
    thresholds = _thresholds(thresholds)
    truth, probabilities = _isbi_stack(truth, probabilities)
    scores = np.zeros((len(thresholds), len(truth), 2))
    for i, (cell_mask, image) in enumerate(zip(truth, probabilities)):
        cells, _ = ndimage.label(cell_mask)
        last = None
        for k, t in enumerate(thresholds):
            foreground = image > t
            if last is None or not np.array_equal(foreground, last):
                last = foreground
                if cell_mask.any():
                    score = _rand_and_info(cells, flood_proposal(foreground))
                else:  # no cell to find: right only if none is proposed
                    score = (0.0, 0.0) if foreground.any() else (1.0, 1.0)
            scores[k, i] = score
    v_rand, v_info = scores.mean(axis=1).T
    best_rand, best_info = int(np.argmax(v_rand)), int(np.argmax(v_info))
    return {
        "pixel_error": isbi_pixel_error(probabilities, truth, thresholds=thresholds),
        "V_rand": float(v_rand[best_rand]),
        "V_info": float(v_info[best_info]),
        "V_rand_threshold": float(thresholds[best_rand]),
        "V_info_threshold": float(thresholds[best_info]),
        "thresholds": thresholds,
        "V_rand_per_threshold": v_rand,
        "V_info_per_threshold": v_info,
    }


# ------------------------------------------------------------- folders of masks


def _read_pairs(pairs):
    """``[path, prediction, truth]`` of each pair of mask files; a folder holding class
    indices anywhere reads its 0/1 masks as the classes 0 and 1 too."""
    loaded = [[p, read_mask(p), read_mask(t)] for p, t in pairs]
    for side in (1, 2):  # predictions, truths
        if any(row[side].dtype != np.float32 for row in loaded):
            for row in loaded:
                row[side] = row[side].astype(np.int64)
    return loaded


def evaluate_folders(predictions_dir, truths_dir, *, classes=None):
    """Score predicted mask files against true ones, matched by file stem.

    Returns a list of rows ``{"name", "dice", "iou", "pixel_error"[, "V_rand"]}``, one
    per image (V_rand for binary masks, at threshold 0.5), and their mean
    ``{"name": "mean", ...}``. A binary prediction against class-index truths (or the
    reverse) is refused (:func:`check_same_kind`), and so are class values at or above
    ``classes``; an empty true mask scores V_rand 1.0 if nothing is predicted, else 0.0.
    Mask values that do not read as a mask raise :class:`keras_unet.images.MaskValuesError`.
    """
    pairs = pair_files(predictions_dir, truths_dir, names=("predictions", "truths"),
                       unmatched=("predictions without a true mask",
                                  "true masks without a prediction"))
    loaded = _read_pairs(pairs)
    for (path, pred, truth), (_, truth_path) in zip(loaded, pairs):
        if pred.shape != truth.shape:
            raise ValueError(f"{path.name}: the prediction is {pred.shape[:2]} but the true "
                             f"mask is {truth.shape[:2]}")
        try:
            check_same_kind(truth, pred)
        except ValueError as error:
            raise ValueError(f"{path} against {truth_path}: the {error}") from None
    binary = all(pred.dtype == np.float32 and truth.dtype == np.float32
                 for _, pred, truth in loaded)
    n_classes = None
    if not binary:
        masks = [m for _, pred, truth in loaded for m in (pred, truth)]
        names = [str(p) for pair in pairs for p in pair]
        try:
            n_classes = (mask_classes(masks, names=names, n_classes=classes) if classes else
                         max(int(max(p.max(), t.max())) for _, p, t in loaded) + 1)
        except ValueError as error:  # a folder of masks has no unlabelled pixels to offer
            raise ValueError(re.sub(r", or ignore_index=\d+ if \d+ marks unlabelled pixels",
                                    "", str(error))) from None
    rows = []
    for path, pred, truth in loaded:
        row = {"name": path.name}
        if binary:
            row["dice"] = dice(truth, pred)
            row["iou"] = iou(truth, pred)
            row["pixel_error"] = pixel_error(truth, pred)
            row["V_rand"] = isbi_scores(pred[..., 0], truth[..., 0], thresholds=[0.5])["V_rand"]
        else:
            row["dice"] = dice(truth, pred, n_classes=n_classes)["mean"]
            row["iou"] = iou(truth, pred, n_classes=n_classes)["mean"]
            row["pixel_error"] = pixel_error(truth, pred, n_classes=n_classes)
        rows.append(row)
    mean = {"name": "mean"}
    for key in rows[0]:
        if key != "name":
            mean[key] = float(np.mean([row[key] for row in rows]))
    return rows, mean
