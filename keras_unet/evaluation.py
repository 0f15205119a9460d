"""Offline scores on NumPy arrays: overlap, surface distances in mm (HD95, surface Dice),
vessel-map and ISBI 2012 scores (docs/isbi2012_scores.md); truths read as ``images.as_mask``,
predictions as ``images.as_prediction``."""

import re
from collections import deque

import numpy as np
from scipy import ndimage
from skimage.metrics import contingency_table

from keras_unet.checks import check_array, check_choice, check_int, check_number, fail
from keras_unet.images import (
    MASK_MODES, as_mask, as_prediction, is_volume, mask_classes, pair_files, read_mask,
    read_volume, values_text)

#: The ISBI 2012 scripts' thresholds: Fiji's ``th += 0.1`` from 0.0 while ``th <= 1.0``.
ISBI_THRESHOLDS = np.cumsum([0.0] + [0.1] * 10)

#: How cells connect in the ISBI scores: 2-D, 4-connected, as in the challenge.
CELL_CONNECTIVITY = ndimage.generate_binary_structure(2, 1)

# States of the border pixels while the proposal is flooded (labels are > 0, lines 0).
_OUTSIDE, _UNREACHED, _QUEUED = -3, -1, -2


def _thresholds(thresholds):
    array = np.array([check_number(t, "thresholds", 0, 1) for t in np.ravel(thresholds)])
    if array.size == 0:
        fail("thresholds", "a non-empty sequence of numbers in [0, 1]", thresholds)
    return array


def _binary(value, name, threshold=None):
    """``(mask, array)``: a bool 0/1 mask (``threshold``: of probabilities), the values given."""
    array = check_array(value, name)
    flat = array.reshape(1, -1)  # the scores pool pixels: any shape is one image
    labels = (as_mask(flat, name) if threshold is None else
              as_prediction(flat, name, threshold=threshold).labels)
    if labels.max() > 1:
        shown = values_text(np.unique(labels).tolist(), 5)
        raise ValueError(f"{name} holds class indices ({shown}): pass n_classes= to score classes")
    return labels.reshape(array.shape).astype(bool), array


def _same_shape(truth, other, argument):
    """``truth`` and ``other`` with equal shapes, a trailing channel of 1 allowed."""
    a, b = (x[..., 0] if x.ndim > y.ndim and x.shape[-1] == 1 else x
            for x, y in ((truth, other), (other, truth)))
    if a.shape != b.shape:
        raise ValueError(f"truth and {argument} must have the same shape; got {truth.shape} "
                         f"and {other.shape}")
    return a, b


def _pair(truth, prediction, name, threshold=0.5):
    """The 0/1 truth and the binarised prediction (bool), and the prediction's values."""
    truth, _ = _binary(truth, "truth")
    labels, values = _binary(prediction, name, check_number(threshold, "threshold", 0, 1))
    truth, labels = _same_shape(truth, labels, name)
    return truth, labels, values.reshape(labels.shape)


def _class_pair(truth, prediction, n_classes):
    """The truth and predicted class indices (the arg-max of per-class probabilities)."""
    truth, prediction = check_array(truth, "truth"), check_array(prediction, "prediction")
    if truth.ndim == prediction.ndim + 1 and truth.shape[-1] != 1:  # a channel axis of classes
        as_mask(truth, "truth", "multiclass", batch=truth.ndim > 3)
    if prediction.dtype.kind == "f" and prediction.shape != truth.shape and (
            prediction.shape[-1:] == (n_classes,)):
        flat = prediction.reshape(1, -1, n_classes)
        labels = as_prediction(flat, "prediction", mode="multiclass").labels
        prediction = labels.reshape(prediction.shape[:-1])
    else:
        check_same_kind(truth, prediction)
        flat = prediction.reshape(1, -1)
        prediction = as_mask(flat, "prediction", "multiclass", n_classes=n_classes).reshape(
            prediction.shape)
    labels = as_mask(truth.reshape(1, -1), "truth", "multiclass", n_classes=n_classes)
    return _same_shape(labels.reshape(truth.shape), prediction, "prediction")


