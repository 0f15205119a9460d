"""Look at images, masks, predictions, weight maps and training curves (matplotlib).

Every plotting function returns its :class:`matplotlib.figure.Figure`: a notebook
displays it as the cell's value, a script saves it with :func:`save_figure` (or
``fig.savefig``). Nothing calls ``plt.show()`` and nothing chooses a backend, so the
functions work headless (Agg) and inline in Jupyter. In a notebook with the inline
backend the figure is released from pyplot before it is returned, so it is drawn once
(as the cell's value, or with ``display(fig)``), not twice.

The package's conventions are read as they come:

* images: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``; float in [0, 1] (floats outside
  it, e.g. standardised images, are stretched min-max for display), uint8 or uint16;
* masks: binary {0, 1} or integer class indices, ``(H, W)`` or ``(H, W, 1)``;
* predictions: a binary model's probabilities ``(H, W)`` (as
  :func:`keras_unet.inference.predict_tiled` returns them; ``> threshold`` is the
  foreground), class scores ``(H, W, classes)`` (arg-max), or hard masks;
* batches: an ``(N, ...)`` array or a list.

Class ``k`` is drawn in ``class_colors(n)[k]`` whatever ``n``: black background, then
the tab10 colours, then the light tab20 ones, then generated hues. A binary mask's
foreground is tinted in :data:`FOREGROUND_COLOR` in overlays; probability maps are drawn
with the ``magma`` colour map (0 to 1) and a colour bar.
"""

import colorsys
import csv
import math
import numbers
import os
import textwrap
from pathlib import Path

import keras
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import is_color_like, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from keras_unet.images import write_atomically
from keras_unet.evaluation import check_numeric  # one array check for plots and scores

__all__ = [
    "class_colors",
    "overlay",
    "show_predictions",
    "show_weight_map",
    "show_errors",
    "show_tiles",
    "plot_history",
    "PredictionCallback",
    "save_figure",
]

#: Tint of a binary mask's foreground in :func:`overlay` (and the overlay column of
#: :func:`show_predictions`): a vivid green that reads on gray, dark and warm images.
FOREGROUND_COLOR = (0.0, 1.0, 0.0)
FOREGROUND_NAME = "green"
#: Luma weights (ITU-R BT.709) with which a colour image is drawn in gray under a tint.
GRAY_WEIGHTS = (0.2125, 0.7154, 0.0721)
#: Colour map of probability panels.
PROBABILITY_CMAP = "magma"
#: Colours of :func:`show_errors`'s binary error map.
ERROR_COLORS = {
    "true positive": (1.0, 1.0, 1.0),
    "false positive": (0.9, 0.1, 0.1),
    "false negative": (0.0, 0.75, 1.0),
    "true negative": (0.0, 0.0, 0.0),
}
#: Colours of :func:`show_errors`'s multi-class map.
CORRECT_COLOR, WRONG_COLOR = (0.2, 0.2, 0.2), (0.9, 0.1, 0.1)
#: Colour of the tile outlines of :func:`show_tiles`.
TILE_COLOR = (0.0, 0.9, 1.0)
#: Where :class:`PredictionCallback` writes outside a notebook when no folder is given.
DEFAULT_OUTPUT_DIR = "predictions"
PANEL_INCHES = 3.0


# ---------------------------------------------------------------------- arguments


