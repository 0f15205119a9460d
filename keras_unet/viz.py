"""Pictures of images, masks, predictions, weight maps and training curves (matplotlib): each
plot returns its Figure (no ``plt.show()``); inputs are read by :mod:`keras_unet.images`, class
``k`` drawn in ``class_colors(n)[k]`` (multilabel label ``l`` in ``class_colors(L + 1)[l + 1]``)."""

import csv
import os
import sys
import textwrap
from pathlib import Path
from collections import namedtuple

import keras
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import hsv_to_rgb, is_color_like, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from skimage.color import rgb2gray
from skimage.segmentation import find_boundaries

from keras_unet.checks import check_array, check_choice, check_int, check_number, count, fail
from keras_unet.images import as_image, as_mask, as_prediction, write_atomically

FOREGROUND_COLOR, FOREGROUND_NAME = (0.0, 1.0, 0.0), "green"  # reads on gray and warm images
PROBABILITY_CMAP, TILE_COLOR, PANEL_INCHES = "magma", (0.0, 0.9, 1.0), 3.0
ERROR_COLORS = {"true positive": (1.0, 1.0, 1.0), "false positive": (0.9, 0.1, 0.1),
                "false negative": (0.0, 0.75, 1.0), "true negative": (0.0, 0.0, 0.0)}
CORRECT_COLOR, WRONG_COLOR = (0.2, 0.2, 0.2), (0.9, 0.1, 0.1)
DEFAULT_OUTPUT_DIR = "predictions"  # where PredictionCallback writes outside a notebook
TITLE_SCORES = ("val_dice", "dice", "val_mean_iou", "mean_iou")
PLANES = ("axial", "coronal", "sagittal")  # the planes normal to array axes 0, 1, 2 (k, j, i)
CROSSHAIR_COLOR, OUTLINE_COLOR = (1.0, 0.85, 0.0), (1.0, 0.0, 1.0)  # yellow, magenta


#: int (H, W) classes or bool (H, W, L) labels, a soft binary foreground, the class count.
_Mask = namedtuple("_Mask", "labels probability n_classes")


def _read(value, name, threshold=None, mode=None, **dims):
    """A truth (no ``threshold``: ``as_mask``) or a prediction (``as_prediction``) (``dims``)."""
    labels, scores = (as_mask(value, name, mode, **dims), None) if threshold is None else (
        as_prediction(value, name, threshold=threshold, mode=mode, **dims))
    if labels.shape[-1] > 1:  # multilabel: one channel per label
        return _Mask(labels > 0, None, labels.shape[-1] + 1)
    channels = 0 if scores is None else scores.shape[-1]
    soft = 0 < channels <= 2 and scores.min() >= 0 and scores.max() <= 1
    soft = soft and not np.isin(scores, (0, 1)).all()
    return _Mask(labels[..., 0].astype(np.int64), scores[..., -1] if soft else None,
                 max(2, channels, int(labels.max()) + 1))


def _layers(mask, n_classes):
    """One bool map per foreground class (or label) of a :class:`_Mask`."""
    labels = mask.labels
    return list(np.moveaxis(labels, -1, 0)) if labels.ndim == 3 else [
        labels == k for k in range(1, n_classes)]