def _field_of_view(mask, truth):
    """A bool selector of the pixels to score (all of them when ``mask`` is None)."""
    if mask is None:
        return np.ones(truth.shape, bool)
    fov, _ = _binary(mask, "mask")
    _, fov = _same_shape(truth, fov, "mask")
    if not fov.any():
        raise ValueError("mask selects no pixel: it must hold 1 inside the field of view")
    return fov


def _ratio(found, size):
    """``found / size`` (arrays), 1.0 where ``size`` is 0: nothing to find, nothing found."""
    return np.where(size == 0, 1.0, found / np.maximum(size, 1))


def check_same_kind(truth, prediction):
    """Refuse a binary mask (bool, floats in [0, 1]) against class indices, or the reverse."""
    kinds = {}  # name: (binary?, how it reads), for the arrays that are clearly one kind
    for name, value in (("truth", truth), ("prediction", prediction)):
        array = check_array(value, name)
        labels = as_prediction(array.reshape(1, -1), name).labels
        if labels.dtype.kind == "f":
            kinds[name] = True, f"is a binary mask ({array.dtype} in [0, 1])"
        elif labels.max() > 1:
            shown = values_text(np.unique(labels).tolist(), 5)
            kinds[name] = False, f"holds class indices ({shown})"
    if len({binary for binary, _ in kinds.values()}) == 2:
        kinds = {name: text for name, (_, text) in kinds.items()}
        raise ValueError(f"truth {kinds['truth']} but prediction {kinds['prediction']}: score "
                         f"a binary prediction against binary truths and class indices against "
                         f"class indices")


def _confusion(truth, prediction, n_classes):
    """``counts[i, j]``: pixels of true class i predicted as class j."""
    flat = n_classes * truth.ravel().astype(np.int64) + prediction.ravel()
    return np.bincount(flat, minlength=n_classes**2).reshape(n_classes, n_classes)


def _masks(truth, prediction, n_classes, threshold, mode):
    """``(mode, n_classes, truth, prediction)``: class indices (multiclass), else 0/1 bools."""
    mode = check_choice(mode, (None, *MASK_MODES), "mode")
    mode = mode or ("binary" if n_classes is None else "multiclass")
    if mode == "multiclass":
        n_classes = check_int(n_classes, "n_classes", minimum=2)
        return (mode, n_classes, *_class_pair(truth, prediction, n_classes))
    if n_classes is not None:
        fail("n_classes", f"None for mode={mode!r}", n_classes)
    return (mode, 2, *_pair(truth, prediction, "prediction", threshold)[:2])


def _tallies(truth, prediction, n_classes, threshold, mode, mask=None):
    """``(mode, tables)``: confusion tables ``(T, n, n)``: one (binary, multiclass) or per label."""
    mode, n_classes, truth, prediction = _masks(truth, prediction, n_classes, threshold, mode)
    if mode == "multiclass":
        return mode, _confusion(truth, prediction, n_classes)[None]
    if mode == "binary":
        fov = _field_of_view(mask, truth)
        return mode, _confusion(truth[fov], prediction[fov], 2)[None]
    labels = truth.shape[-1]  # multilabel: the 0/1 rules of a binary mask, per label
    pairs = zip(truth.reshape(-1, labels).T, prediction.reshape(-1, labels).T)
    return mode, np.array([_confusion(t, p, 2) for t, p in pairs])


def _report(mode, scores):
    """A float (binary), else ``{"per_class"`` (or ``"per_label"``)``: scores, "mean": float}``."""
    if mode == "binary":
        return float(scores[0])
    return {"per_class" if mode == "multiclass" else "per_label": scores,
            "mean": float(scores.mean())}