def _count(value, argument):
    """A positive integer argument (``n``, ``every``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{argument} must be an integer >= 1; got {value!r}")
    return int(value)


def _fraction(value, argument):
    """A number in [0, 1] (``alpha``, ``threshold``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{argument} must be a number in [0, 1]; got {value!r}")
    return float(value)


def _rgb(image, argument="image"):
    """An image as float32 ``(H, W, 3)`` in [0, 1] for display."""
    array = check_numeric(image, argument)
    if array.ndim == 3 and array.shape[-1] == 4:  # RGBA: the colour only
        array = array[..., :3]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3))):
        raise ValueError(
            f"{argument} must be (H, W), (H, W, 1) or (H, W, 3); got shape {array.shape}"
        )
    if array.dtype == np.uint8:
        array = array / 255.0
    elif array.dtype == np.uint16:
        array = array / 65535.0
    else:
        floating = array.dtype.kind == "f"
        array = array.astype(np.float64)
        low, high = array.min(), array.max()
        if low < 0 or high > 1 or not floating:  # stretch for display
            array = (array - low) / (high - low) if high > low else np.zeros_like(array)
    if array.ndim == 2:
        array = array[..., None]
    return np.repeat(array, 3 // array.shape[-1], axis=-1).astype(np.float32)


class _Mask:
    """A mask or prediction read in the package's conventions.

    ``labels``: int64 ``(H, W)`` class indices (a binary mask as 0/1); ``probability``:
    the foreground probability ``(H, W)`` of a soft binary prediction, else None;
    ``channels``: the class count of an ``(H, W, classes)`` array, else None.
    """

    def __init__(self, value, argument, threshold=0.5):
        array = check_numeric(value, argument)
        self.probability, self.channels = None, None
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim == 3:  # class scores: arg-max (a 2-class softmax: its threshold)
            self.channels = array.shape[-1]
            soft = array.dtype.kind == "f" and array.min() >= 0 and array.max() <= 1
            if self.channels == 2 and soft:
                self.probability = array[..., 1].astype(np.float32)
                self.labels = (self.probability > threshold).astype(np.int64)
            else:
                self.labels = np.argmax(array, axis=-1).astype(np.int64)
            return
        if array.ndim != 2:
            raise ValueError(
                f"{argument} must be (H, W), (H, W, 1) or (H, W, classes); "
                f"got shape {np.shape(value)}"
            )
        if array.dtype == bool:
            self.labels = array.astype(np.int64)
        elif array.dtype.kind == "f":
            low, high = array.min(), array.max()
            if low >= 0 and high <= 1:  # probabilities, or a {0, 1} mask
                self.labels = (array > threshold).astype(np.int64)
                if not np.isin(array, (0, 1)).all():
                    self.probability = array.astype(np.float32)
            elif low >= 0 and (array == np.round(array)).all():
                self.labels = array.astype(np.int64)
            else:
                raise ValueError(
                    f"float {argument} must hold probabilities in [0, 1] or integer class "
                    f"indices >= 0; found values from {low:g} to {high:g}"
                )
        else:
            if array.min() < 0:
                raise ValueError(
                    f"{argument} must hold class indices >= 0; found {array.min()}"
                )
            if array.max() == 255 and np.isin(array, (0, 255)).all():
                raise ValueError(
                    f"{argument} holds only 0 and 255, which would read as class 255; "
                    f"pass a binary mask ({argument} > 0)"
                )
            self.labels = array.astype(np.int64)

    @property
    def shape(self):
        return self.labels.shape

    @property
    def n_classes(self):
        return max(2, self.channels or 0, int(self.labels.max()) + 1)


def _fit(array, size, argument, reference):
    """``array`` (image-like, ``(H, W, ...)``) at ``size``: equal, or larger by an even
    border on each axis and centre-cropped (a valid-padding U-Net's input context)."""
    height, width = array.shape[:2]
    dh, dw = height - size[0], width - size[1]
    if (dh, dw) == (0, 0):
        return array
    if dh < 0 or dw < 0 or dh % 2 or dw % 2:
        raise ValueError(
            f"{argument} is {height}x{width} but {reference} is {size[0]}x{size[1]}: they "
            f"must be the same size (or {argument} larger by an even border, which is "
            f"centre-cropped, as for a valid-padding U-Net)"
        )
    return array[dh // 2 : height - dh // 2, dw // 2 : width - dw // 2]


def _batch(images):
    """``images`` as a list of samples, and whether it was one image."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("images is empty")
        return [np.asarray(image) for image in images], False
    array = np.asarray(images)
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3, 4)):
        return [array], True
    if array.ndim in (3, 4):
        if not len(array):
            raise ValueError(f"images is empty (shape {array.shape})")
        return list(array), False
    raise ValueError(
        "images must be one image (H, W[, C]), a batch (N, H, W[, C]) or a list of "
        f"images; got shape {array.shape}"
    )


def _batch_like(values, argument, single, count):
    """``truths`` or ``predictions`` as a list of ``count`` samples, or None."""
    if values is None:
        return None
    if single:
        return [np.asarray(values)]
    if isinstance(values, (list, tuple)):
        items = [np.asarray(value) for value in values]
    else:
        array = np.asarray(values)
        if array.ndim < 3:
            raise ValueError(
                f"{argument} must be a batch (N, H, W[, C]) or a list, as images is; "
                f"got shape {array.shape}"
            )
        items = list(array)
    if len(items) != count:
        raise ValueError(f"{argument} has {len(items)} samples but images has {count}")
    return items


def _palette(colors, n_classes):
    """``(n_classes, 3)`` colours from ``colors`` (None, one colour, or one per class)."""
    if colors is None:
        return class_colors(n_classes)
    if isinstance(colors, str) or (np.ndim(colors) == 1 and is_color_like(colors)):
        palette = np.repeat([to_rgb(colors)], n_classes, axis=0)
        palette[0] = 0.0
        return palette
    rows = []
    for index, color in enumerate(colors):
        if not is_color_like(color):
            raise ValueError(f"colors[{index}] is not a matplotlib colour: {color!r}")
        rows.append(to_rgb(color))
    if len(rows) < n_classes:
        raise ValueError(
            f"colors has {len(rows)} colour(s) but the mask has class {n_classes - 1}: give "
            f"one colour per class, background first, or a single colour for all classes"
        )
    return np.array(rows, dtype=np.float64)


def _class_names(class_names, n_classes):
    if class_names is None:
        return [f"class {k}" for k in range(n_classes)]
    names = [str(name) for name in class_names]
    if len(names) < 2:
        raise ValueError(f"class_names must name at least 2 classes; got {class_names!r}")
    return names


# -------------------------------------------------------------------- figures


def _in_notebook():
    """True inside a Jupyter (IPython kernel) session."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _finish(figure):
    """Release ``figure`` from pyplot in an inline notebook (drawn once, as the cell's
    value); elsewhere keep it, so that ``plt.show()`` works in an interactive script."""
    if _in_notebook() and "inline" in matplotlib.get_backend():
        plt.close(figure)
    return figure


def _grid(rows, columns, width=PANEL_INCHES, height=PANEL_INCHES, extra=0.0):
    figure = plt.figure(figsize=(width * columns, height * rows + extra), layout="constrained")
    return figure, figure.subplots(rows, columns, squeeze=False)


def _image_axes(axes, picture, title, **imshow):
    # "antialiased": nearest when a panel enlarges the image, a smoothing filter when it
    # shrinks it (a large image's thin structures then stay visible instead of aliasing)
    axes.imshow(picture, interpolation="antialiased", **imshow)
    axes.set_title(title, fontsize=10)
    axes.set_axis_off()


def _show_mask(axes, labels, binary, palette, title):
    if binary:
        _image_axes(axes, labels > 0, title, cmap="gray", vmin=0, vmax=1)
    else:
        _image_axes(axes, palette[labels].astype(np.float32), title)


def _probability_panel(figure, axes, probability, title, label="probability"):
    """A probability map (0 to 1) in :data:`PROBABILITY_CMAP` with its colour bar."""
    _image_axes(axes, probability, title, cmap=PROBABILITY_CMAP, vmin=0, vmax=1)
    bar = figure.colorbar(axes.images[0], ax=axes, shrink=0.8, aspect=25, pad=0.02)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return bar


def _legend(figure, entries):
    """One legend for the whole figure, below the panels: ``entries`` = [(label, rgb)]."""
    handles = [Patch(facecolor=color, edgecolor="0.5", label=label) for label, color in entries]
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6),
                  fontsize=9, frameon=False)