def _rgb(image, name="image", gray=False):
    """``image`` as float32 RGB (with ``gray``, a colour one in gray: BT.709 luma)."""
    image = as_image(image, name, stretch=True)
    if gray and image.shape[-1] == 3:
        image = rgb2gray(image)[..., None]
    return np.repeat(image, 3 // image.shape[-1], axis=-1).astype(np.float32)


def _fit(array, size, argument, reference, crop=True):
    """``array`` at ``size`` (leading axes): equal or (``crop``) centre-cut by an even border."""
    shape, extra = array.shape[:len(size)], np.subtract(array.shape[:len(size)], size)
    if (extra < 0).any() or (extra % 2).any() or not crop and extra.any():
        border = (f" (or {argument} larger by an even border, which is centre-cropped, as for"
                  f" a valid-padding U-Net)") if crop else ""
        raise ValueError(f"{argument} is {'x'.join(map(str, shape))} but {reference} is "
                         f"{'x'.join(map(str, size))}: they must be the same size{border}")
    return array[tuple(slice(d // 2, n - d // 2) for d, n in zip(extra, shape))]


def _batch(images):
    """``images`` as a list of samples, and whether it was one image."""
    array = None if isinstance(images, (list, tuple)) else np.asarray(images)
    if array is not None and (array.ndim == 2 or array.ndim == 3 and array.shape[-1] in (1, 3, 4)):
        return [array], True
    if not len(images):
        raise ValueError("images is empty")
    return [np.asarray(image) for image in images], False


def _batch_like(values, argument, single, count):
    """``truths``, ``predictions`` or ``masks`` as ``count`` samples, or None."""
    if values is None or single:
        return None if values is None else [np.asarray(values)]
    if len(values) != count:
        raise ValueError(f"{argument} has {len(values)} samples but images has {count}")
    return [np.asarray(value) for value in values]


def _tint(rgb, mask, palette, alpha=1.0, contour=False):
    """``rgb`` with each class (label) of ``mask`` tinted, or outlined, in ``palette[k]``."""
    for k, where in enumerate(_layers(mask, len(palette)), 1):
        if contour:
            where = find_boundaries(where, mode="inner") & where
        rgb[where] = palette[k] if contour else (1 - alpha) * rgb[where] + alpha * palette[k]
    return np.clip(rgb, 0.0, 1.0)


def _in_notebook():
    """True in a Jupyter kernel (which has imported IPython)."""
    return hasattr(getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)(), "kernel")


def _grid(rows, columns, width=PANEL_INCHES, height=PANEL_INCHES, extra=0.0, panels=None):
    """A figure of panels (``panels`` of them), released from pyplot under an inline notebook."""
    figure = plt.figure(figsize=(width * columns, height * rows + extra), layout="constrained")
    if _in_notebook() and "inline" in matplotlib.get_backend():
        plt.close(figure)
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes in grid.ravel()[panels:] if panels else ():
        axes.remove()
    return figure, grid


def _show(axes, picture, title, **imshow):
    # "antialiased": nearest when enlarged, smoothed when shrunk (thin structures stay visible)
    drawn = axes.imshow(picture, interpolation="antialiased", **imshow)
    axes.set_title(title, fontsize=10)
    axes.set_axis_off()
    return drawn


def _draw(axes, mask, palette, title, binary):
    """A mask's panel: probabilities, black and white (binary) or the class colours."""
    if binary and mask.probability is not None:
        return _show(axes, mask.probability, title, cmap=PROBABILITY_CMAP, vmin=0, vmax=1)
    if binary:
        return _show(axes, mask.labels > 0, title, cmap="gray", vmin=0, vmax=1)
    return _show(axes, _tint(np.zeros(mask.labels.shape[:2] + (3,)), mask, palette), title)


def _classes(masks, class_names):
    """``(names, palette, binary)`` of ``masks`` (``_Mask``, None) drawn together: binary green."""
    n_classes = max([2] + [mask.n_classes for mask in masks if mask])
    if class_names is not None and len(class_names) < n_classes:
        fail("class_names", f"one name for each of the masks' {n_classes} classes", class_names)
    names = [f"class {k}" for k in range(n_classes)] if class_names is None else list(
        map(str, class_names))
    binary = len(names) == 2
    return names, np.array([(0.0, 0.0, 0.0), FOREGROUND_COLOR]) if binary else class_colors(
        len(names)), binary


def _frame(axes, top, left, bottom, right, color, **style):
    axes.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False,
                             edgecolor=color, **style))


def _legend(figure, entries):
    """One legend below the panels: ``entries`` = ``[(label, rgb)]``."""
    handles = [Patch(facecolor=rgb, edgecolor="0.5", label=label) for label, rgb in entries]
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6),
                  fontsize=9, frameon=False)