def _overlap(truth, prediction, n_classes, threshold, mode, kind):
    """Dice (``kind="dice"``) or IoU: a float (binary), else per class or label and the mean."""
    mode, tables = _tallies(truth, prediction, n_classes, threshold, mode)
    hits = np.diagonal(tables, axis1=1, axis2=2)
    union = tables.sum(axis=1) + tables.sum(axis=2) - hits
    scores = _ratio(2 * hits, union + hits) if kind == "dice" else _ratio(hits, union)
    return _report(mode, scores[0] if mode == "multiclass" else scores[:, 1])


def dice(truth, prediction, *, n_classes=None, threshold=0.5, mode=None):
    """Dice coefficient ``2 |T & P| / (|T| + |P|)``: a float (binary), else ``{"per_class"`` (or
    ``"per_label"``)``: array, "mean": float}``; ``mode`` None: binary, or multiclass with
    ``n_classes`` (docs/isbi2012_scores.md).

    >>> scores = dice(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), n_classes=3)
    >>> scores["per_class"].round(3).tolist(), round(scores["mean"], 3)
    ([1.0, 0.667, 0.667], 0.778)
    """
    return _overlap(truth, prediction, n_classes, threshold, mode, "dice")


def iou(truth, prediction, *, n_classes=None, threshold=0.5, mode=None):
    """Intersection over union ``|T & P| / |T | P|``; arguments and returns as :func:`dice`.

    >>> round(iou(np.array([[1, 1, 0, 0]]), np.array([[0.9, 0.2, 0.7, 0.0]])), 4)
    0.3333
    """
    return _overlap(truth, prediction, n_classes, threshold, mode, "iou")


def pixel_error(truth, prediction, *, n_classes=None, threshold=0.5, mode=None):
    """Fraction of misclassified pixels (as ``metrics.PixelError``; arguments as :func:`dice`).

    >>> pixel_error(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), n_classes=3)
    0.25
    """
    _, tables = _tallies(truth, prediction, n_classes, threshold, mode)
    return float(1.0 - np.trace(tables, axis1=1, axis2=2).sum() / tables.sum())


#: A mask's surface: its voxels with a neighbour outside it across a face (connectivity 1,
#: the array's border outside too): ``mask & ~binary_erosion(mask)``, MONAI's mask edges.
SURFACE_CONNECTIVITY = 1


def _grid(shape, spacing):
    """The masks' spatial shape (a trailing channel of 1 dropped) and the spacing per axis."""
    given = None if spacing is None or np.ndim(spacing) == 0 else len(spacing)
    if len(shape) in (3, 4) and shape[-1] == 1 and given != len(shape):
        shape = shape[:-1]
    if len(shape) not in (2, 3):
        raise ValueError(f"surface distances need 2-D or 3-D masks, (H, W) or (D, H, W) with an "
                         f"optional channel of 1; got shape {shape}")
    values = [1.0 if spacing is None else spacing] * len(shape) if given is None else spacing
    if len(values) != len(shape):
        fail("spacing", f"{len(shape)} numbers (mm), one per axis of the {shape} masks", spacing)
    return shape, [check_number(v, "spacing", 0, open_low=True) for v in values]


def _surface_scores(truth, prediction, spacing, tolerance):
    """HD95 and surface Dice of two bool masks (see :func:`hd95`, :func:`surface_dice`)."""
    if not truth.any() or not prediction.any():
        return (0.0, 1.0) if truth.any() == prediction.any() else (np.inf, 0.0)
    box = ndimage.find_objects((truth | prediction).view(np.uint8))[0]  # surfaces lie inside
    edges = [m & ~ndimage.binary_erosion(m, ndimage.generate_binary_structure(
        m.ndim, SURFACE_CONNECTIVITY)) for m in (truth[box], prediction[box])]
    a, b = (ndimage.distance_transform_edt(~other, sampling=spacing)[edge]
            for edge, other in (edges, edges[::-1]))
    return max(np.percentile(a, 95), np.percentile(b, 95)), np.mean(np.r_[a, b] <= tolerance)