def _dice(truth, prediction):
    """Mean Dice of the foreground classes present in either mask (1.0 if none)."""
    scores = []
    for k in np.union1d(np.unique(truth), np.unique(prediction)):
        if k == 0:
            continue
        t, p = truth == k, prediction == k
        scores.append(2 * np.count_nonzero(t & p) / (np.count_nonzero(t) + np.count_nonzero(p)))
    return float(np.mean(scores)) if scores else 1.0


# ------------------------------------------------------------------------ public


def class_colors(n_classes):
    """One RGB colour per class: black for the background, then distinct colours.

    Class ``k`` has the same colour whatever ``n_classes``: classes 1-10 take the tab10
    colours, 11-20 the light tab20 ones, further classes generated hues.

    Args:
        n_classes: the number of classes, background included; ``1`` (a binary model's
            single sigmoid channel) is read as 2, background and foreground.

    Returns:
        float ``(max(n_classes, 2), 3)`` RGB in [0, 1], row 0 black.

    Example:
        >>> class_colors(3).round(3).tolist()
        [[0.0, 0.0, 0.0], [0.122, 0.467, 0.706], [1.0, 0.498, 0.055]]
        >>> class_colors(1).shape, class_colors(30).shape
        ((2, 3), (30, 3))
    """
    n_classes = max(_count(n_classes, "n_classes"), 2)
    tab20 = matplotlib.colormaps["tab20"].colors
    colors = [(0.0, 0.0, 0.0), *tab20[0::2], *tab20[1::2]]  # tab20[0::2] is tab10
    for k in range(n_classes - len(colors)):  # golden-ratio hues: all different
        hue = (k * 0.6180339887498949 + 0.05) % 1.0
        saturation, value = (0.8, 0.55)[(k // 3) % 2], (0.95, 0.75, 0.55)[k % 3]
        colors.append(colorsys.hsv_to_rgb(hue, saturation, value))
    return np.array(colors[:n_classes], dtype=np.float64)


def overlay(image, mask, *, alpha=0.5, colors=None, contour=False, gray=False):
    """The image with each non-background class tinted (or outlined) in its colour.

    The background (class 0) keeps the image's own pixel values, so foreground and
    background are told apart at a glance even where the foreground covers most of the
    image (cells in electron microscopy): tinted pixels are coloured, the rest is the
    image.

    Args:
        image: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``; gray becomes RGB.
        mask: ``(H, W)`` or ``(H, W, 1)``: binary {0, 1}, class indices, or a binary
            model's probabilities (``> 0.5`` is the foreground); or class scores
            ``(H, W, classes)`` (arg-max). Class 0, the background, is not drawn.
        alpha: opacity of the tint: a pixel of class ``k`` becomes
            ``(1 - alpha) * image + alpha * colors[k]``.
        colors: ``None``: a binary mask (classes 0 and 1 only, or a binary model's
            probabilities) in :data:`FOREGROUND_COLOR`, a multi-class one (class
            scores, or class indices above 1) in :func:`class_colors`; one matplotlib
            colour for every class; or one colour per class, background first (pass
            ``class_colors(n)`` to draw a multi-class mask in which only class 1 is
            present in the class colours).
        contour: draw only the classes' boundaries (the object pixels on an object's
            edge, ``skimage.segmentation.find_boundaries(mode="inner")``), opaque in
            the class colour; the rest of the image is left as it is.
        gray: draw a colour image in gray (BT.709 luma) under the tint, so that the
            class colours are not mixed with the image's own colours (a blue tint on
            an orange image would turn gray); gray images are unchanged.

    Returns:
        float32 ``(H, W, 3)`` in [0, 1].

    Raises:
        ValueError: for different sizes of ``image`` and ``mask``, a mask that is not
            one of the conventions, too few ``colors``, or ``alpha`` outside [0, 1].

    Example:
        >>> image = np.full((2, 2), 0.5, np.float32)
        >>> mask = np.array([[0, 1], [0, 0]])
        >>> overlay(image, mask, alpha=0.5, colors="red")[0].tolist()
        [[0.5, 0.5, 0.5], [0.75, 0.25, 0.25]]
        >>> overlay(image, mask)[0].tolist()  # the binary foreground in green
        [[0.5, 0.5, 0.5], [0.25, 0.75, 0.25]]
    """
    alpha = _fraction(alpha, "alpha")
    rgb = _rgb(image)
    if gray:
        rgb = np.repeat((rgb @ np.asarray(GRAY_WEIGHTS, np.float32))[..., None], 3, axis=-1)
    mask = _Mask(mask, "mask")
    labels = mask.labels
    if labels.shape != rgb.shape[:2]:
        raise ValueError(
            f"image and mask must have the same height and width; got {rgb.shape[:2]} "
            f"and {labels.shape}"
        )
    if colors is None and mask.n_classes == 2:
        colors = [(0.0, 0.0, 0.0), FOREGROUND_COLOR]
    palette = _palette(colors, max(int(labels.max()) + 1, 2)).astype(np.float32)
    if contour:
        from skimage.segmentation import find_boundaries

        edge = find_boundaries(labels, mode="inner") & (labels > 0)
        rgb[edge] = palette[labels[edge]]
    else:
        tinted = labels > 0
        rgb[tinted] = (1 - alpha) * rgb[tinted] + alpha * palette[labels[tinted]]
    return np.clip(rgb, 0.0, 1.0)


def show_predictions(images, truths=None, predictions=None, *, n=4, class_names=None,
                     threshold=0.5, titles=None):
    """A grid of samples: image | truth | prediction | prediction over the image.

    One row per sample (the first ``n``); the truth and prediction columns appear when
    they are given, the overlay column with the predictions. A binary prediction given
    as probabilities is drawn as a probability map (``magma``, 0 to 1, with a colour
    bar) and its overlay uses ``prediction > threshold``; hard masks are drawn in black
    and white (binary) or in :func:`class_colors` with one legend for the figure
    (multi-class). The overlay column tints the predicted foreground over the image
    drawn in gray (:func:`overlay` with ``gray=True``): in :data:`FOREGROUND_COLOR`
    (binary, named in the column's title) or in the class colours of the legend. With
    truths, each prediction's title has its Dice (the mean over the foreground classes
    present).

    Args:
        images: a batch ``(N, H, W[, C])``, a list of images, or one image ``(H, W)``,
            ``(H, W, 1)``, ``(H, W, 3)`` (then truths and predictions are one sample too).
        truths: masks, one per image: binary or class indices, ``(H, W[, 1])``.
        predictions: one per image: probabilities ``(H, W[, 1])``, class scores
            ``(H, W, classes)``, or hard masks. They may be smaller than the images by
            an even border (a valid-padding U-Net's output): the images (and truths)
            are then centre-cropped for the overlay, and the image shows the region as
            a dashed frame.
        n: the number of samples shown.
        class_names: one name per class for the legend (also fixes the class count);
            default ``"class k"``. A binary model's class 1 names its overlay and
            colour bar (``["membrane", "cell"]``: "overlay (green: cell)").
        threshold: foreground probability threshold of binary predictions.
        titles: one title per image (or per shown image), over its image.

    Returns:
        the :class:`matplotlib.figure.Figure`.

    Raises:
        ValueError: naming the arguments, when truths or predictions do not match the
            images in number or size, for ``n < 1``, or for an unreadable mask.

    Example:
        >>> images = np.random.default_rng(0).random((3, 16, 16, 1))
        >>> truths = (images > 0.5).astype("float32")
        >>> fig = show_predictions(images, truths, images[..., 0], n=2)
        >>> [axes.get_title() for axes in fig.axes[:4]]
        ['image', 'truth', 'prediction (Dice 1.000)', 'overlay (green: foreground)']
        >>> len(fig.axes), fig.axes[2].images[0].colorbar.ax.get_ylabel()  # 2 colour bars
        (10, 'probability')
    """
    n = _count(n, "n")
    threshold = _fraction(threshold, "threshold")
    samples, single = _batch(images)
    count = len(samples)
    truths = _batch_like(truths, "truths", single, count)
    predictions = _batch_like(predictions, "predictions", single, count)
    shown = min(n, count)
    if titles is not None:
        titles = [str(title) for title in titles]
        if len(titles) not in (count, shown):
            raise ValueError(f"titles has {len(titles)} entries but images has {count}")

    rows = []
    for i in range(shown):
        image = _rgb(samples[i], f"images[{i}]")
        truth = None if truths is None else _Mask(truths[i], f"truths[{i}]")
        prediction = (None if predictions is None
                      else _Mask(predictions[i], f"predictions[{i}]", threshold))
        if prediction is not None and truth is not None:
            truth.labels = _fit(truth.labels, prediction.shape, f"truths[{i}]",
                                f"predictions[{i}]")
        size = (prediction.shape if prediction is not None
                else truth.shape if truth is not None else None)
        if size is not None:
            _fit(image, size, f"images[{i}]",
                 f"predictions[{i}]" if prediction is not None else f"truths[{i}]")
        rows.append((image, truth, prediction, size))

    masks = [m for _, t, p, _ in rows for m in (t, p) if m is not None]
    n_classes = max([2] + [m.n_classes for m in masks])
    if class_names is not None:
        if len(class_names) < n_classes:
            raise ValueError(
                f"class_names has {len(class_names)} names but the masks have "
                f"{n_classes} classes"
            )
        n_classes = len(class_names)
    names = _class_names(class_names, n_classes)
    binary = n_classes == 2
    palette = class_colors(n_classes)
    if binary:
        foreground = "foreground" if class_names is None else names[1]
        tint = [(0.0, 0.0, 0.0), FOREGROUND_COLOR]
        overlay_title = f"overlay ({FOREGROUND_NAME}: {foreground})"
    else:
        tint, overlay_title = palette, "overlay"

    columns = ["image"] + ["truth"] * (truths is not None)
    columns += ["prediction", "overlay"] * (predictions is not None)
    figure, grid = _grid(shown, len(columns), extra=0.0 if binary else 0.5)
    for i, (image, truth, prediction, size) in enumerate(rows):
        axes = iter(grid[i])
        title = titles[i] if titles else "image"
        image_axes = next(axes)
        _image_axes(image_axes, image, title)
        if size is not None and size != image.shape[:2]:
            top, left = (image.shape[0] - size[0]) // 2, (image.shape[1] - size[1]) // 2
            image_axes.add_patch(Rectangle((left - 0.5, top - 0.5), size[1], size[0],
                                           fill=False, edgecolor="yellow", linestyle="--"))
        if truth is not None:
            _show_mask(next(axes), truth.labels, binary, palette, "truth")
        if prediction is not None:
            title = "prediction"
            if truth is not None:
                title += f" (Dice {_dice(truth.labels, prediction.labels):.3f})"
            if binary and prediction.probability is not None:
                label = "probability" if class_names is None else f"probability of {foreground}"
                _probability_panel(figure, next(axes), prediction.probability, title, label)
            else:
                _show_mask(next(axes), prediction.labels, binary, palette, title)
            _image_axes(next(axes), overlay(_fit(image, size, "image", "prediction"),
                                            prediction.labels, colors=tint, gray=True),
                        overlay_title)
    if not binary:
        _legend(figure, list(zip(names, palette)))
    return _finish(figure)


def show_weight_map(image, mask, weights):
    """Image | mask | pixel weights with a colour bar, as in the paper's Fig. 3.

    Args:
        image: ``(H, W[, C])``; it may be larger than the mask by an even border (a
            valid-padding input), then it is centre-cropped.
        mask: binary or class indices ``(H, W[, 1])``.
        weights: ``(H, W[, 1])`` pixel weights, e.g. from
            :func:`keras_unet.weights.border_weight_map`.

    Returns:
        the :class:`matplotlib.figure.Figure` (three panels and the colour bar).

    Raises:
        ValueError: for sizes that do not match (naming the arguments), NaN weights,
            or a mask that is not one of the conventions.

    Example:
        >>> mask = np.zeros((32, 32)); mask[8:24, 4:14] = mask[8:24, 16:28] = 1
        >>> from keras_unet.weights import border_weight_map
        >>> fig = show_weight_map(mask, mask, border_weight_map(mask))
        >>> [axes.get_title() for axes in fig.axes]
        ['image', 'mask', 'weight map', '']
    """
    labels = _Mask(mask, "mask").labels
    weights = check_numeric(weights, "weights").astype(np.float32)
    if weights.ndim == 3 and weights.shape[-1] == 1:
        weights = weights[..., 0]
    if weights.ndim != 2:
        raise ValueError(f"weights must be (H, W) or (H, W, 1); got shape {weights.shape}")
    if weights.shape != labels.shape:
        raise ValueError(
            f"mask and weights must have the same height and width; got {labels.shape} "
            f"and {weights.shape}"
        )
    rgb = _fit(_rgb(image), labels.shape, "image", "mask")
    n_classes = max(2, int(labels.max()) + 1)
    figure, grid = _grid(1, 3, extra=0.2)
    _image_axes(grid[0, 0], rgb, "image")
    _show_mask(grid[0, 1], labels, n_classes == 2, class_colors(n_classes), "mask")
    picture = grid[0, 2].imshow(weights, cmap="jet", interpolation="antialiased")
    grid[0, 2].set_title("weight map", fontsize=10)
    grid[0, 2].set_axis_off()
    figure.colorbar(picture, ax=grid[0, 2], shrink=0.8)
    return _finish(figure)


def show_errors(truth, prediction, image=None, *, threshold=0.5):
    """Where a prediction is right and wrong.

    Binary masks: true positives, false positives, false negatives and true negatives
    in the four :data:`ERROR_COLORS`, the counts and the Dice in the title. Multi-class
    masks: correct and wrong pixels, their counts and the pixel accuracy in the title.

    Args:
        truth: binary or class indices ``(H, W[, 1])``.
        prediction: probabilities ``(H, W[, 1])`` (``> threshold`` is the foreground),
            class scores ``(H, W, classes)`` or a hard mask, the truth's size.
        image: the image, shown beside the map; it may be larger by an even border.
        threshold: foreground threshold of binary probabilities.

    Returns:
        the :class:`matplotlib.figure.Figure`.

    Raises:
        ValueError: naming the arguments when sizes differ, or for a mask that is not
            one of the conventions.

    Example:
        >>> truth = np.array([[1, 1, 1, 0], [0, 0, 0, 0]])
        >>> prediction = np.array([[0.9, 0.8, 0.1, 0.7], [0, 0, 0, 0]])
        >>> print(show_errors(truth, prediction).axes[0].get_title())
        TP 2 · FP 1 · FN 1 · TN 4
        Dice 0.667
    """
    threshold = _fraction(threshold, "threshold")
    truth = _Mask(truth, "truth")
    prediction = _Mask(prediction, "prediction", threshold)
    if truth.shape != prediction.shape:
        raise ValueError(
            f"truth and prediction must have the same height and width; got "
            f"{truth.shape} and {prediction.shape}"
        )
    t, p = truth.labels, prediction.labels
    if max(truth.n_classes, prediction.n_classes) == 2:
        cases = {"true positive": (t > 0) & (p > 0), "false positive": (t == 0) & (p > 0),
                 "false negative": (t > 0) & (p == 0), "true negative": (t == 0) & (p == 0)}
        counts = {name: int(np.count_nonzero(where)) for name, where in cases.items()}
        tp, fp, fn, tn = counts.values()
        dice = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
        title = f"TP {tp} · FP {fp} · FN {fn} · TN {tn}\nDice {dice:.3f}"
        entries = [(name, ERROR_COLORS[name]) for name in cases]
    else:
        cases = {"correct": t == p, "wrong": t != p}
        correct, wrong = (int(np.count_nonzero(where)) for where in cases.values())
        title = f"correct {correct} · wrong {wrong}\naccuracy {correct / t.size:.3f}"
        entries = [("correct", CORRECT_COLOR), ("wrong", WRONG_COLOR)]
    errors = np.zeros(t.shape + (3,), np.float32)
    for (_, where), (_, color) in zip(cases.items(), entries):
        errors[where] = color
    panels = 1 if image is None else 2
    figure, grid = _grid(1, panels, width=4.5, height=4.5, extra=0.4)
    if image is not None:
        _image_axes(grid[0, 0], _fit(_rgb(image), t.shape, "image", "truth"), "image")
    _image_axes(grid[0, -1], errors, title)
    _legend(figure, entries)
    return _finish(figure)


def _tile_boxes(boxes, size):
    """``boxes`` as int64 ``(n, 4)`` (top, left, bottom, right) inside an image of
    ``size``; a clear error otherwise."""
    array = np.asarray(boxes)
    if array.ndim != 2 or array.shape[1:] != (4,) or not len(array):
        raise ValueError(
            f"boxes must be (n_tiles, 4) rows of (top, left, bottom, right), as "
            f"keras_unet.inference.tile_grid returns them; got shape {array.shape}"
        )
    if array.dtype.kind not in "iu" and not (
            array.dtype.kind == "f" and np.all(array == np.round(array))):
        raise ValueError(f"boxes must hold whole pixel coordinates; got dtype {array.dtype}")
    array = array.astype(np.int64)
    top, left, bottom, right = array.T
    bad = (top < 0) | (left < 0) | (bottom > size[0]) | (right > size[1]) | (top >= bottom) | (
        left >= right)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"boxes[{i}] = {array[i].tolist()} is not a non-empty (top, left, bottom, right) "
            f"box inside the {size[0]}x{size[1]} prediction"
        )
    return array


def show_tiles(image, prediction, boxes, *, zoom=48, threshold=0.5):
    """An overlap-tile prediction with its tiles drawn: is there a seam where they meet?

    Three panels: the image with every tile's output region outlined; the prediction
    with the same outlines (and the close-up's window); and a close-up of the
    prediction, ``2 * zoom`` pixels wide, centred on the first point where tile borders
    meet (a corner of four tiles, else a border between two). A binary model's
    probabilities (or a two-class softmax's class-1 probability) are drawn with the
    ``magma`` colour map and a colour bar, hard masks in black and white or in
    :func:`class_colors`.

    Args:
        image: ``(H, W[, C])``, the image that was predicted.
        prediction: what :func:`keras_unet.inference.predict_tiled` returned for it:
            probabilities ``(H, W)``, class scores ``(H, W, classes)``, or a hard mask.
        boxes: ``(n_tiles, 4)`` rows of ``(top, left, bottom, right)``, each tile's
            output region in image pixels (bottom and right exclusive), as
            :func:`keras_unet.inference.tile_grid` returns them.
        zoom: half the close-up's side in pixels; ``0`` or ``None`` for no close-up
            (there is none either when a single tile covers the image).
        threshold: foreground threshold of binary probabilities (for hard classes).

    Returns:
        the :class:`matplotlib.figure.Figure`.

    Raises:
        ValueError: for an image and prediction of different sizes, boxes that are not
            ``(n, 4)`` boxes inside the image (naming the first bad one), or a bad
            ``zoom``.

    Example:
        >>> prediction = np.tile(np.linspace(0, 1, 64), (64, 1))
        >>> boxes = [[0, 0, 32, 32], [0, 32, 32, 64], [32, 0, 64, 32], [32, 32, 64, 64]]
        >>> fig = show_tiles(prediction, prediction, boxes, zoom=8)
        >>> [axes.get_title() for axes in fig.axes[:3]]
        ['image, 4 tiles', 'prediction, tile outputs outlined', 'close-up: tile corner (32, 32)']
        >>> [float(v) for v in fig.axes[2].get_xlim() + fig.axes[2].get_ylim()]
        [23.5, 39.5, 39.5, 23.5]
    """
    threshold = _fraction(threshold, "threshold")
    if zoom is None:
        zoom = 0
    if isinstance(zoom, bool) or not isinstance(zoom, numbers.Integral) or zoom < 0:
        raise ValueError(f"zoom must be an integer >= 0 or None; got {zoom!r}")
    predicted = _Mask(prediction, "prediction", threshold)
    rgb = _rgb(image)
    if rgb.shape[:2] != predicted.shape:
        raise ValueError(
            f"image and prediction must have the same height and width; got "
            f"{rgb.shape[:2]} and {predicted.shape}"
        )
    boxes = _tile_boxes(boxes, predicted.shape)
    tops, lefts = sorted({int(t) for t in boxes[:, 0] if t > 0}), sorted(
        {int(v) for v in boxes[:, 1] if v > 0})
    height, width = predicted.shape
    centre = None
    if zoom and (tops or lefts):
        kind = "tile corner" if tops and lefts else "tile border"
        centre = (tops[0] if tops else height // 2, lefts[0] if lefts else width // 2)

    n_classes = predicted.n_classes
    figure, grid = _grid(1, 3 if centre else 2, width=4.0, height=4.0)
    _image_axes(grid[0, 0], rgb, f"image, {len(boxes)} tile{'s' * (len(boxes) != 1)}")
    panels = [grid[0, 1]] + ([grid[0, 2]] if centre else [])
    for axes in panels:
        if predicted.probability is not None:
            drawn = axes.imshow(predicted.probability, cmap=PROBABILITY_CMAP, vmin=0, vmax=1,
                                interpolation="antialiased")
        elif n_classes == 2:
            drawn = axes.imshow(predicted.labels > 0, cmap="gray", vmin=0, vmax=1,
                                interpolation="antialiased")
        else:
            drawn = axes.imshow(class_colors(n_classes)[predicted.labels].astype(np.float32),
                                interpolation="antialiased")
        axes.set_axis_off()
    for axes in [grid[0, 0], *panels]:
        for top, left, bottom, right in boxes:
            axes.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top,
                                     fill=False, edgecolor=TILE_COLOR, linewidth=1.2,
                                     linestyle="--" if axes is not grid[0, 0] else "-"))
    grid[0, 1].set_title("prediction, tile outputs outlined", fontsize=10)
    if predicted.probability is not None:
        figure.colorbar(drawn, ax=panels, shrink=0.8, label="probability")
    if centre:
        y, x = centre
        window = (max(y - zoom, 0), max(x - zoom, 0), min(y + zoom, height), min(x + zoom, width))
        grid[0, 1].add_patch(Rectangle((window[1] - 0.5, window[0] - 0.5),
                                       window[3] - window[1], window[2] - window[0],
                                       fill=False, edgecolor="white", linewidth=1.5))
        close = grid[0, 2]
        close.set_xlim(window[1] - 0.5, window[3] - 0.5)
        close.set_ylim(window[2] - 0.5, window[0] - 0.5)
        close.set_title(f"close-up: {kind} ({y}, {x})", fontsize=10)
    return _finish(figure)