def class_colors(n_classes):
    """One RGB colour per class (``n_classes`` >= 1, background included; 1 reads as 2),
    the same whatever ``n_classes``: black, tab10, the light tab20 colours, then hues."""
    n_classes = max(check_int(n_classes, "n_classes"), 2)
    tab20 = matplotlib.colormaps["tab20"].colors
    colors = [(0.0, 0.0, 0.0), *tab20[0::2], *tab20[1::2]]  # tab20[0::2] is tab10
    k = np.arange(max(n_classes - len(colors), 0))  # golden-ratio hues: all different
    hsv = [(k * 0.6180339887498949 + 0.05) % 1.0, np.where((k // 3) % 2, 0.55, 0.8),
           np.array([0.95, 0.75, 0.55])[k % 3]]
    return np.concatenate([colors, hsv_to_rgb(np.stack(hsv, -1))])[:n_classes]


def overlay(image, mask, *, alpha=0.5, colors=None, contour=False, gray=False, mode=None):
    """The image (float32 RGB; ``gray``: in gray), class ``k`` of ``mask`` (``as_prediction``)
    blended by ``alpha`` into ``colors[k]`` (None: defaults, one, or one per class), or ``contour``.

    >>> overlay(np.full((2, 2), 0.5), np.array([[0, 1], [0, 0]]))[0].tolist()  # green
    [[0.5, 0.5, 0.5], [0.25, 0.75, 0.25]]
    """
    alpha, rgb = check_number(alpha, "alpha", 0, 1), _rgb(image, gray=gray)
    mask = _read(mask, "mask", 0.5, mode)
    _fit(mask.labels, rgb.shape[:2], "mask", "image", crop=False)
    n = mask.n_classes
    colors = FOREGROUND_COLOR if colors is None and n == 2 else colors
    single = isinstance(colors, str) or np.ndim(colors) == 1 and is_color_like(colors)
    palette = class_colors(n) if colors is None else [(0, 0, 0)] + [colors] * (n - 1) if single \
        else list(colors)  # None, one colour for every class, or one per class
    if bad := [f"colors[{i}] = {c!r}" for i, c in enumerate(palette) if not is_color_like(c)]:
        raise ValueError(f"{bad[0]} is not a matplotlib colour")
    if len(palette) < n:
        fail("colors", f"one colour, or one per class up to class {n - 1}", colors)
    return _tint(rgb, mask, np.array([to_rgb(color) for color in palette]), alpha, contour)


def show_predictions(images, truths=None, predictions=None, *, n=4, class_names=None,
                     threshold=0.5, titles=None, mode=None):
    """A row per sample of ``images`` (the first ``n``, titled ``titles``): image | truth |
    prediction (with its Dice) | overlay (in gray). ``truths`` (``as_mask``) and ``predictions``
    (``as_prediction``, ``threshold``) are read in ``mode`` (None: inferred); an image larger by
    an even border is cropped. ``class_names``: one per class, background first.

        >>> images = np.random.default_rng(0).random((3, 16, 16, 1))
        >>> fig = show_predictions(images, images > 0.5, images[..., 0], n=2)
        >>> [axes.get_title() for axes in fig.axes[:4]]
        ['image', 'truth', 'prediction (Dice 1.000)', 'overlay (green: foreground)']
    """
    n, threshold = check_int(n, "n"), check_number(threshold, "threshold", 0, 1)
    samples, single = _batch(images)
    truths = _batch_like(truths, "truths", single, len(samples))
    predictions = _batch_like(predictions, "predictions", single, len(samples))
    shown = min(n, len(samples))
    titles = ["image"] * shown if titles is None else [str(title) for title in titles]
    if len(titles) not in (len(samples), shown):
        raise ValueError(f"titles has {len(titles)} entries but images has {len(samples)}")
    rows = []
    for i in range(shown):
        truth = None if truths is None else _read(truths[i], f"truths[{i}]", mode=mode)
        guess = "multilabel" if mode is None and truth and truth.labels.ndim == 3 else mode
        prediction = None if predictions is None else _read(
            predictions[i], f"predictions[{i}]", threshold, guess)
        if truth and prediction:
            truth = truth._replace(labels=_fit(truth.labels, prediction.labels.shape[:2],
                                               f"truths[{i}]", f"predictions[{i}]"))
        size = next((m.labels.shape[:2] for m in (prediction, truth) if m), None)
        image = as_image(samples[i], f"images[{i}]", stretch=True)
        if size:
            _fit(image, size, f"images[{i}]", f"{'predictions' if prediction else 'truths'}[{i}]")
        rows.append((image, truth, prediction, size))
    names, palette, binary = _classes([m for row in rows for m in row[1:3]], class_names)
    foreground = "foreground" if class_names is None else names[1]
    columns = 1 + (truths is not None) + 2 * (predictions is not None)
    figure, grid = _grid(shown, columns, extra=0.0 if binary else 0.5)
    for axes, (image, truth, prediction, size), title in zip(grid, rows, titles):
        axes = iter(axes)
        _show(first := next(axes), _rgb(image), title)
        if size and size != image.shape[:2]:
            top, left = (image.shape[0] - size[0]) // 2, (image.shape[1] - size[1]) // 2
            _frame(first, top, left, top + size[0], left + size[1], "yellow", linestyle="--")
        if truth:
            _draw(next(axes), truth, palette, "truth", binary)
        if prediction:
            pairs = zip(*(_layers(m, len(names)) for m in (truth, prediction))) if truth else ()
            dice = [2 * np.sum(t & p) / (t.sum() + p.sum()) for t, p in pairs if t.any() or p.any()]
            title = "prediction" + (f" (Dice {np.mean(dice) if dice else 1:.3f})" if truth else "")
            drawn = _draw(panel := next(axes), prediction, palette, title, binary)
            if binary and prediction.probability is not None:
                figure.colorbar(drawn, ax=panel, shrink=0.8, label="probability" if class_names
                                is None else f"probability of {foreground}")
            picture = _tint(_rgb(_fit(image, size, "image", "prediction"), gray=True),
                            prediction, palette, 0.5)
            _show(next(axes), picture,
                  f"overlay ({FOREGROUND_NAME}: {foreground})" if binary else "overlay")
    if not binary:
        _legend(figure, zip(names, palette))
    return figure


def show_weight_map(image, mask, weights):
    """Image | mask | pixel weights (e.g. ``border_weight_map``'s) as the paper's Fig. 3."""
    mask, weights = _read(mask, "mask"), check_array(weights, "weights").astype(np.float32)
    if weights.ndim not in (2, 3) or weights.ndim == 3 and weights.shape[-1] != 1:
        raise ValueError(f"weights must be (H, W) or (H, W, 1); got shape {weights.shape}")
    weights = _fit(weights.reshape(weights.shape[:2]), mask.labels.shape[:2], "weights", "mask",
                   crop=False)
    image = _fit(_rgb(image), weights.shape, "image", "mask")
    figure, grid = _grid(1, 3, extra=0.2)
    _show(grid[0, 0], image, "image")
    _draw(grid[0, 1], mask, class_colors(mask.n_classes), "mask", mask.n_classes == 2)
    drawn = _show(grid[0, 2], weights, "weight map", cmap="jet")
    figure.colorbar(drawn, ax=grid[0, 2], shrink=0.8, label="weight")
    return figure


def show_errors(truth, prediction, image=None, *, threshold=0.5):
    """Where ``prediction`` (``threshold``) is right and wrong, beside ``image`` if given:
    binary cases in :data:`ERROR_COLORS` with the Dice, else correct/wrong and the accuracy."""
    threshold, truth = check_number(threshold, "threshold", 0, 1), _read(truth, "truth")
    multilabel = "multilabel" if truth.labels.ndim == 3 else None
    prediction = _read(prediction, "prediction", threshold, multilabel)
    t, p = truth.labels, _fit(prediction.labels, truth.labels.shape[:2], "prediction", "truth",
                              crop=False)
    if max(truth.n_classes, prediction.n_classes) == 2:
        t, p = t > 0, p > 0
        cases = dict(zip(ERROR_COLORS.values(), (t & p, ~t & p, t & ~p, ~t & ~p)))
        tp, fp, fn, tn = (int(np.count_nonzero(where)) for where in cases.values())
        dice = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
        title, names = f"TP {tp} · FP {fp} · FN {fn} · TN {tn}\nDice {dice:.3f}", ERROR_COLORS
    else:
        right = (t == p).all(axis=-1) if multilabel else t == p
        cases, names = {CORRECT_COLOR: right, WRONG_COLOR: ~right}, ("correct", "wrong")
        title = f"correct {right.sum()} · wrong {(~right).sum()}\naccuracy {right.mean():.3f}"
    errors = np.select([where[..., None] for where in cases.values()], list(cases), 0.0)
    panels = [] if image is None else [(_fit(_rgb(image), t.shape[:2], "image", "truth"), "image")]
    figure, grid = _grid(1, len(panels) + 1, width=4.5, height=4.5, extra=0.4)
    for axes, (picture, name) in zip(grid[0], panels + [(errors.astype(np.float32), title)]):
        _show(axes, picture, name)
    _legend(figure, zip(names, cases))
    return figure


def show_tiles(image, prediction, boxes, *, zoom=48, threshold=0.5):
    """The image and a tiled prediction with its tiles (``boxes``, as ``tile_grid`` returns)
    outlined, and a close-up ``2 * zoom`` pixels wide (0/None: none) where tiles meet."""
    threshold, zoom = check_number(threshold, "threshold", 0, 1), check_int(zoom or 0, "zoom", 0)
    predicted, rgb = _read(prediction, "prediction", threshold), _rgb(image)
    _fit(predicted.labels, rgb.shape[:2], "prediction", "image", crop=False)
    size, boxes = rgb.shape[:2], np.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1:] != (4,) or not len(boxes) or boxes.dtype.kind not in (
            "iuf") or np.any(boxes != np.round(boxes)):
        fail("boxes", "(n_tiles, 4) rows of whole-pixel (top, left, bottom, right)", boxes)
    top, left, bottom, right = (boxes := boxes.astype(np.int64)).T
    bad = np.flatnonzero((top < 0) | (left < 0) | (bottom > size[0]) | (right > size[1])
                         | (top >= bottom) | (left >= right))
    if len(bad):
        fail(f"boxes[{bad[0]}]", f"a non-empty box inside the {size[0]}x{size[1]} prediction",
             boxes[bad[0]].tolist())
    tops, lefts = (sorted({int(v) for v in boxes[:, axis] if v > 0}) for axis in (0, 1))
    close = bool(zoom and (tops or lefts))
    figure, grid = _grid(1, 3 if close else 2, width=4.0, height=4.0)
    _show(grid[0, 0], rgb, f"image, {count(boxes, 'tile')}")
    for axes in grid[0, 1:]:
        drawn = _draw(axes, predicted, class_colors(predicted.n_classes),
                      "prediction, tile outputs outlined", predicted.n_classes == 2)
    for axes in grid[0]:
        for box in boxes:
            _frame(axes, *box, TILE_COLOR, linewidth=1.2,
                   linestyle="-" if axes is grid[0, 0] else "--")
    if predicted.probability is not None:
        figure.colorbar(drawn, ax=list(grid[0, 1:]), shrink=0.8, label="probability")
    if close:
        y, x = tops[0] if tops else size[0] // 2, lefts[0] if lefts else size[1] // 2
        top, left = max(y - zoom, 0), max(x - zoom, 0)
        bottom, right = min(y + zoom, size[0]), min(x + zoom, size[1])
        _frame(grid[0, 1], top, left, bottom, right, "white", linewidth=1.5)
        grid[0, 2].set(xlim=(left - 0.5, right - 0.5), ylim=(bottom - 0.5, top - 0.5))
        kind = "corner" if tops and lefts else "border"
        grid[0, 2].set_title(f"close-up: tile {kind} ({y}, {x})", fontsize=10)
    return figure


def _volumes(image, truth, prediction, threshold, mode, spacing, caller):
    """The image float32 (D, H, W, C), stretched; the masks (_Mask or None); the first mask's
    foreground (bool (D, H, W); None if none); the spacing."""
    if np.ndim(image) == 2:
        raise ValueError(f"image has shape {np.shape(image)}: a 2D image; {caller[0]} draws "
                         f"volumes (D, H, W) or (D, H, W, C) (for a 2D image use show_predictions)")
    volume = as_image(image, "image", stretch=True, spatial_dims=3)
    volume = volume if volume.shape[-1] in (1, 3) else volume[..., :1]  # else its first channel
    truth = None if truth is None else _read(truth, caller[1], mode=mode, spatial_dims=3)
    guess = "multilabel" if mode is None and truth and truth.labels.ndim == 4 else mode
    prediction = None if prediction is None else _read(
        prediction, caller[2], check_number(threshold, "threshold", 0, 1), guess, spatial_dims=3)
    for name, mask in ((n, m) for n, m in zip(caller[1:], (truth, prediction)) if m):
        _fit(mask.labels, volume.shape[:3], name, "image", crop=False)
    foreground = next((f for m in (truth, prediction) if m and (f := np.reshape(
        m.labels, volume.shape[:3] + (-1,)).any(axis=-1)).any()), None)
    if np.shape(spacing := (1, 1, 1) if spacing is None else spacing) != (3,):
        fail("spacing", "(dk, dj, di): the voxel size along each array axis (mm)", spacing)
    spacing = [check_number(v, f"spacing[{a}]", 0, open_low=True) for a, v in enumerate(spacing)]
    return volume, truth, prediction, foreground, spacing


def _plane(axes, title, volume, axis, index, spacing, masks=(), palettes=(), alpha=0.5, cross=()):
    """Slice ``index`` normal to ``axis`` (gray under masks), ``masks[0]`` tinted, ``masks[1]``
    outlined, ``cross`` (row, column) marked; slice 0 at the bottom if ``axis``: LPS heads up."""
    picture = _rgb(np.take(volume, index, axis), gray=bool(masks))
    for k, (mask, palette) in enumerate(zip(masks, palettes)):
        plane = mask._replace(labels=np.take(mask.labels, index, axis))
        picture = _tint(picture, plane, palette, alpha, contour=k > 0)
    down, across = np.delete(spacing, axis)  # mm per row, per column
    _show(axes, picture, title, aspect=down / across, origin="lower" if axis else "upper")
    for line, at in zip((axes.axhline, axes.axvline), cross):
        line(at, color=CROSSHAIR_COLOR, linewidth=0.6, alpha=0.6)


def show_volume(image, truth=None, prediction=None, *, point=None, spacing=None, threshold=0.5,
                mode=None, class_names=None, alpha=0.5):
    """Planes ``image[k]`` (axial), ``image[:, j]`` (coronal), ``image[:, :, i]`` (sagittal) through
    ``point`` (None: the foreground voxel nearest the centre of the truth's, else prediction's,
    foreground; else the volume's centre), crosshairs on it; rows: ``image`` (D, H, W[, C]), +
    ``truth``, + ``prediction`` (tinted by ``alpha``; read as by show_predictions), ``spacing`` mm.

    >>> volume = np.random.default_rng(0).random((8, 16, 16))
    >>> fig = show_volume(volume, volume > 0.5, spacing=(4.0, 1.0, 1.0), point=(2, 5, 9))
    >>> [axes.get_title() for axes in fig.axes[3:]], fig.axes[4].get_aspect()
    (['truth, axial 2', 'truth, coronal 5', 'truth, sagittal 9'], 4.0)
    """
    volume, truth, prediction, foreground, spacing = _volumes(
        image, truth, prediction, threshold, mode, spacing, ("show_volume", "truth", "prediction"))
    alpha, shape, masks = check_number(alpha, "alpha", 0, 1), volume.shape[:3], (truth, prediction)
    if point is None:
        where = np.array([shape]) // 2 if foreground is None else np.argwhere(foreground)
        mm = where * spacing  # the centre in mm: thick slices count for their thickness
        point = where[np.argmin(np.square(mm - mm.mean(axis=0)).sum(axis=1))]
    if np.shape(point) != (3,):
        fail("point", "(k, j, i): one index per array axis", point)
    for a, v in enumerate(point):
        if check_int(v, f"point[{a}]", 0) >= shape[a]:
            fail(f"point[{a}]", f"an index below {shape[a]} (the image's size on axis {a})", v)
    rows = [("", None)] + [(f"{n}, ", m) for n, m in zip(("truth", "prediction"), masks) if m]
    names, palette, binary = _classes(masks, class_names)
    figure, grid = _grid(len(rows), 3, extra=0.0 if binary else 0.5)
    for axes, (row, mask) in zip(grid, rows):
        for axis, plane in enumerate(PLANES):
            _plane(axes[axis], f"{row}{plane} {point[axis]}", volume, axis, point[axis], spacing,
                   [mask] if mask else [], [palette], alpha, np.delete(point, axis))
    if not binary:
        _legend(figure, zip(names, palette))
    return figure


def show_slices(image, mask=None, prediction=None, *, n=8, axis=0, spacing=None, columns=4,
                threshold=0.5, mode=None, class_names=None, alpha=0.5):
    """``n`` slices of ``image`` (D, H, W[, C]) normal to ``axis`` spread over the foreground
    (of ``mask``, else ``prediction``; else the volume), titled with their index, ``columns`` to
    a row: ``mask`` tinted by ``alpha``, ``prediction`` outlined (alone: tinted); as show_volume.

    >>> volume = np.zeros((30, 8, 8))
    >>> volume[10:20, 2:6, 2:6] = 1
    >>> [axes.get_title() for axes in show_slices(volume, volume, n=3).axes]
    ['axial 11', 'axial 15', 'axial 18']
    """
    n, columns = check_int(n, "n"), check_int(columns, "columns")
    axis, alpha = check_choice(axis, (0, 1, 2), "axis"), check_number(alpha, "alpha", 0, 1)
    volume, mask, prediction, foreground, spacing = _volumes(
        image, mask, prediction, threshold, mode, spacing, ("show_slices", "mask", "prediction"))
    extent = np.arange(volume.shape[axis]) if foreground is None else np.flatnonzero(
        foreground.any(axis=tuple(a for a in range(3) if a != axis)))
    low, size = int(extent[0]), int(extent[-1] - extent[0]) + 1  # n equal parts' centres:
    indices = np.unique(low + (2 * np.arange(n) + 1) * size // (2 * n)).tolist()  # all if fewer
    names, palette, binary = _classes([mask, prediction], class_names)
    outline = np.array([(0.0, 0.0, 0.0), OUTLINE_COLOR]) if binary and mask else palette
    entries = list(zip(names, palette)) if not binary else [("mask", palette[1]), (
        "prediction (outlined)", outline[1])] if mask and prediction else []
    columns = min(columns, len(indices))
    figure, grid = _grid(-(-len(indices) // columns), columns, extra=0.3 if entries else 0.0,
                         panels=len(indices))
    for axes, index in zip(grid.ravel(), indices):
        _plane(axes, f"{PLANES[axis]} {index}", volume, axis, index, spacing,
               [m for m in (mask, prediction) if m], [palette, outline], alpha)
    if entries:
        _legend(figure, entries)
    return figure


def plot_history(history, metrics=None):
    """Training curves of ``history`` (a History, its dict or a CSVLogger file): a panel per
    metric (``metrics``: a name or list; None: all, the loss first), train and validation."""
    if isinstance(history, (str, os.PathLike)):
        if not Path(history).is_file():
            raise ValueError(f"history: no such file {history}")
        with open(history, newline="") as file:  # CSVLogger: one column per key
            history = {key: column for key, *column in zip(*csv.reader(file))}
    epochs, history = getattr(history, "epoch", None), getattr(history, "history", history)
    if not hasattr(history, "items"):  # a dict or a pandas DataFrame
        fail("history", "a keras History, its .history dict or a CSVLogger file", history)
    # as floats; CSVLogger's "NA" (a value missing that epoch) as NaN
    curves = {str(key): np.atleast_1d(np.genfromtxt([str(v) or "nan" for v in np.ravel(column)]))
              for key, column in history.items() if np.size(column)}
    epochs = curves.pop("epoch", epochs)
    if not curves:
        raise ValueError("history has no values to plot")
    families = sorted(dict.fromkeys(k.removeprefix("val_") for k in curves), key="loss".__ne__)
    wanted = families if metrics is None else [metrics] if isinstance(metrics, str) else metrics
    if not len(wanted) or any(str(name).removeprefix("val_") not in families for name in wanted):
        fail("metrics", f"names of the history's metrics ({', '.join(families)})", metrics)
    families = list(dict.fromkeys(str(name).removeprefix("val_") for name in wanted))
    columns = 2 if len(families) == 4 else min(len(families), 3)  # 4 panels: 2 x 2
    figure, grid = _grid(-(-len(families) // columns), columns, width=4.0, panels=len(families))
    for axes, name in zip(grid.ravel(), families):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if (curve := curves.get(key)) is not None:
                fits = epochs is not None and len(epochs) == curve.size
                x = np.asarray(epochs, float) + 1 if fits else np.arange(1, curve.size + 1)
                axes.plot(x, curve, marker="o" if curve.size <= 30 else None, markersize=3,
                          label=label)
        axes.set(xlabel="epoch", yscale="log" if name in ("lr", "learning_rate") else "linear")
        axes.set_title(name, fontsize=10)
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    return figure


class PredictionCallback(keras.callbacks.Callback):
    """Every ``every`` epochs, :func:`show_predictions` of the first ``n`` images, ``masks`` and
    predictions, titled with the logged ``metrics`` (None: losses, a :data:`TITLE_SCORES`);
    shown in a notebook, else (or with ``output_dir``) written to ``epoch_001.png``, ..."""

    def __init__(self, images, masks=None, *, every=1, output_dir=None, n=4,
                 class_names=None, metrics=None):
        super().__init__()
        if metrics is not None:
            metrics = [metrics] if isinstance(metrics, str) else list(metrics)
            if not metrics or not all(isinstance(name, str) for name in metrics):
                fail("metrics", "names of logged values (['loss', 'val_loss']) or None", metrics)
        self.metrics, self.every, self.n = metrics, check_int(every, "every"), check_int(n, "n")
        samples, single = _batch(images)
        stacked = [image[..., None] if image.ndim == 2 else image for image in samples]
        if len(shapes := {image.shape for image in stacked}) > 1:
            fail("images", "of one shape, to be stacked into one batch", sorted(shapes))
        masks = _batch_like(masks, "masks", single, len(stacked))
        self.images = np.stack(stacked[: self.n]).astype(np.float32)
        self.masks = masks and masks[: self.n]
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.class_names, self.paths, self._handle = class_names, [], None

    def on_train_begin(self, logs=None):
        self._handle = None

    def title_metrics(self, logs):
        """``{name: value}``: the logged values an epoch's title shows (see ``metrics``)."""
        values = {str(key): float(value) for key, value in (logs or {}).items()
                  if np.ndim(value) == 0}
        others = [key for key in values if not key.startswith("val_")
                  and key not in ("loss", "lr", "learning_rate")]
        score = next((key for key in (*TITLE_SCORES, *others) if key in values), None)
        shown = ("loss", "val_loss", score) if self.metrics is None else self.metrics
        return {key: values[key] for key in shown if key in values}

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        scores = keras.ops.convert_to_numpy(self.model.predict_on_batch(self.images))
        figure = show_predictions(self.images, self.masks, scores, n=len(self.images),
                                  class_names=self.class_names)
        shown = ", ".join(f"{key} {value:.4g}" for key, value in self.title_metrics(logs).items())
        title = f"epoch {epoch + 1}" + (f" — {shown}" if shown else "")
        figure.suptitle(textwrap.fill(title, max(30, int(figure.get_figwidth() * 10))),
                        fontsize=10)  # wrapped within the figure: 10 characters an inch
        if notebook := _in_notebook():
            from IPython.display import display
            if self._handle is None:
                self._handle = display(figure, display_id=True)
            else:
                self._handle.update(figure)
        if self.output_dir is not None or not notebook:
            folder = self.output_dir or Path(DEFAULT_OUTPUT_DIR)
            self.paths.append(save_figure(figure, folder / f"epoch_{epoch + 1:03d}.png"))
        plt.close(figure)


def save_figure(figure, path, dpi=120):
    """Write ``figure`` atomically to ``path`` (no suffix: ``.png``) at ``dpi``; close it."""
    if not isinstance(figure, Figure):
        fail("figure", "a matplotlib Figure", type(figure).__name__)
    dpi, path = check_number(dpi, "dpi", 0, open_low=True), Path(path)
    path = path if path.suffix else path.with_suffix(".png")
    kind, kinds = path.suffix[1:].lower(), figure.canvas.get_supported_filetypes()
    if kind not in kinds:
        fail("path", f"a file in a format matplotlib writes ({', '.join(sorted(kinds))})", path)
    try:
        write_atomically(path, lambda file: figure.savefig(file, format=kind, dpi=dpi))
    finally:
        plt.close(figure)
    return path