def _surfaces(truth, prediction, n_classes, threshold, mode, spacing, tolerance=1.0):
    """``(hd95, surface_dice)``, each reported as :func:`dice` reports its scores."""
    tolerance = check_number(tolerance, "tolerance", 0)
    mode, n_classes, truth, prediction = _masks(truth, prediction, n_classes, threshold, mode)
    pairs = ([(truth == k, prediction == k) for k in range(n_classes)] if mode == "multiclass"
             else [(truth, prediction)] if mode == "binary" else
             [(truth[..., k], prediction[..., k]) for k in range(truth.shape[-1])])
    shape, spacing = _grid(pairs[0][0].shape, spacing)
    scores = np.array([_surface_scores(t.reshape(shape), p.reshape(shape), spacing, tolerance)
                       for t, p in pairs])
    return _report(mode, scores[:, 0]), _report(mode, scores[:, 1])


def hd95(truth, prediction, *, spacing=None, n_classes=None, threshold=0.5, mode=None):
    """The 95th-percentile Hausdorff distance in mm of two 2-D or 3-D masks' surfaces
    (:data:`SURFACE_CONNECTIVITY`) as MONAI's ``compute_hausdorff_distance(percentile=95)``: the
    larger of the two directed 95th percentiles, not that of the pooled distances; ``spacing``:
    mm per axis (a number: all; None: 1), for ``distance_transform_edt``. Both masks empty: 0.0;
    one empty: inf. Other arguments and returns as :func:`dice` (per class: class 0 included).

    >>> truth = np.zeros((5, 5)); truth[1:4, 1:4] = 1
    >>> hd95(truth, np.roll(truth, 1, axis=1), spacing=(1.0, 2.5))  # one column: 2.5 mm
    2.5
    """
    return _surfaces(truth, prediction, n_classes, threshold, mode, spacing)[0]


def surface_dice(truth, prediction, *, tolerance=1.0, spacing=None, n_classes=None,
                 threshold=0.5, mode=None):
    """The normalised surface Dice (Nikolov et al. 2021) at ``tolerance`` mm, as MONAI's
    ``compute_surface_dice``: the share of both surfaces' voxels (counted, not areas) within
    ``tolerance`` (<=) of the other. Both empty: 1.0; one empty: 0.0; the rest as :func:`hd95`.

    >>> truth = np.zeros((5, 5)); truth[1:4, 1:4] = 1  # 8 surface pixels, 3 of them 2.5 mm off
    >>> surface_dice(truth, np.roll(truth, 1, axis=1), tolerance=1.0, spacing=(1.0, 2.5))
    0.625
    """
    return _surfaces(truth, prediction, n_classes, threshold, mode, spacing, tolerance)[1]


def isbi_pixel_error(probabilities, truth, *, thresholds=ISBI_THRESHOLDS):
    """The ISBI 2012 pixel error: 1 - the best F-score of ``probabilities > t`` over thresholds.

    >>> p = np.array([[0.9, 0.2, 0.7, 0.0]])  # best at t = 0.1: [1, 1, 1, 0], F = 4/5
    >>> round(isbi_pixel_error(p, np.array([[1, 1, 0, 0]])), 4)
    0.2
    """
    thresholds = _thresholds(thresholds)
    truth, probabilities = _isbi_pair(truth, probabilities)
    return 1.0 - max(precision_recall_f1(truth, probabilities, t)["f1"] for t in thresholds)


def precision_recall_f1(truth, prediction, threshold=0.5, mask=None):
    """Precision, recall and F1 of a binary prediction where ``mask`` (a field of view) is 1.

    >>> truth = np.array([[1, 1, 0, 0], [1, 0, 0, 0]])
    >>> prediction = np.array([[0.8, 0.1, 0.9, 0.0], [0.7, 0.0, 0.0, 0.0]])
    >>> precision_recall_f1(truth, prediction)  # TP 2, FP 1, FN 1
    {'precision': 0.666..., 'recall': 0.666..., 'f1': 0.666...}
    """
    (((_, fp), (fn, tp)),) = _tallies(truth, prediction, None, threshold, "binary", mask)[1]
    ratios = {"precision": (tp, tp + fp), "recall": (tp, tp + fn), "f1": (2 * tp, 2 * tp + fp + fn)}
    return {key: float(_ratio(*ratio)) for key, ratio in ratios.items()}