def _read_history(history):
    """``({key: float array}, epochs)`` from a History, a dict or a CSVLogger file."""
    epochs = None
    if isinstance(history, (str, os.PathLike)):
        path = Path(history)
        if not path.is_file():
            raise ValueError(f"history: no such file {path}")
        with open(path, newline="") as file:
            rows = list(csv.DictReader(file))
        if not rows:
            raise ValueError(f"history file {path} has no rows")
        values = {key: [row[key] for row in rows] for key in rows[0] if key is not None}
    elif isinstance(history, keras.callbacks.History) or hasattr(history, "history"):
        values, epochs = history.history, getattr(history, "epoch", None)
    elif hasattr(history, "to_dict"):  # a pandas DataFrame
        values = history.to_dict("list")
    elif isinstance(history, dict):
        values = history
    else:
        raise ValueError(
            "history must be a keras History, its .history dict or the path of a "
            f"CSVLogger file; got {type(history).__name__}"
        )

    def number(value):
        try:
            return float(value)
        except (TypeError, ValueError):  # CSVLogger writes "NA" for a missing value
            return math.nan

    curves = {str(key): np.array([number(v) for v in np.ravel(column)])
              for key, column in values.items()}
    if "epoch" in curves:
        epochs = curves.pop("epoch")
    curves = {key: curve for key, curve in curves.items() if curve.size}
    if not curves:
        raise ValueError("history has no values to plot")
    return curves, epochs