def roc_auc(truth, probabilities, mask=None):
    """Area under the exact :func:`roc_curve` (ties count one half) where ``mask`` is 1.

    >>> roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.4, 0.8]))  # a tie: 1/2
    0.875
    """
    curve = roc_curve(truth, probabilities, mask)
    return float(np.trapezoid(curve["tpr"], curve["fpr"]))


def roc_curve(truth, probabilities, mask=None):
    """The exact ROC curve ``{"fpr", "tpr", "thresholds"}`` where ``mask`` is 1, a point a value.

    >>> curve = roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    >>> curve["fpr"].tolist(), curve["tpr"].tolist(), curve["thresholds"].tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0], [inf, 0.8, 0.4, 0.35, 0.1])
    """
    truth, _, probabilities = _pair(truth, probabilities, "probabilities")
    fov = _field_of_view(mask, truth)
    truth, probabilities = truth[fov], probabilities[fov]
    if truth.all() or not truth.any():
        raise ValueError(f"the ROC needs positive and negative truth pixels; every scored "
                         f"pixel is {'positive' if truth.any() else 'negative'}")
    order = np.argsort(probabilities, kind="stable")[::-1]
    ranked, hits = probabilities[order].astype(np.float64), truth[order]
    last = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]  # end of each tie run
    true_pos = np.cumsum(hits)[last]
    false_pos = (last + 1) - true_pos
    return {"fpr": np.r_[0.0, false_pos / false_pos[-1]],
            "tpr": np.r_[0.0, true_pos / true_pos[-1]], "thresholds": np.r_[np.inf, ranked[last]]}


def flood_proposal(foreground):
    """Label a 2-D binary proposal as Fiji's ISBI 2012 flooding does (docs/isbi2012_scores.md).

    >>> flood_proposal(np.array([[1, 1, 0, 0, 1, 1]])).tolist()  # line on the right
    [[1, 1, 1, 0, 2, 2]]
    """
    if np.ndim(foreground) != 2:
        raise ValueError(f"foreground must be a 2-D image; got shape {np.shape(foreground)}")
    labels, count = ndimage.label(_binary(foreground, "foreground")[0], CELL_CONNECTIVITY)
    if count == 0:
        return np.ones(labels.shape, labels.dtype)
    # Fiji scans x (columns) first: C order on the transpose; a frame keeps neighbours inside.
    grid = np.pad(labels.T, 1, constant_values=_OUTSIDE)
    grid[grid == 0] = _UNREACHED
    offsets = (-grid.shape[1], -1, grid.shape[1], 1)  # (x-1, y), (x, y-1), (x+1, y), (x, y+1)
    start = (grid == _UNREACHED) & ndimage.binary_dilation(grid > 0, CELL_CONNECTIVITY)
    cells = np.where(start, _QUEUED, grid).ravel().tolist()  # lists: ~10x faster here
    queue = deque(np.flatnonzero(start).tolist())
    while queue:
        p = queue.popleft()
        label, clash = _QUEUED, False
        for q in (p + offset for offset in offsets):
            value = cells[q]
            if value > 0 and label <= 0 and not clash:  # a flooded cell
                label = value
            elif value > 0 and label > 0 and label != value:
                label, clash = 0, True  # two cells meet: a line for good
            elif value == 0 and label == _QUEUED:  # a line: a line too, unless a cell comes
                label = 0
            elif value == _UNREACHED:
                cells[q] = _QUEUED
                queue.append(q)
        cells[p] = label
    return np.array(cells, dtype=labels.dtype).reshape(grid.shape)[1:-1, 1:-1].T


def _entropy(sizes, n, singletons=0):
    """Entropy of n pixels split into ``sizes`` plus ``singletons`` one-pixel segments."""
    q = sizes[sizes > 0] / n
    return float(-(q * np.log(q)).sum() + singletons / n * np.log(n))


def _rand_and_info(cells, segments):
    """Fiji's V_rand and V_info of truth ``cells`` (0: membrane) and a flooded proposal."""
    inside = cells > 0
    n = int(inside.sum())
    table = contingency_table(cells[inside], segments[inside], sparse_type="array")
    sizes = np.asarray(table.sum(axis=1)).ravel().astype(np.int64)  # truth cells (t_k)
    lines = int(table[:, [0]].sum())  # proposal line pixels inside the cells
    joint = table[:, 1:]
    overlaps = joint.data.astype(np.int64)  # p_ij
    proposed = np.asarray(joint.sum(axis=0)).ravel().astype(np.int64)  # s_k
    v_rand = 2 * (overlaps @ overlaps + lines) / (sizes @ sizes + proposed @ proposed + lines)
    h_truth, h_proposed = _entropy(sizes, n), _entropy(proposed, n, lines)
    if h_truth == 0 or h_proposed == 0:  # one segment on a side: Fiji scores 0
        return float(v_rand), 0.0
    mutual = h_truth + h_proposed - _entropy(overlaps, n, lines)
    return float(v_rand), float(2 * mutual / (h_truth + h_proposed))


def _isbi_pair(truth, probabilities):
    """Truth (bool) and probabilities; a truth strictly between 0 and 1 is a swapped call."""
    array = np.asarray(truth)
    if array.dtype.kind == "f" and ((array > 0) & (array < 1)).any():
        raise ValueError("truth holds values between 0 and 1: it must be a 0/1 mask. The "
                         "order is (probabilities, truth); were the arguments swapped?")
    return _pair(truth, probabilities, "probabilities")[::2]


def isbi_scores(probabilities, truth, *, thresholds=ISBI_THRESHOLDS):
    """The ISBI 2012 V_rand, V_info and pixel error as Fiji computes them, of ``probabilities``
    and the 0/1 ``truth`` (note the order); keys and details in docs/isbi2012_scores.md.

    >>> merged = isbi_scores(np.ones((2, 5)), np.array([[1, 1, 0, 1, 1]] * 2))  # cells joined
    >>> round(merged["V_rand"], 4), merged["V_info"]  # 2*32 / (32 + 64)
    (0.6667, 0.0)
    """
    thresholds = _thresholds(thresholds)
    truth, probabilities = _isbi_pair(truth, probabilities)
    if truth.ndim >= 3 and truth.shape[-1] == 1:
        truth, probabilities = truth[..., 0], probabilities[..., 0]
    if truth.ndim not in (2, 3):
        raise ValueError("isbi_scores needs 2-D images: (H, W), (H, W, 1), (N, H, W) or "
                         f"(N, H, W, 1); got shape {truth.shape}")
    shape = (-1, *truth.shape[-2:])  # a stack of images
    truth, probabilities = truth.reshape(shape), probabilities.reshape(shape)
    scores = np.zeros((len(thresholds), len(truth), 2))
    for i, (cell_mask, image) in enumerate(zip(truth, probabilities)):
        cells, _ = ndimage.label(cell_mask, CELL_CONNECTIVITY)
        for k, foreground in enumerate(image > t for t in thresholds):
            if k and np.array_equal(foreground, last):  # the same proposal: the same scores
                scores[k, i] = scores[k - 1, i]
            elif cell_mask.any():
                scores[k, i] = _rand_and_info(cells, flood_proposal(foreground))
            else:  # no cell to find: right only if none is proposed
                scores[k, i] = (0.0, 0.0) if foreground.any() else (1.0, 1.0)
            last = foreground
    v_rand, v_info = scores.mean(axis=1).T
    best_rand, best_info = int(np.argmax(v_rand)), int(np.argmax(v_info))
    return {"pixel_error": isbi_pixel_error(probabilities, truth, thresholds=thresholds),
            "V_rand": float(v_rand[best_rand]), "V_info": float(v_info[best_info]),
            "V_rand_threshold": float(thresholds[best_rand]),
            "V_info_threshold": float(thresholds[best_info]), "thresholds": thresholds,
            "V_rand_per_threshold": v_rand, "V_info_per_threshold": v_info}