def plot_history(history, metrics=None):
    """Training curves: one panel per metric, training and validation (``val_``).

    Args:
        history: what ``model.fit`` returned (a ``keras.callbacks.History``), its
            ``.history`` dict, or the path of a ``keras.callbacks.CSVLogger`` file.
        metrics: the metrics to draw (``"loss"``, ``"dice"``, ...; a ``val_`` name
            means its metric), one name or a list; ``None`` for every metric, the loss
            first. A learning rate is drawn on a log scale.

    Returns:
        the :class:`matplotlib.figure.Figure`, one panel per metric, three to a row
        (four as two rows of two).

    Raises:
        ValueError: for a name in ``metrics`` that the history does not have (listing
            those it has), or an empty or unreadable history.

    Example:
        >>> history = {"loss": [0.9, 0.5, 0.4], "val_loss": [1.0, 0.7, 0.6],
        ...            "dice": [0.3, 0.6, 0.7], "val_dice": [0.2, 0.5, 0.6]}
        >>> fig = plot_history(history)
        >>> [axes.get_title() for axes in fig.axes]
        ['loss', 'dice']
        >>> fig.axes[0].lines[1].get_ydata().tolist()
        [1.0, 0.7, 0.6]
    """
    curves, epochs = _read_history(history)
    families = []
    for key in curves:
        family = key[4:] if key.startswith("val_") else key
        if family not in families:
            families.append(family)
    if "loss" in families:
        families.remove("loss")
        families.insert(0, "loss")
    if metrics is not None:
        wanted = [metrics] if isinstance(metrics, str) else list(metrics)
        if not wanted:
            raise ValueError("metrics is empty: name at least one metric, or pass None")
        chosen = []
        for name in wanted:
            family = str(name)[4:] if str(name).startswith("val_") else str(name)
            if family not in families:
                raise ValueError(
                    f"metrics: the history has no {name!r}; it has {', '.join(families)}"
                )
            if family not in chosen:
                chosen.append(family)
        families = chosen

    columns = 2 if len(families) == 4 else min(len(families), 3)  # 4 panels: 2 x 2
    rows = -(-len(families) // columns)
    figure, grid = _grid(rows, columns, width=4.0)
    for axes in grid.ravel()[len(families):]:
        axes.remove()
    for axes, family in zip(grid.ravel(), families):
        for key, label in ((family, "train"), (f"val_{family}", "validation")):
            if key not in curves:
                continue
            curve = curves[key]
            x = (np.asarray(epochs, float) + 1 if epochs is not None
                 and len(epochs) == curve.size else np.arange(1, curve.size + 1))
            axes.plot(x, curve, marker="o" if curve.size <= 30 else None, markersize=3,
                      label=label)
        if family in ("lr", "learning_rate"):
            axes.set_yscale("log")
        axes.set_title(family, fontsize=10)
        axes.set_xlabel("epoch")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    return _finish(figure)


#: The scores a :class:`PredictionCallback` title shows beside the losses: the first logged.
TITLE_SCORES = ("val_dice", "dice", "val_mean_iou", "mean_iou")


def _title_metrics(logs, metrics=None):
    """The logged values a callback's title shows: ``metrics`` in order, or the loss,
    the validation loss and one score (:data:`TITLE_SCORES`, else the first other
    training metric)."""
    values = {}
    for key, value in (logs or {}).items():
        if np.ndim(value) == 0:
            try:
                values[str(key)] = float(value)
            except (TypeError, ValueError):
                continue
    if metrics is not None:
        return {key: values[key] for key in metrics if key in values}
    chosen = [key for key in ("loss", "val_loss") if key in values]
    score = next((key for key in TITLE_SCORES if key in values), None)
    if score is None:
        score = next((key for key in values if key not in chosen and not key.startswith("val_")
                      and key not in ("lr", "learning_rate")), None)
    return {key: values[key] for key in chosen + ([score] if score else [])}


class PredictionCallback(keras.callbacks.Callback):
    """Show the model's predictions on a few fixed images while it trains.

    Every ``every`` epochs the images are predicted (``model.predict_on_batch`` on
    them stacked: they must fit the model's input as given) and drawn with
    :func:`show_predictions`, titled with the epoch and a few of its logs (by default
    the loss, the validation loss and one Dice: see ``metrics``), wrapped within the
    figure's width, which the panels fix whatever is logged. In a Jupyter notebook
    the figure is shown inline, each epoch's replacing the previous one (the
    training log above stays). Outside a notebook, or whenever ``output_dir`` is
    given, it is written to ``output_dir/epoch_001.png``, ``epoch_002.png``, ...
    (``DEFAULT_OUTPUT_DIR`` in the working folder when none is given; the paths are
    kept in ``callback.paths``). Figures are closed after use.

    Args:
        images: a batch ``(N, H, W, C)`` or a list of images of one shape.
        masks: their true masks (optional), shown in a column.
        every: draw every this many epochs.
        output_dir: folder for the PNG files (created).
        n: how many of the images are used.
        class_names: names for the multi-class legend (or a binary model's two
            classes, naming its overlay).
        metrics: the logged values shown in the title, by their names in the logs
            (``["loss", "val_loss", "val_mean_iou"]``; those an epoch did not log are
            left out); ``None`` for the loss, ``val_loss`` and the first of
            ``val_dice``, ``dice``, ``val_mean_iou``, ``mean_iou`` that is logged
            (else the first other training metric).

    Raises:
        ValueError: for ``every`` or ``n`` < 1, images of different shapes, masks
            that do not match the images in number, or ``metrics`` that are not
            names.

    Example:
        >>> from keras_unet import build_unet
        >>> import tempfile
        >>> model = build_unet((32, 32, 1), 1, depth=2, filters=4)
        >>> model.compile("adam", "binary_crossentropy")
        >>> images = np.random.default_rng(0).random((4, 32, 32, 1)).astype("float32")
        >>> masks = (images > 0.5).astype("float32")
        >>> folder = Path(tempfile.mkdtemp())
        >>> callback = PredictionCallback(images, masks, n=2, output_dir=folder)
        >>> _ = model.fit(images, masks, epochs=2, verbose=0, callbacks=[callback])
        >>> sorted(path.name for path in folder.iterdir())
        ['epoch_001.png', 'epoch_002.png']
    """

    def __init__(self, images, masks=None, *, every=1, output_dir=None, n=4,
                 class_names=None, metrics=None):
        super().__init__()
        if metrics is not None:
            metrics = [metrics] if isinstance(metrics, str) else list(metrics)
            if not metrics or not all(isinstance(name, str) for name in metrics):
                raise ValueError(
                    f"metrics must be names of logged values, e.g. ['loss', 'val_loss'], "
                    f"or None; got {metrics!r}"
                )
        self.metrics = metrics
        self.every, self.n = _count(every, "every"), _count(n, "n")
        samples, single = _batch(images)
        stacked = [np.asarray(image, np.float32) for image in samples]
        stacked = [image[..., None] if image.ndim == 2 else image for image in stacked]
        if len({image.shape for image in stacked}) > 1:
            raise ValueError(
                "images must all have one shape to be stacked into one batch; got "
                f"{sorted({image.shape for image in stacked})}"
            )
        masks = _batch_like(masks, "masks", single, len(stacked))
        self.images = np.stack(stacked[: self.n])
        self.masks = None if masks is None else masks[: self.n]
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.class_names = class_names
        self.paths = []
        self._handle = None

    def on_train_begin(self, logs=None):
        self._handle = None

    def title_metrics(self, logs):
        """``{name: value}``: the logged values an epoch's title shows (see ``metrics``)."""
        return _title_metrics(logs, self.metrics)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        scores = keras.ops.convert_to_numpy(self.model.predict_on_batch(self.images))
        if scores.ndim == 4 and scores.shape[-1] == 1:
            scores = scores[..., 0]
        figure = show_predictions(self.images, self.masks, scores, n=len(self.images),
                                  class_names=self.class_names)
        shown = self.title_metrics(logs)
        title = f"epoch {epoch + 1}"
        if shown:
            title += " — " + ", ".join(f"{key} {value:.4g}" for key, value in shown.items())
        # wrapped within the figure's width (10 characters an inch at 10 points): a
        # long title never widens the figure
        figure.suptitle(textwrap.fill(title, max(30, int(figure.get_figwidth() * 10))),
                        fontsize=10)
        notebook = _in_notebook()
        if notebook:
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
    """Write a figure to a file atomically, and close it.

    The file is written beside its destination and then moved into place, so an
    interrupted run never leaves a half-written image; the folder is created.

    Args:
        figure: a :class:`matplotlib.figure.Figure`.
        path: the file; its suffix chooses the format (PNG if it has none: ``.png`` is
            added).
        dpi: resolution, dots per inch.

    Returns:
        the written file's :class:`pathlib.Path`.

    Raises:
        ValueError: for something that is not a figure, a format matplotlib cannot
            write, or a dpi that is not a positive number.

    Example:
        >>> import tempfile
        >>> fig = plot_history({"loss": [1.0, 0.5]})
        >>> path = save_figure(fig, Path(tempfile.mkdtemp()) / "curves" / "loss")
        >>> path.name, path.read_bytes()[:4]
        ('loss.png', b'\\x89PNG')
    """
    if not isinstance(figure, Figure):
        raise ValueError(f"figure must be a matplotlib Figure; got {type(figure).__name__}")
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real) or not 0 < dpi < math.inf:
        raise ValueError(f"dpi must be a positive number; got {dpi!r}")
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    kind = path.suffix[1:].lower()
    if kind not in figure.canvas.get_supported_filetypes():
        raise ValueError(
            f"path {path} has the suffix {path.suffix!r}, a format matplotlib cannot write; "
            f"use .png (or one of {', '.join(sorted(figure.canvas.get_supported_filetypes()))})"
        )
    try:
        write_atomically(path, lambda file: figure.savefig(file, format=kind, dpi=dpi))
    finally:
        plt.close(figure)
    return path