def _volume_masks(paths):
    """Mask volumes as stored (all 0/1 or 0/255: as bools) and their spacing (mm per axis)."""
    volumes = [read_volume(path) for path in paths]
    binary = all(set(np.unique(v.array).tolist()) - {0} in ({1}, {255}, set()) for v in volumes)
    return [v.array > 0 if binary else v.array for v in volumes], [v.spacing for v in volumes]


def evaluate_folders(predictions_dir, truths_dir, *, classes=None, tolerance=1.0):
    """``(rows, mean)``: Dice, IoU, pixel error (binary: V_rand) of mask files paired by stem;
    of volume files (0/1 or 0/255: binary, else class indices), Dice, IoU, :func:`hd95` and
    :func:`surface_dice` at ``tolerance`` mm, with the truth file's spacing."""
    tolerance = check_number(tolerance, "tolerance", 0)
    pairs = pair_files(predictions_dir, truths_dir, names=("predictions", "truths"),
                       unmatched=("predictions without a true mask",
                                  "true masks without a prediction"))
    files = [path for pair in pairs for path in pair]  # in the order of the pairs
    kinds = [is_volume(path) for path in files]
    if len(set(kinds)) == 2:
        raise ValueError(f"the folders mix volumes and 2D masks: {files[kinds.index(True)]} is a "
                         f"volume, {files[kinds.index(False)]} a 2D mask; keep one kind")
    volumes = kinds[0]
    if volumes:
        sides, grids = zip(*(_volume_masks([pair[side] for pair in pairs]) for side in (0, 1)))
    else:
        sides = [[read_mask(pair[side]) for pair in pairs] for side in (0, 1)]
        # a folder holding class indices anywhere reads its 0/1 masks as classes too
        sides = [[m.astype(np.int32) for m in masks] if any(m.dtype != np.float32 for m in masks)
                 else masks for masks in sides]
    for i, ((path, truth_path), pred, truth) in enumerate(zip(pairs, *sides)):
        try:
            _same_shape(truth, pred, "prediction")
            check_same_kind(truth, pred)
            if volumes and not np.allclose(grids[0][i], grids[1][i], atol=1e-3):
                raise ValueError(f"spacing differs: {grids[0][i]} and {grids[1][i]} mm")
        except ValueError as error:
            raise ValueError(f"{path} against {truth_path}: the {error}") from None
    masks = [m for pair in zip(*sides) for m in pair]  # in the order of the files
    binary, n_classes = all(m.dtype == bool or m.dtype.kind == "f" for m in masks), None
    if not binary:
        try:
            n_classes = (mask_classes(masks, names=map(str, files), n_classes=classes)
                         if classes or volumes else max(int(m.max()) for m in masks) + 1)
        except ValueError as error:  # a folder of masks has no unlabelled pixels to offer
            raise ValueError(re.sub(r", or ignore_index=\d+ if \d+ marks unlabelled pixels",
                                    "", str(error))) from None
    rows = []
    for i, ((path, _), pred, truth) in enumerate(zip(pairs, *sides)):
        row = {key: score(truth, pred, n_classes=n_classes) for key, score in (
            ("dice", dice), ("iou", iou), ("pixel_error", pixel_error))[:3 - volumes]}
        if volumes:
            row.update(zip(("hd95", "surface_dice"), _surfaces(
                truth, pred, n_classes, 0.5, None, grids[1][i], tolerance)))
        elif binary:
            row["V_rand"] = isbi_scores(pred[..., 0], truth[..., 0], thresholds=[0.5])["V_rand"]
        rows.append({"name": path.name, **{key: value["mean"] if isinstance(value, dict) else
                                           value for key, value in row.items()}})
    return rows, {"name": "mean", **{key: float(np.mean([row[key] for row in rows]))
                                     for key in rows[0] if key != "name"}}
