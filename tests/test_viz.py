"""keras_unet/viz.py: colours, overlay pixels, figure panels and titles, error counts,
training curves from a History and a CSVLogger file, the training callback, saving."""

import re
import types

import matplotlib

matplotlib.use("Agg")  # tests only: the module itself never chooses a backend

import IPython
import IPython.display
import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage.segmentation import find_boundaries

from keras_unet import build_unet, viz
from keras_unet.datasets import synthetic_cells
from keras_unet.images import as_image, as_mask, as_prediction, read_image, read_mask
from keras_unet.viz import (
    ERROR_COLORS,
    FOREGROUND_COLOR,
    PredictionCallback,
    class_colors,
    overlay,
    plot_history,
    save_figure,
    show_errors,
    show_predictions,
    show_slices,
    show_tiles,
    show_volume,
    show_weight_map,
)
from keras_unet.weights import border_weight_map

TAB10 = np.array(matplotlib.colormaps["tab10"].colors)


@pytest.fixture(autouse=True)
def no_figure_left_open():
    """Every test starts and ends with no pyplot figure open (none leaks)."""
    plt.close("all")
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def isbi(shared_data):
    """Two real ISBI 2012 images (512x512x1), their masks, and a fake prediction: the
    truth blurred (a probability map, soft on the membranes)."""
    folder = shared_data / "isbi2012_em"
    images = np.stack([read_image(folder / "images" / f"{i:02d}.png") for i in (0, 1)])
    masks = np.stack([read_mask(folder / "masks" / f"{i:02d}.png") for i in (0, 1)])
    blurred = np.stack([ndimage.gaussian_filter(m[..., 0], 3) for m in masks])
    return images, masks, blurred.astype(np.float32)


def titles(figure):
    return [axes.get_title() for axes in figure.axes]


def panel_titles(figure):
    """The titles of the image panels, colour bars left out."""
    return [axes.get_title() for axes in figure.axes if not hasattr(axes, "_colorbar")]


def colorbars(figure):
    """The colour bars' axes of a figure."""
    return [axes for axes in figure.axes if hasattr(axes, "_colorbar")]


def spread(rgb):
    """How coloured each pixel is: its largest channel minus its smallest (0 for gray)."""
    return rgb.max(axis=-1) - rgb.min(axis=-1)


def picture(axes):
    """The array drawn in an image panel."""
    return np.asarray(axes.images[0].get_array())


def refusal(call, *args, **kwargs):
    """The text of the ValueError that ``call(*args, **kwargs)`` raises."""
    with pytest.raises(ValueError) as info:
        call(*args, **kwargs)
    return str(info.value)


def dice(truth, prediction):
    truth, prediction = truth.astype(bool), prediction.astype(bool)
    return 2 * np.sum(truth & prediction) / (truth.sum() + prediction.sum())


# -------------------------------------------------------------------- class_colors


@pytest.mark.parametrize("n", [1, 2, 3, 10, 11, 12, 21, 22, 50, 300])
def test_class_colors_shape_black_background_distinct(n):
    colors = class_colors(n)
    assert colors.shape == (max(n, 2), 3)
    assert colors[0].tolist() == [0.0, 0.0, 0.0]
    assert colors.min() >= 0 and colors.max() <= 1
    assert len(np.unique(colors, axis=0)) == len(colors)  # every class its own colour


def test_class_colors_are_tab10_then_tab20_and_stable_across_n():
    np.testing.assert_allclose(class_colors(2)[1], TAB10[0])  # binary: black, tab:blue
    np.testing.assert_allclose(class_colors(1), class_colors(2))
    np.testing.assert_allclose(class_colors(11)[1:], TAB10)
    tab20 = np.array(matplotlib.colormaps["tab20"].colors)
    np.testing.assert_allclose(class_colors(21)[11:], tab20[1::2])  # the light ones
    np.testing.assert_allclose(class_colors(300)[:5], class_colors(5))  # class k keeps its colour


@pytest.mark.parametrize("n", [0, -1, 2.0, True, "3"])
def test_class_colors_bad_count(n):
    with pytest.raises(ValueError, match="n_classes must be an integer >= 1"):
        class_colors(n)


# ------------------------------------------------------------------------ overlay


def test_overlay_tints_the_mask_pixel_with_alpha():
    image = np.full((4, 5), 0.5, np.float32)
    mask = np.zeros((4, 5, 1), np.float32)
    mask[1, 2] = 1
    out = overlay(image, mask)
    assert out.shape == (4, 5, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[1, 2], 0.5 * 0.5 + 0.5 * np.array(FOREGROUND_COLOR), atol=1e-6)
    np.testing.assert_allclose(overlay(image, mask, alpha=0.4, colors=class_colors(2))[1, 2],
                               0.6 * 0.5 + 0.4 * TAB10[0], atol=1e-6)
    untouched = np.ones((4, 5), bool)
    untouched[1, 2] = False
    np.testing.assert_allclose(out[untouched], 0.5)  # gray -> RGB, unchanged


def test_overlay_multiclass_rgb_image_with_custom_colours():
    image = np.zeros((3, 3, 3), np.float32)
    image[..., 2] = 0.8  # blue
    mask = np.array([[0, 1, 2], [2, 1, 0], [0, 0, 0]])
    out = overlay(image, mask, alpha=0.5, colors=["black", "red", "lime"])
    np.testing.assert_allclose(out[0, 1], [0.5, 0.0, 0.4])
    np.testing.assert_allclose(out[0, 2], [0.0, 0.5, 0.4])
    np.testing.assert_allclose(out[1, 0], [0.0, 0.5, 0.4])
    np.testing.assert_allclose(out[2], [[0, 0, 0.8]] * 3)
    # one colour for every class; alpha 1 paints it
    np.testing.assert_allclose(overlay(image, mask, alpha=1, colors="yellow")[0, 1:], [[1, 1, 0]] * 2)


def test_overlay_reads_probabilities_above_one_half_and_class_scores():
    image = np.zeros((1, 3))
    out = overlay(image, np.array([[0.7, 0.5, 0.3]]), alpha=1.0)
    np.testing.assert_allclose(out[0], [FOREGROUND_COLOR, [0, 0, 0], [0, 0, 0]])
    scores = np.array([[[0.1, 0.2, 0.7], [0.8, 0.1, 0.1], [0.2, 0.6, 0.2]]])  # classes 2, 0, 1
    out = overlay(image, scores, alpha=1.0)
    np.testing.assert_allclose(out[0], [TAB10[1], [0, 0, 0], TAB10[0]])


def test_overlay_uint8_image_and_standardised_float_image():
    mask = np.zeros((2, 2), int)
    np.testing.assert_allclose(overlay(np.array([[0, 51], [102, 255]], np.uint8), mask)[..., 0],
                               [[0, 0.2], [0.4, 1]], atol=1e-6)
    np.testing.assert_allclose(overlay(np.array([[-2.0, 0.0], [1.0, 2.0]]), mask)[..., 1],
                               [[0, 0.5], [0.75, 1]])  # stretched min-max for display


def test_overlay_contour_paints_exactly_the_boundaries():
    image = np.full((12, 12), 0.25, np.float32)
    mask = np.zeros((12, 12), int)
    mask[2:7, 2:7] = 1  # a 5x5 square of class 1
    mask[4:10, 7:11] = 2  # touching a 6x4 block of class 2
    out = overlay(image, mask, contour=True)
    changed = np.any(out != 0.25, axis=-1)
    expected = find_boundaries(mask, mode="inner") & (mask > 0)
    np.testing.assert_array_equal(changed, expected)
    ring = np.zeros((12, 12), bool)
    ring[2:7, 2:7] = True
    ring[3:6, 3:6] = False  # the square's inner edge: its outer ring of pixels
    np.testing.assert_array_equal(changed & (mask == 1), ring)
    colors = class_colors(3).astype(np.float32)
    np.testing.assert_allclose(out[2, 2], colors[1])  # opaque class colour
    np.testing.assert_allclose(out[5, 7], colors[2])
    np.testing.assert_allclose(out[4, 4], 0.25)  # the square's inside is not filled
    assert expected.sum() == 16 + 14 + 2  # the 5x5 ring, the 6x4 block's, 2 touching


def test_overlay_tells_cells_from_membranes_on_a_real_isbi_image(isbi):
    """ISBI 2012: cells (the foreground) cover most of the slice. The membranes keep the
    image's gray; every cell pixel, dark or light, is clearly green."""
    images, masks, _ = isbi
    image, cells = images[0, ..., 0], masks[0, ..., 0] > 0
    assert 0.7 < cells.mean() < 0.9
    out = overlay(images[0], masks[0])
    np.testing.assert_allclose(out[~cells], np.repeat(image[~cells, None], 3, axis=-1))
    assert spread(out[~cells]).max() == 0  # the background stays gray
    assert spread(out[cells]).min() >= 0.45  # no cell pixel looks gray
    green, others = out[cells, 1], out[cells][:, [0, 2]].max(axis=-1)
    assert (green - others).min() >= 0.45
    dark = cells & (image < 0.3)  # dark cell pixels (vesicles, mitochondria) are tinted too
    assert dark.sum() > 1000 and spread(out[dark]).min() >= 0.45


def test_overlay_tells_cells_from_membranes_on_synthetic_cells():
    images, masks, _ = synthetic_cells(2, size=96, seed=3)
    for image, mask in zip(images, masks):
        cells = mask[..., 0] > 0
        out = overlay(image, mask)
        np.testing.assert_allclose(out[~cells], np.repeat(image[~cells], 3, axis=-1))
        assert spread(out[~cells]).max() == 0
        assert spread(out[cells]).min() >= 0.45
        # the tint lifts the green channel by half the distance to 1 on every cell pixel
        np.testing.assert_allclose(out[cells, 1], 0.5 + 0.5 * image[cells, 0], atol=1e-6)


def test_overlay_multiclass_tints_each_class_and_leaves_the_background():
    rng = np.random.default_rng(2)
    image = rng.uniform(0.05, 0.95, (20, 20)).astype(np.float32)  # dark to light gray
    labels = rng.integers(0, 4, (20, 20))
    out = overlay(image, labels)
    colors = class_colors(4)
    background = labels == 0
    np.testing.assert_allclose(out[background], np.repeat(image[background, None], 3, axis=-1))
    for k in (1, 2, 3):
        where = labels == k
        np.testing.assert_allclose(out[where], 0.5 * image[where, None] + 0.5 * colors[k],
                                   atol=1e-6)
        assert spread(out[where]).min() >= 0.2, k  # tab blue, orange, green: all visible
    # class scores: arg-max, class colours even where only classes 0 and 1 win
    scores = np.zeros((2, 2, 3), np.float32)
    scores[..., 0], scores[0, 0] = 0.6, [0.1, 0.8, 0.1]
    np.testing.assert_allclose(overlay(np.zeros((2, 2)), scores, alpha=1)[0, 0], colors[1])


def test_overlay_gray_draws_a_colour_image_in_gray_under_the_tint():
    image = np.zeros((2, 3, 3), np.float32)
    image[..., 0], image[..., 1] = 0.9, 0.5  # orange
    mask = np.array([[0, 1, 2], [0, 0, 0]])
    luma = 0.2125 * 0.9 + 0.7154 * 0.5
    out = overlay(image, mask, gray=True)
    np.testing.assert_allclose(out[1], [[luma] * 3] * 3, atol=1e-6)
    np.testing.assert_allclose(out[0, 1], 0.5 * luma + 0.5 * class_colors(3)[1], atol=1e-6)
    # without gray, a blue tint on an orange image comes out nearly gray
    assert spread(overlay(image, mask)[0, 1:2]).max() < 0.25 < spread(out[0, 1:2]).min()
    gray_image = np.full((2, 3), 0.3, np.float32)
    np.testing.assert_array_equal(overlay(gray_image, mask, gray=True), overlay(gray_image, mask))


def test_overlay_multilabel_tints_each_label_and_their_overlap():
    image = np.full((2, 3), 0.5, np.float32)
    labels = np.zeros((2, 3, 2), bool)
    labels[0, :2, 0] = True
    labels[0, 1:, 1] = True  # both labels at (0, 1)
    colors = class_colors(3)  # label l in class colour l + 1
    out = overlay(image, labels)
    np.testing.assert_allclose(out[0, 0], 0.25 + 0.5 * colors[1], atol=1e-6)
    np.testing.assert_allclose(out[0, 2], 0.25 + 0.5 * colors[2], atol=1e-6)
    np.testing.assert_allclose(out[0, 1], 0.5 * (0.25 + 0.5 * colors[1]) + 0.5 * colors[2],
                               atol=1e-6)  # tinted by each label
    np.testing.assert_allclose(out[1], 0.5)
    sigmoid = np.where(labels, 0.9, 0.2).astype(np.float32)  # each channel thresholded
    np.testing.assert_allclose(overlay(image, sigmoid, mode="multilabel"), out)
    edges = overlay(image, labels, contour=True, alpha=1)
    np.testing.assert_allclose(edges[0, 1], colors[2])  # the later label's edge on top


def test_overlay_errors():
    image = np.zeros((4, 4))
    with pytest.raises(ValueError, match="mask is 4x5 but image is 4x4: they must be the same size$"):
        overlay(image, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0 and <= 1; got 1.5"):
        overlay(image, np.zeros((4, 4)), alpha=1.5)
    with pytest.raises(ValueError, match="colors must be one colour, or one per class up to class 2"):
        overlay(image, np.full((4, 4), 2), colors=["black", "red"])
    with pytest.raises(ValueError, match=r"colors\[1\] = 'not-a-colour' is not a matplotlib colour"):
        overlay(image, np.ones((4, 4), int), colors=["black", "not-a-colour"])
    # the mask and image rules are keras_unet.images': the same verdict and the same text
    for bad in (np.eye(4, dtype=np.uint8) * 255, np.eye(4, dtype=np.int64) * 255,
                np.full((4, 4), 1.5), np.where(np.eye(4) * np.arange(4) == 3, np.nan, 0)):
        assert refusal(overlay, image, bad) == refusal(as_prediction, bad, "mask")
    assert "(mask > 0)" in refusal(overlay, image, np.eye(4, dtype=np.int64) * 255)
    bad_image = np.zeros((4, 4, 5))
    assert refusal(overlay, bad_image, image) == refusal(as_image, bad_image, "image",
                                                         stretch=True)


# --------------------------------------------------------------- show_predictions


def test_show_predictions_on_real_isbi_images(isbi):
    images, masks, blurred = isbi
    figure = show_predictions(images, masks, blurred)
    assert isinstance(figure, matplotlib.figure.Figure)
    # 2 rows of 4, a colour bar for each probability map; binary: no legend
    assert len(figure.axes) == 10 and len(colorbars(figure)) == 2 and not figure.legends
    scores = [dice(masks[i, ..., 0], blurred[i] > 0.5) for i in (0, 1)]
    assert 0.95 < min(scores) < 1  # the blur moves the membranes' edges a little
    assert panel_titles(figure) == [
        title for s in scores for title in
        ("image", "truth", f"prediction (Dice {s:.3f})", "overlay (green: foreground)")]
    image_axes, truth_axes, prediction_axes, overlay_axes = [
        axes for axes in figure.axes if not hasattr(axes, "_colorbar")][4:]
    np.testing.assert_allclose(picture(image_axes)[..., 0], images[1, ..., 0])
    np.testing.assert_array_equal(picture(truth_axes), masks[1, ..., 0] > 0)
    assert prediction_axes.images[0].get_cmap().name == "magma"
    assert prediction_axes.images[0].get_clim() == (0, 1)
    np.testing.assert_allclose(picture(prediction_axes), blurred[1])  # the probabilities
    np.testing.assert_allclose(picture(overlay_axes), overlay(images[1], blurred[1] > 0.5))
    assert plt.get_fignums() == [figure.number]  # outside a notebook: kept for plt.show()


def test_show_predictions_columns_follow_the_data():
    rng = np.random.default_rng(0)
    images = rng.random((5, 8, 8, 1)).astype(np.float32)
    masks = (images > 0.5).astype(np.float32)
    assert titles(show_predictions(images)) == ["image"] * 4  # n=4 of 5
    assert titles(show_predictions(images, masks, n=2)) == ["image", "truth"] * 2
    assert panel_titles(show_predictions(images, predictions=images[..., 0], n=1)) == [
        "image", "prediction", "overlay (green: foreground)"]
    figure = show_predictions(list(images), list(masks), list(masks), n=10)
    assert len(figure.axes) == 20 and not colorbars(figure)  # all 5 samples; hard masks
    # a hard binary prediction is drawn black and white, not as probabilities
    assert figure.axes[2].images[0].get_cmap().name == "gray"
    assert figure.axes[2].get_title() == "prediction (Dice 1.000)"


def test_show_predictions_one_image_and_titles():
    image = np.linspace(0, 1, 64).reshape(8, 8)
    truth = (image > 0.5).astype(int)
    figure = show_predictions(image, truth, np.where(image > 0.75, 0.9, 0.1), titles=["slice 7"])
    # truth: k/63 > 0.5, 32 pixels; prediction: k/63 > 0.75, 16 of them: Dice 2*16 / 48
    assert panel_titles(figure) == ["slice 7", "truth", "prediction (Dice 0.667)",
                                    "overlay (green: foreground)"]
    figure = show_predictions(np.zeros((3, 8, 8)), titles=["a", "b", "c"], n=2)
    assert titles(figure) == ["a", "b"]


def test_show_predictions_multiclass_draws_class_colours_and_one_legend():
    rng = np.random.default_rng(1)
    images = rng.random((3, 6, 6, 3)).astype(np.float32)
    truths = rng.integers(0, 3, (3, 6, 6, 1))
    scores = rng.random((3, 6, 6, 3)).astype(np.float32)
    labels = scores.argmax(-1)
    figure = show_predictions(images, truths, scores, n=2, class_names=["bg", "cell", "border"])
    assert len(figure.axes) == 8
    assert len(figure.legends) == 1 and not any(axes.get_legend() for axes in figure.axes)
    legend = figure.legends[0]
    assert [text.get_text() for text in legend.get_texts()] == ["bg", "cell", "border"]
    np.testing.assert_allclose([patch.get_facecolor()[:3] for patch in legend.get_patches()],
                               class_colors(3))
    colors = class_colors(3)
    np.testing.assert_allclose(picture(figure.axes[1]), colors[truths[0, ..., 0]])
    np.testing.assert_allclose(picture(figure.axes[2]), colors[labels[0]])
    # the overlay: the class colours over the colour image drawn in gray
    np.testing.assert_allclose(picture(figure.axes[3]), overlay(images[0], labels[0], gray=True),
                               atol=1e-6)
    # without names: "class k", as many as the masks have
    figure = show_predictions(images, truths)
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["class 0", "class 1", "class 2"]


def test_show_predictions_multilabel_truths_and_sigmoid_predictions():
    rng = np.random.default_rng(4)
    images = rng.random((2, 8, 8, 1)).astype(np.float32)
    truths = rng.random((2, 8, 8, 3)) > 0.5
    truths[0, 0, 0, 0] = True
    sigmoid = np.where(truths, 0.8, 0.1).astype(np.float32)
    sigmoid[0, 0, 0, 0] = 0.3  # one pixel of label 0 missed
    figure = show_predictions(images, truths, sigmoid, class_names=["none", "a", "b", "c"])
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["none", "a", "b", "c"]
    assert not colorbars(figure)
    held = truths[0, ..., 0].sum()
    first = (2 * (held - 1) / (2 * held - 1) + 2) / 3
    assert [titles(figure)[i] for i in (2, 6)] == [f"prediction (Dice {first:.3f})",
                                                   "prediction (Dice 1.000)"]
    for row in (0, 1):
        np.testing.assert_allclose(picture(figure.axes[4 * row + 3]),
                                   overlay(images[row], sigmoid[row] > 0.5, gray=True))
    errors = show_errors(truths[0], sigmoid[0])
    assert errors.axes[0].get_title() == "correct 63 · wrong 1\naccuracy 0.984"


def test_show_predictions_probability_maps_carry_a_colour_bar(isbi):
    images, masks, blurred = isbi
    figure = show_predictions(images, masks, blurred)
    panels = [axes for axes in figure.axes if axes.get_title().startswith("prediction")]
    assert len(panels) == 2
    for axes in panels:
        bar = axes.images[0].colorbar  # each probability map has its own, beside it
        assert bar is not None and bar.ax in figure.axes
        assert bar.ax.get_ylabel() == "probability"
        assert (bar.vmin, bar.vmax) == (0, 1) and bar.cmap.name == "magma"
    # two-class softmax scores: class 1's probability, with a bar named after the class
    scores = np.stack([1 - blurred[0], blurred[0]], axis=-1)
    figure = show_predictions(images[0], masks[0], scores, class_names=["membrane", "cell"])
    assert panel_titles(figure)[3] == "overlay (green: cell)"
    assert [bar.get_ylabel() for bar in colorbars(figure)] == ["probability of cell"]
    # hard masks, binary or multi-class, are classes: no colour bar
    assert not colorbars(show_predictions(images, masks, blurred > 0.5))
    assert not colorbars(show_predictions(images[0], masks[0], np.stack([1 - blurred[0]] * 2 + [
        blurred[0]], axis=-1)))


def test_show_predictions_overlay_reads_on_a_colour_image():
    """An orange pet on a blue background: the overlay draws the photo in gray, so the
    blue tint of the pet class stays blue instead of mixing with the orange to gray."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :48]
    pet = (yy - 24) ** 2 + (xx - 24) ** 2 < 15 ** 2
    image = np.where(pet[..., None], [0.85, 0.5, 0.15], [0.25, 0.35, 0.75])
    image = np.clip(image + rng.normal(0, 0.05, image.shape), 0, 1).astype(np.float32)
    labels = pet.astype(np.int64)
    labels[pet & ((yy - 24) ** 2 + (xx - 24) ** 2 >= 12 ** 2)] = 2  # a border ring
    figure = show_predictions(image, labels, labels, class_names=["background", "pet", "border"])
    out = picture(figure.axes[3])
    luma = image @ np.array([0.2125, 0.7154, 0.0721])  # BT.709
    background = labels == 0
    np.testing.assert_allclose(out[background], np.repeat(luma[background, None], 3, -1),
                               atol=1e-5)
    inside = labels == 1
    assert (out[inside, 2] - out[inside, 0]).min() > 0.2  # blue, as the legend says
    assert spread(out[inside]).min() > 0.25
    assert (out[labels == 2, 0] - out[labels == 2, 2]).min() > 0.3  # the orange ring
    # the image column keeps the photo's colours
    np.testing.assert_allclose(picture(figure.axes[0]), image)


def test_show_predictions_crops_images_to_a_valid_padding_output():
    image = np.zeros((12, 10), np.float32)
    image[2:10, 1:9] = 1.0  # the 8x8 centre
    figure = show_predictions(image, np.ones((8, 8)), np.ones((8, 8)))
    assert picture(figure.axes[0]).shape == (12, 10, 3)  # the whole input, framed
    frame = figure.axes[0].patches[0]
    assert (frame.get_x(), frame.get_y(), frame.get_width(), frame.get_height()) == (0.5, 1.5, 8, 8)
    np.testing.assert_allclose(picture(figure.axes[3]), overlay(np.ones((8, 8)), np.ones((8, 8))))


def test_show_predictions_errors_name_the_arguments():
    images = np.zeros((3, 8, 8, 1))
    with pytest.raises(ValueError, match="truths has 2 samples but images has 3"):
        show_predictions(images, np.zeros((2, 8, 8, 1)))
    with pytest.raises(ValueError, match="predictions has 4 samples but images has 3"):
        show_predictions(images, predictions=[np.zeros((8, 8))] * 4)
    with pytest.raises(ValueError, match=r"truths\[0\] is 8x8 but predictions\[0\] is 8x7"):
        show_predictions(images, np.zeros((3, 8, 8)), np.zeros((3, 8, 7)))
    with pytest.raises(ValueError, match=r"images\[0\] is 8x8 but truths\[0\] is 9x9"):
        show_predictions(images, np.zeros((3, 9, 9)))
    with pytest.raises(ValueError, match=r"images\[0\] is 8x8 but predictions\[0\] is 7x7"):
        show_predictions(images, predictions=np.zeros((3, 7, 7)))  # odd border: no crop
    with pytest.raises(ValueError, match="n must be an integer >= 1; got 0"):
        show_predictions(images, n=0)
    with pytest.raises(ValueError, match="titles has 2 entries but images has 3"):
        show_predictions(images, titles=["a", "b"])
    with pytest.raises(ValueError, match="class_names must be one name for each of the masks' 4 classes; got"):
        show_predictions(images, np.full((3, 8, 8), 3), class_names=["a", "b"])
    with pytest.raises(ValueError, match="threshold must be a finite number >= 0 and <= 1"):
        show_predictions(images, threshold=2)
    bad = np.zeros((3, 8, 8))
    bad[1, 0, 0] = np.nan
    assert refusal(show_predictions, images, predictions=bad) == refusal(
        as_prediction, bad[1], "predictions[1]")
    truths = np.zeros((3, 8, 8), np.int64)
    truths[2, :4] = 255  # {0, 255} in any integer dtype: refused as by as_mask
    assert refusal(show_predictions, images, truths) == refusal(as_mask, truths[2], "truths[2]")
    assert plt.get_fignums() == []  # no half-drawn figure left behind


# ---------------------------------------------------------------- show_weight_map


def test_show_weight_map_on_a_real_isbi_mask(isbi):
    images, masks, _ = isbi
    mask = masks[0, :128, :128]
    weights = border_weight_map(mask)
    figure = show_weight_map(images[0, :128, :128], mask, weights)
    assert len(figure.axes) == 4  # three panels and the colour bar
    assert titles(figure) == ["image", "mask", "weight map", ""]
    np.testing.assert_allclose(picture(figure.axes[2]), weights[..., 0])
    assert figure.axes[2].images[0].get_clim() == pytest.approx((weights.min(), weights.max()))
    low, high = figure.axes[3].get_ylim()  # the colour bar spans the weights
    assert (low, high) == pytest.approx((weights.min(), weights.max()))
    assert weights.max() > 5  # the paper's w0 = 10 shows between close cells


def test_show_weight_map_errors():
    with pytest.raises(ValueError, match="weights is 8x6 but mask is 8x8: they must be the same size$"):
        show_weight_map(np.zeros((8, 8)), np.zeros((8, 8)), np.ones((8, 6)))
    with pytest.raises(ValueError, match="image is 8x8 but mask is 10x10"):
        show_weight_map(np.zeros((8, 8)), np.zeros((10, 10)), np.ones((10, 10)))
    with pytest.raises(ValueError, match="weights contains 1 NaN"):
        show_weight_map(np.zeros((2, 2)), np.zeros((2, 2)), [[1, np.nan], [1, 1]])


# --------------------------------------------------------------------- show_tiles


def test_show_tiles_on_a_real_isbi_image_with_the_paper_grid(isbi):
    images, _, blurred = isbi
    model = build_unet((None, None, 1), 2, depth=4, filters=2, padding="valid")
    from keras_unet.inference import tile_grid

    boxes = tile_grid(model, images[0].shape)  # tile 572 -> 388, 384 kept: 2 x 2 tiles
    figure = show_tiles(images[0], blurred[0], boxes, zoom=48)
    assert titles(figure)[:3] == ["image, 4 tiles", "prediction, tile outputs outlined",
                                  "close-up: tile corner (384, 384)"]
    assert len(figure.axes) == 4  # three panels and the colour bar
    image_axes, prediction_axes, close = figure.axes[:3]
    outlines = [(r.get_xy(), r.get_width(), r.get_height()) for r in image_axes.patches]
    assert outlines == [((-0.5, -0.5), 384, 384), ((383.5, -0.5), 128, 384),
                        ((-0.5, 383.5), 384, 128), ((383.5, 383.5), 128, 128)]
    assert len(prediction_axes.patches) == 5  # the tiles and the close-up's window
    window = prediction_axes.patches[-1]
    assert (window.get_xy(), window.get_width(), window.get_height()) == ((335.5, 335.5), 96, 96)
    assert [float(v) for v in close.get_xlim() + close.get_ylim()] == [335.5, 431.5, 431.5, 335.5]
    np.testing.assert_allclose(picture(close), blurred[0])  # probabilities, 0 to 1
    assert close.images[0].get_clim() == (0, 1)
    assert figure.axes[3].get_ylabel() == "probability"


def test_show_tiles_one_row_two_class_scores_and_one_tile():
    scores = np.zeros((40, 90, 2), np.float32)
    scores[..., 1] = np.linspace(0, 1, 90)
    scores[..., 0] = 1 - scores[..., 1]
    figure = show_tiles(np.zeros((40, 90)), scores, [[0, 0, 40, 48], [0, 48, 40, 90]], zoom=10)
    assert titles(figure)[2] == "close-up: tile border (20, 48)"  # no corner: the middle
    np.testing.assert_allclose(picture(figure.axes[1]), scores[..., 1])  # class 1's probability
    assert [float(v) for v in figure.axes[2].get_xlim()] == [37.5, 57.5]
    single = show_tiles(np.zeros((40, 90)), scores, [[0, 0, 40, 90]])
    assert titles(single)[:2] == ["image, 1 tile", "prediction, tile outputs outlined"]
    assert len(single.axes) == 3  # two panels and the colour bar: nothing to zoom on
    assert len(show_tiles(np.zeros((40, 90)), scores, [[0, 0, 40, 48], [0, 48, 40, 90]],
                          zoom=None).axes) == 3


def test_show_tiles_draws_hard_class_masks_in_class_colours():
    mask = np.zeros((32, 32), np.int64)
    mask[:, 16:] = 2
    figure = show_tiles(np.zeros((32, 32)), mask, [[0, 0, 32, 16], [0, 16, 32, 32]], zoom=4)
    np.testing.assert_allclose(picture(figure.axes[1])[0, 20], class_colors(3)[2], atol=1e-6)
    assert len(figure.axes) == 3  # no colour bar for classes


def test_show_tiles_errors():
    image = np.zeros((32, 32))
    with pytest.raises(ValueError, match=re.escape("boxes must be (n_tiles, 4) rows of whole-pixel")):
        show_tiles(image, image, [0, 0, 32, 32])
    with pytest.raises(ValueError, match=re.escape(
            "boxes[1] must be a non-empty box inside the 32x32 prediction; got [0, 16, 32, 40]")):
        show_tiles(image, image, [[0, 0, 32, 16], [0, 16, 32, 40]])
    with pytest.raises(ValueError, match="boxes must be .* whole-pixel .*16.5"):
        show_tiles(image, image, [[0, 0, 32, 16.5]])
    with pytest.raises(ValueError, match="prediction is 32x32 but image is 30x32: they must be"):
        show_tiles(np.zeros((30, 32)), image, [[0, 0, 32, 32]])
    with pytest.raises(ValueError, match="zoom must be an integer >= 0; got -1"):
        show_tiles(image, image, [[0, 0, 32, 32]], zoom=-1)


# -------------------------------------------------------------------- show_errors


def test_show_errors_hand_counts_and_dice():
    truth = np.array([[1, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    prediction = np.array([[1, 1, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]], np.float32)
    figure = show_errors(truth, prediction)
    assert len(figure.axes) == 1
    assert figure.axes[0].get_title() == "TP 2 · FP 1 · FN 1 · TN 8\nDice 0.667"
    tp, fp, fn, tn = (re.search(name + r" (\d+)", figure.axes[0].get_title()).group(1)
                      for name in ("TP", "FP", "FN", "TN"))
    assert 2 * int(tp) / (2 * int(tp) + int(fp) + int(fn)) == pytest.approx(2 / 3)
    errors = picture(figure.axes[0])
    np.testing.assert_allclose(errors[0], [ERROR_COLORS["true positive"]] * 2
                               + [ERROR_COLORS["false negative"], ERROR_COLORS["false positive"]])
    np.testing.assert_allclose(errors[1:].reshape(-1, 3), [ERROR_COLORS["true negative"]] * 8)
    legend = figure.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [
        "true positive", "false positive", "false negative", "true negative"]
    np.testing.assert_allclose([p.get_facecolor()[:3] for p in legend.get_patches()],
                               list(ERROR_COLORS.values()))


def test_show_errors_thresholds_probabilities_and_shows_the_image(isbi):
    images, masks, blurred = isbi
    figure = show_errors(masks[0], blurred[0], images[0], threshold=0.5)
    assert titles(figure)[0] == "image"
    truth, prediction = masks[0, ..., 0] > 0, blurred[0] > 0.5
    tp, fp = np.sum(truth & prediction), np.sum(~truth & prediction)
    fn, tn = np.sum(truth & ~prediction), np.sum(~truth & ~prediction)
    assert tp + fp + fn + tn == 512 * 512
    assert titles(figure)[1] == (f"TP {tp} · FP {fp} · FN {fn} · TN {tn}\n"
                                 f"Dice {dice(truth, prediction):.3f}")
    high = show_errors(masks[0], blurred[0], threshold=0.9).axes[0].get_title()
    assert int(re.search(r"FN (\d+)", high).group(1)) > fn  # a higher threshold misses more


def test_show_errors_multiclass_correct_and_wrong():
    truth = np.array([[0, 1, 2], [2, 2, 1]])
    prediction = np.array([[0, 2, 2], [2, 1, 1]])
    figure = show_errors(truth, prediction)
    assert figure.axes[0].get_title() == "correct 4 · wrong 2\naccuracy 0.667"
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["correct", "wrong"]
    np.testing.assert_allclose(picture(figure.axes[0])[0, 1], viz.WRONG_COLOR)
    np.testing.assert_allclose(picture(figure.axes[0])[0, 0], viz.CORRECT_COLOR)


def test_show_errors_size_mismatch():
    with pytest.raises(ValueError, match="prediction is 4x3 but truth is 4x4: they must be the same size$"):
        show_errors(np.zeros((4, 4)), np.zeros((4, 3)))


# ------------------------------------------------------------------- plot_history


HISTORY = {"loss": [0.9, 0.5, 0.4], "dice": [0.3, 0.6, 0.7], "pixel_error": [0.2, 0.1, 0.05],
           "val_loss": [1.0, 0.7, 0.6], "val_dice": [0.2, 0.5, 0.6], "val_pixel_error": [0.3, 0.2, 0.1]}


def test_plot_history_one_panel_per_metric_train_and_validation():
    figure = plot_history(HISTORY)
    assert titles(figure) == ["loss", "dice", "pixel_error"]
    for axes, name in zip(figure.axes, ("loss", "dice", "pixel_error")):
        train, validation = axes.lines
        assert (train.get_label(), validation.get_label()) == ("train", "validation")
        assert train.get_xdata().tolist() == [1, 2, 3]  # epochs from 1
        assert train.get_ydata().tolist() == HISTORY[name]
        assert validation.get_ydata().tolist() == HISTORY[f"val_{name}"]
        assert axes.get_xlabel() == "epoch"
    # the loss comes first whatever the order; a metric without validation has one line
    figure = plot_history({"iou": [0.1, 0.2], "loss": [2.0, 1.0], "learning_rate": [1e-3, 1e-4]})
    assert titles(figure) == ["loss", "iou", "learning_rate"]
    assert len(figure.axes[1].lines) == 1 and figure.axes[2].get_yscale() == "log"


def test_plot_history_four_metrics_two_by_two():
    history = dict(HISTORY, iou=[0.1, 0.3, 0.5])
    figure = plot_history(history)
    assert titles(figure) == ["loss", "dice", "pixel_error", "iou"]
    rows_columns = {axes.get_subplotspec().get_geometry()[:2] for axes in figure.axes}
    assert rows_columns == {(2, 2)} and figure.get_size_inches().tolist() == [8.0, 6.0]
    assert plot_history(HISTORY).get_size_inches().tolist() == [12.0, 3.0]  # 3 in a row


def test_plot_history_chosen_metrics_and_unknown_key():
    assert titles(plot_history(HISTORY, metrics=["dice"])) == ["dice"]
    assert titles(plot_history(HISTORY, metrics="val_pixel_error")) == ["pixel_error"]
    assert titles(plot_history(HISTORY, metrics=["pixel_error", "loss", "val_loss"])) == [
        "pixel_error", "loss"]
    with pytest.raises(ValueError, match=re.escape(
            "metrics must be names of the history's metrics (loss, dice, pixel_error); got "
            "['dice', 'iou']")):
        plot_history(HISTORY, metrics=["dice", "iou"])
    with pytest.raises(ValueError, match="history has no values"):
        plot_history({})
    with pytest.raises(ValueError, match="history: no such file"):
        plot_history("/nonexistent/log.csv")
    with pytest.raises(ValueError, match="history must be a keras History, its .history dict or a CSVLogger file; got 42"):
        plot_history(42)


def test_plot_history_from_a_keras_fit_and_its_csvlogger_file(tmp_path):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((16, 4)).astype(np.float32)
    y = (x.sum(axis=1, keepdims=True) > 2).astype(np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    log = tmp_path / "log.csv"
    history = model.fit(x, y, validation_split=0.25, epochs=2, verbose=0,
                        callbacks=[keras.callbacks.CSVLogger(str(log))])
    assert log.read_text().splitlines()[0].split(",")[:2] == ["epoch", "accuracy"]
    for source in (history, history.history, log, str(log)):
        figure = plot_history(source)
        assert titles(figure) == ["loss", "accuracy"]
        train, validation = figure.axes[0].lines
        assert train.get_xdata().tolist() == [1, 2]
        np.testing.assert_allclose(train.get_ydata(), history.history["loss"], rtol=1e-6)
        np.testing.assert_allclose(validation.get_ydata(), history.history["val_loss"], rtol=1e-6)
        plt.close(figure)


# ------------------------------------------------------------- PredictionCallback


def tiny_unet(classes=1):
    keras.utils.set_random_seed(0)
    model = build_unet((32, 32, 1), classes, depth=2, filters=4)
    loss = "binary_crossentropy" if classes == 1 else "sparse_categorical_crossentropy"
    model.compile("adam", loss)
    return model


def test_callback_writes_one_png_per_epoch_outside_a_notebook(tmp_path, toy_disks):
    images, masks = toy_disks(n=6)
    folder = tmp_path / "snapshots" / "run1"  # created
    callback = PredictionCallback(images, masks, n=3, output_dir=folder)
    assert callback.images.shape == (3, 32, 32, 1)
    tiny_unet().fit(images, masks, epochs=2, batch_size=3, verbose=0, callbacks=[callback])
    assert sorted(p.name for p in folder.iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert callback.paths == [folder / "epoch_001.png", folder / "epoch_002.png"]
    with Image.open(folder / "epoch_002.png") as png:
        assert png.format == "PNG"
        assert png.size == (4 * 3 * 120, 3 * 3 * 120)  # 4 columns, 3 rows, 3 in at 120 dpi
    assert plt.get_fignums() == []  # closed


def test_callback_every_other_epoch_and_default_folder(tmp_path, toy_disks, monkeypatch):
    monkeypatch.chdir(tmp_path)
    images, masks = toy_disks(n=2)
    callback = PredictionCallback(list(images), every=2)
    tiny_unet().fit(images, masks, epochs=5, verbose=0, callbacks=[callback])
    assert sorted(p.name for p in (tmp_path / viz.DEFAULT_OUTPUT_DIR).iterdir()) == [
        "epoch_002.png", "epoch_004.png"]


class FakeKernelShell:
    kernel = object()


def test_callback_in_a_notebook_displays_and_replaces_the_figure(toy_disks, monkeypatch):
    shown = []

    class Handle:
        def update(self, figure):
            shown.append(("update", figure))

    def display(figure, display_id=False):
        shown.append(("display", figure))
        return Handle()

    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeKernelShell())
    monkeypatch.setattr(IPython.display, "display", display)
    assert viz._in_notebook()
    images, masks = toy_disks(n=3)
    labels = masks[..., 0].astype(np.int32) * 2  # classes 0 and 2 of 3
    callback = PredictionCallback(images, labels, class_names=["bg", "a", "b"])
    tiny_unet(3).fit(images, labels, epochs=3, verbose=0, callbacks=[callback])
    assert [kind for kind, _ in shown] == ["display", "update", "update"]
    figure = shown[-1][1]
    assert figure._suptitle.get_text().startswith("epoch 3 — loss ")
    assert titles(figure)[:4] == ["image", "truth", titles(figure)[2], "overlay"]
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["bg", "a", "b"]
    assert callback.paths == [] and plt.get_fignums() == []  # nothing written, all closed


#: What a multi-class compile_unet logs at an epoch's end: 14 values.
MULTICLASS_LOGS = {name: 0.5 for name in (
    "dice", "dice_class0", "dice_class1", "dice_class2", "loss", "mean_iou", "pixel_error")}
MULTICLASS_LOGS.update({f"val_{name}": 0.25 for name in list(MULTICLASS_LOGS)})


def test_callback_title_shows_three_metrics_at_a_fixed_width(toy_disks, tmp_path, monkeypatch):
    """However many values are logged, the title shows the loss, the validation loss and
    one Dice, and the figure (as a notebook draws it: its tight bounding box) keeps its
    width."""
    import io

    saved = []
    monkeypatch.setattr(viz, "save_figure", lambda figure, path: saved.append(figure) or path)
    images, masks = toy_disks(n=2)
    callback = PredictionCallback(images, masks, output_dir=tmp_path)
    callback.set_model(tiny_unet(1))
    assert len(MULTICLASS_LOGS) == 14
    callback.on_epoch_end(0, {"loss": 0.6, "val_loss": 0.7})
    callback.on_epoch_end(1, MULTICLASS_LOGS)
    widths = []
    for figure in saved:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        with Image.open(buffer) as png:
            widths.append(png.size[0])
    assert widths[0] == widths[1] <= 4 * 3 * 100  # 4 panels of 3 inches
    two, many = (figure._suptitle.get_text() for figure in saved)
    assert two == "epoch 1 — loss 0.6, val_loss 0.7"
    assert many == "epoch 2 — loss 0.5, val_loss 0.25, val_dice 0.25"
    assert many.count(",") + 1 <= 3 and "\n" not in many
    assert callback.title_metrics({"loss": 1.0, "dice": 0.5, "iou": 0.2}) == {"loss": 1.0,
                                                                            "dice": 0.5}
    assert callback.title_metrics({"loss": 1.0, "accuracy": 0.9, "val_accuracy": 0.8,
                                   "learning_rate": 1e-3}) == {"loss": 1.0, "accuracy": 0.9}


def test_callback_metrics_chosen_and_a_long_title_wrapped(toy_disks, tmp_path, monkeypatch):
    import io

    saved = []
    monkeypatch.setattr(viz, "save_figure", lambda figure, path: saved.append(figure) or path)
    images, masks = toy_disks(n=2)
    callback = PredictionCallback(images, masks, output_dir=tmp_path,
                                  metrics=["val_mean_iou", "loss", "not_logged"])
    callback.set_model(tiny_unet(1))
    callback.on_epoch_end(0, MULTICLASS_LOGS)
    assert saved[0]._suptitle.get_text() == "epoch 1 — val_mean_iou 0.25, loss 0.5"
    every = PredictionCallback(images, masks, output_dir=tmp_path, metrics=list(MULTICLASS_LOGS))
    every.set_model(callback.model)
    every.on_epoch_end(0, MULTICLASS_LOGS)  # asked for all 14: wrapped within 12 inches
    lines = saved[1]._suptitle.get_text().split("\n")
    assert len(lines) == 3 and max(map(len, lines)) <= 12 * 10
    buffer = io.BytesIO()
    saved[1].savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    with Image.open(buffer) as png:
        assert png.size[0] <= 4 * 3 * 100  # the long title fits in the panels' width
    assert PredictionCallback(images, metrics="dice").metrics == ["dice"]
    with pytest.raises(ValueError, match="metrics must be names of logged values"):
        PredictionCallback(images, metrics=[1, 2])
    with pytest.raises(ValueError, match="metrics must be names of logged values"):
        PredictionCallback(images, metrics=[])


def test_in_notebook_detection_and_inline_figures_released(monkeypatch):
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert not viz._in_notebook()
    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace())  # a terminal
    assert not viz._in_notebook()
    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeKernelShell())
    monkeypatch.setattr(matplotlib, "get_backend",
                        lambda: "module://matplotlib_inline.backend_inline")
    figure = show_errors(np.eye(3), np.eye(3))
    assert plt.get_fignums() == []  # drawn once, as the cell's value
    assert figure.axes[0].get_title() == "TP 3 · FP 0 · FN 0 · TN 6\nDice 1.000"


def test_in_a_real_jupyter_kernel_figures_show_once_and_the_callback_updates_its_own(tmp_path):
    """A real IPython kernel with the inline backend: a plotting call as the cell's value
    is drawn exactly once; the callback shows one display that each epoch updates, and
    writes no file."""
    import os

    from jupyter_client.manager import start_new_kernel

    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the inline default
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))

    def run(code):
        """The cell's outputs: [(message type, mime types)], stream text left out."""
        msg_id, outputs = client.execute(code), []
        while True:
            message = client.get_iopub_msg(timeout=120)
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "status" and content["execution_state"] == "idle":
                return outputs
            if kind == "error":
                raise AssertionError("\n".join(content["traceback"]))
            if kind in ("display_data", "execute_result", "update_display_data"):
                outputs.append((kind, sorted(content["data"])))

    try:
        assert run("import matplotlib, numpy as np\nfrom keras_unet import viz") == []
        png = ["image/png", "text/plain"]
        assert run("viz.show_errors(np.eye(3), np.eye(3))") == [("execute_result", png)]
        assert run("fig = viz.show_predictions(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)))") == []
        assert run("fig") == [("execute_result", png)]
        outputs = run(
            "import keras\nfrom keras_unet import build_unet\n"
            "model = build_unet((32, 32, 1), 1, depth=2, filters=4)\n"
            "model.compile('adam', 'binary_crossentropy')\n"
            "x = np.random.default_rng(0).random((2, 32, 32, 1)).astype('float32')\n"
            "callback = viz.PredictionCallback(x, (x > 0.5).astype('float32'))\n"
            "_ = model.fit(x, x > 0.5, epochs=3, verbose=0, callbacks=[callback])\n"
            "assert callback.paths == [], callback.paths\n"
            "import matplotlib.pyplot as plt\nassert plt.get_fignums() == []"
        )
        assert outputs == [("display_data", png), ("update_display_data", png),
                           ("update_display_data", png)]
        assert list(tmp_path.iterdir()) == []
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_callback_errors():
    images = np.zeros((4, 32, 32, 1))
    with pytest.raises(ValueError, match="every must be an integer >= 1; got 0"):
        PredictionCallback(images, every=0)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        PredictionCallback(images, n=-2)
    with pytest.raises(ValueError, match="masks has 3 samples but images has 4"):
        PredictionCallback(images, np.zeros((3, 32, 32, 1)))
    with pytest.raises(ValueError, match=r"images must be of one shape, to be stacked into one batch; got \[\(16, 16, 1\), \(32"):
        PredictionCallback([np.zeros((32, 32)), np.zeros((16, 16))])


# -------------------------------------------------------------------- save_figure


def test_save_figure_writes_a_png_atomically_and_closes(tmp_path):
    figure = plot_history(HISTORY, metrics="loss")
    path = save_figure(figure, tmp_path / "new" / "folder" / "curves.png", dpi=50)
    assert path == tmp_path / "new" / "folder" / "curves.png"
    with Image.open(path) as png:
        png.load()
        assert png.format == "PNG" and png.size == (200, 150)  # 4x3 inches at 50 dpi
    assert list(path.parent.iterdir()) == [path]  # no temporary file left
    assert plt.get_fignums() == []
    assert save_figure(show_errors(np.eye(2), np.eye(2)), tmp_path / "errors").name == "errors.png"


def test_save_figure_errors(tmp_path):
    with pytest.raises(ValueError, match="figure must be a matplotlib Figure; got 'ndarray'"):
        save_figure(np.zeros(3), tmp_path / "x.png")
    figure = plot_history(HISTORY)
    with pytest.raises(ValueError, match="dpi must be a finite number > 0; got 0"):
        save_figure(figure, tmp_path / "x.png", dpi=0)
    with pytest.raises(ValueError, match=r"path must be a file in a format matplotlib writes \(.*png.*\); got .*x\.docx"):
        save_figure(figure, tmp_path / "x.docx")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ show_volume, show_slices


def volume_and_cube(shape=(6, 10, 14), box=(slice(2, 5), slice(3, 8), slice(4, 11))):
    """A float volume in [0, 1] (every voxel its own value) and a binary cube in it."""
    volume = np.random.default_rng(3).random(shape).astype(np.float32)
    truth = np.zeros(shape, np.uint8)
    truth[box] = 1
    return volume, truth


def gray(plane):
    return np.repeat(plane[..., None], 3, axis=-1)


def line_positions(axes):
    """(y of the horizontal line, x of the vertical line) of a panel's crosshair."""
    horizontal, vertical = axes.lines
    assert horizontal.get_ydata()[0] == horizontal.get_ydata()[1]
    assert vertical.get_xdata()[0] == vertical.get_xdata()[1]
    return horizontal.get_ydata()[0], vertical.get_xdata()[0]


def test_show_volume_draws_the_three_planes_through_the_point():
    volume, _ = volume_and_cube()
    figure = show_volume(volume, point=(1, 7, 12), spacing=(5.0, 0.5, 0.8))
    assert titles(figure) == ["axial 1", "coronal 7", "sagittal 12"]
    axial, coronal, sagittal = figure.axes
    np.testing.assert_array_equal(picture(axial), gray(volume[1]))  # (H, W) = 10x14
    np.testing.assert_array_equal(picture(coronal), gray(volume[:, 7]))  # (D, W) = 6x14
    np.testing.assert_array_equal(picture(sagittal), gray(volume[:, :, 12]))  # (D, H) = 6x10
    assert [axes.get_aspect() for axes in figure.axes] == pytest.approx([0.5 / 0.8, 5 / 0.8, 10])
    assert [axes.images[0].origin for axes in figure.axes] == ["upper", "lower", "lower"]
    assert [line_positions(axes) for axes in figure.axes] == [(7, 12), (1, 12), (1, 7)]
    assert all(line.get_color() == viz.CROSSHAIR_COLOR for a in figure.axes for line in a.lines)


def test_show_volume_rows_for_the_truth_and_the_prediction_overlays():
    volume, truth = volume_and_cube()
    prediction = np.where(truth, 0.8, 0.3).astype(np.float32)  # probabilities
    prediction[3, 5, 4] = 0.2  # one voxel of the cube missed
    figure = show_volume(volume, truth, prediction)
    assert len(figure.axes) == 9 and plt.get_fignums() == [figure.number]
    assert titles(figure) == ["axial 3", "coronal 5", "sagittal 7", "truth, axial 3",
                              "truth, coronal 5", "truth, sagittal 7", "prediction, axial 3",
                              "prediction, coronal 5", "prediction, sagittal 7"]
    green = 0.5 * gray(volume[3]) + 0.5 * np.array(FOREGROUND_COLOR)
    axial_truth, axial_prediction = picture(figure.axes[3]), picture(figure.axes[6])
    inside = truth[3].astype(bool)
    np.testing.assert_allclose(axial_truth[inside], green[inside], atol=1e-6)
    np.testing.assert_allclose(axial_truth[~inside], gray(volume[3])[~inside], atol=1e-6)
    hit = inside.copy()
    hit[5, 4] = False
    np.testing.assert_allclose(axial_prediction[hit], green[hit], atol=1e-6)
    np.testing.assert_allclose(axial_prediction[~hit], gray(volume[3])[~hit], atol=1e-6)
    sagittal = picture(figure.axes[5])  # volume[:, :, 7]: the cube's rows 2:5, columns 3:8
    expected = 0.5 * gray(volume[2:5, 3:8, 7]) + 0.5 * np.array(FOREGROUND_COLOR)
    np.testing.assert_allclose(sagittal[2:5, 3:8], expected, atol=1e-6)
    assert figure.legends == []  # binary: the rows say what is drawn


def test_show_volume_default_point_is_the_foreground_centre_in_millimetres():
    volume, truth = volume_and_cube()
    figure = show_volume(volume, truth)  # the cube [2:5, 3:8, 4:11]: its centre
    assert titles(figure)[:3] == ["axial 3", "coronal 5", "sagittal 7"]
    assert titles(show_volume(volume))[:3] == ["axial 3", "coronal 5", "sagittal 7"]  # (6, 10, 14) // 2
    assert titles(show_volume(volume, prediction=truth))[:3] == ["axial 3", "coronal 5", "sagittal 7"]
    sparse = np.zeros((6, 10, 14), np.uint8)  # three voxels; their centroid (2.67, 0, 2.33) is none
    sparse[1, 0, 2] = sparse[2, 0, 4] = sparse[5, 0, 1] = 1
    assert titles(show_volume(volume, sparse))[:3] == ["axial 1", "coronal 0", "sagittal 2"]
    # thick slices: 4 mm along axis 0 makes (2, 0, 4) the voxel nearest the centre in mm
    thick = show_volume(volume, sparse, spacing=(4, 1, 1))
    assert titles(thick)[:3] == ["axial 2", "coronal 0", "sagittal 4"]
    empty = show_volume(volume, np.zeros((6, 10, 14)), np.zeros((6, 10, 14)))
    assert titles(empty)[:3] == ["axial 3", "coronal 5", "sagittal 7"]


def test_show_volume_stretches_raw_ct_values_over_the_whole_volume():
    ct = np.random.default_rng(0).integers(-1024, 1500, (5, 8, 9)).astype(np.int16)
    ct[0, 0, 0], ct[4, 7, 8] = -1024, 1500  # the range: -1024 .. 1500 HU
    stretched = (ct.astype(np.float64) + 1024) / 2524
    figure = show_volume(ct, point=(2, 3, 4))
    np.testing.assert_allclose(picture(figure.axes[0]), gray(stretched[2]), atol=1e-6)
    np.testing.assert_allclose(picture(figure.axes[2]), gray(stretched[:, :, 4]), atol=1e-6)
    rgb = np.random.default_rng(1).random((4, 6, 8, 3))  # a colour volume keeps its colours
    np.testing.assert_allclose(picture(show_volume(rgb, point=(1, 2, 3)).axes[1]), rgb[:, 2],
                               atol=1e-6)


def test_show_volume_multiclass_classes_in_their_colours_with_a_legend():
    volume, truth = volume_and_cube()
    classes = truth.astype(np.int32)
    classes[2:5, 3:8, 8:11] = 2
    figure = show_volume(volume, classes, point=(3, 5, 7), class_names=["bg", "tumour", "edema"])
    axial = picture(figure.axes[3])
    colors = class_colors(3)
    np.testing.assert_allclose(axial[5, 5], 0.5 * volume[3, 5, 5] + 0.5 * colors[1], atol=1e-6)
    np.testing.assert_allclose(axial[5, 9], 0.5 * volume[3, 5, 9] + 0.5 * colors[2], atol=1e-6)
    [legend] = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == ["bg", "tumour", "edema"]
    labels = np.stack([truth, classes == 2], axis=-1).astype(np.float32)  # multilabel
    multilabel = picture(show_volume(volume, labels, point=(3, 5, 7)).axes[3])
    np.testing.assert_allclose(multilabel[5, 9], 0.25 * volume[3, 5, 9] + 0.25 * colors[1]
                               + 0.5 * colors[2], atol=1e-6)  # both labels, one after the other


def test_show_volume_errors_name_the_arguments():
    volume, truth = volume_and_cube()
    with pytest.raises(ValueError, match=r"^image has shape \(10, 14\): a 2D image; show_volume draws volumes \(D, H, W\) or \(D, H, W, C\) \(for a 2D image use show_predictions\)$"):
        show_volume(volume[0], truth[0])
    with pytest.raises(ValueError, match="^truth is 6x10x12 but image is 6x10x14: they must be the same size$"):
        show_volume(volume, truth[:, :, :12])
    with pytest.raises(ValueError, match="^prediction is 5x10x14 but image is 6x10x14: they must be the same size$"):
        show_volume(volume, truth, truth[:5])
    with pytest.raises(ValueError, match=r"^point must be \(k, j, i\): one index per array axis; got \(1, 2\)$"):
        show_volume(volume, point=(1, 2))
    with pytest.raises(ValueError, match=r"^point\[1\] must be an index below 10 \(the image's size on axis 1\); got 10$"):
        show_volume(volume, point=(1, 10, 2))
    with pytest.raises(ValueError, match=r"^point\[0\] must be an integer >= 0; got -1$"):
        show_volume(volume, point=(-1, 0, 0))
    with pytest.raises(ValueError, match=r"^point\[2\] must be an integer >= 0; got 2.5$"):
        show_volume(volume, point=(1, 0, 2.5))
    with pytest.raises(ValueError, match=r"^spacing must be \(dk, dj, di\): the voxel size along each array axis \(mm\); got \(1, 1\)$"):
        show_volume(volume, spacing=(1, 1))
    with pytest.raises(ValueError, match=r"^spacing\[0\] must be a finite number > 0; got 0$"):
        show_volume(volume, spacing=(0, 1, 1))
    with pytest.raises(ValueError, match="^alpha must be a finite number >= 0 and <= 1; got 2$"):
        show_volume(volume, alpha=2)
    with pytest.raises(ValueError, match="^threshold must be a finite number >= 0 and <= 1; got -1$"):
        show_volume(volume, prediction=truth, threshold=-1)
    assert refusal(show_volume, volume, truth * 255) == refusal(as_mask, truth * 255, "truth",
                                                                spatial_dims=3)


def test_show_slices_spread_over_the_foreground_with_the_index_in_the_title():
    volume, truth = volume_and_cube((40, 8, 9), (slice(10, 30), slice(2, 6), slice(3, 7)))
    figure = show_slices(volume, truth, n=4)  # slices 10..29: the centres of 4 parts of 5
    assert titles(figure) == ["axial 12", "axial 17", "axial 22", "axial 27"]
    assert titles(show_slices(volume, n=4)) == ["axial 5", "axial 15", "axial 25", "axial 35"]
    assert titles(show_slices(volume, prediction=truth, n=2)) == ["axial 15", "axial 25"]
    assert titles(show_slices(volume, truth, n=30)) == [f"axial {k}" for k in range(10, 30)]
    assert len(show_slices(volume, truth).axes) == 8  # two rows of four
    assert titles(show_slices(volume, truth, n=3, axis=1)) == ["coronal 2", "coronal 4",
                                                               "coronal 5"]  # j in 2..5
    assert titles(show_slices(volume, truth, n=2, axis=2)) == ["sagittal 4", "sagittal 6"]
    assert titles(show_slices(volume, np.zeros_like(truth), n=2)) == ["axial 10", "axial 30"]


def test_show_slices_draws_the_slices_with_the_mask_tinted_and_the_prediction_outlined():
    volume, truth = volume_and_cube((12, 10, 14), (slice(4, 8), slice(2, 8), slice(3, 11)))
    figure = show_slices(volume, n=3, spacing=(5.0, 0.5, 0.8))
    assert titles(figure) == ["axial 2", "axial 6", "axial 10"]
    for axes, k in zip(figure.axes, (2, 6, 10)):
        np.testing.assert_array_equal(picture(axes), gray(volume[k]))
    assert figure.axes[0].get_aspect() == pytest.approx(0.5 / 0.8)
    coronal = show_slices(volume, n=2, axis=1, spacing=(5.0, 0.5, 0.8))
    np.testing.assert_array_equal(picture(coronal.axes[1]), gray(volume[:, 7]))
    assert coronal.axes[1].get_aspect() == pytest.approx(5 / 0.8)
    sagittal = show_slices(volume, n=2, axis=2, spacing=(5.0, 0.5, 0.8))
    np.testing.assert_array_equal(picture(sagittal.axes[0]), gray(volume[:, :, 3]))
    assert sagittal.axes[0].get_aspect() == pytest.approx(10)
    prediction = np.zeros_like(truth)
    prediction[4:8, 3:7, 5:9] = 1
    both = show_slices(volume, truth, prediction, n=1)
    assert titles(both) == ["axial 6"]  # the middle of slices 4..7
    shown, plane, inside = picture(both.axes[0]), gray(volume[6]), prediction[6].astype(bool)
    outline = find_boundaries(inside, mode="inner") & inside
    tinted = truth[6].astype(bool) & ~outline
    np.testing.assert_allclose(shown[outline], np.broadcast_to(viz.OUTLINE_COLOR, shown[outline].shape))
    np.testing.assert_allclose(shown[tinted], 0.5 * plane[tinted] + 0.5 * np.array(FOREGROUND_COLOR),
                               atol=1e-6)
    np.testing.assert_allclose(shown[~truth[6].astype(bool)], plane[~truth[6].astype(bool)])
    assert outline.sum() == 12 and tinted.sum() == 48 - 12
    [legend] = both.legends
    assert [text.get_text() for text in legend.get_texts()] == ["mask", "prediction (outlined)"]
    alone = picture(show_slices(volume, prediction=prediction, n=1).axes[0])  # tinted, not outlined
    np.testing.assert_allclose(alone[inside], 0.5 * plane[inside] + 0.5 * np.array(
        FOREGROUND_COLOR), atol=1e-6)


def test_show_slices_errors_name_the_arguments():
    volume, truth = volume_and_cube()
    with pytest.raises(ValueError, match=r"^image has shape \(10, 14\): a 2D image; show_slices draws volumes"):
        show_slices(volume[0])
    with pytest.raises(ValueError, match="^mask is 6x9x14 but image is 6x10x14: they must be the same size$"):
        show_slices(volume, truth[:, :9])
    with pytest.raises(ValueError, match="^prediction is 6x10x13 but image is 6x10x14"):
        show_slices(volume, truth, truth[..., 1:])
    with pytest.raises(ValueError, match="^axis must be one of 0, 1, 2; got 3$"):
        show_slices(volume, axis=3)
    with pytest.raises(ValueError, match="^n must be an integer >= 1; got 0$"):
        show_slices(volume, n=0)
    with pytest.raises(ValueError, match="^columns must be an integer >= 1; got 0$"):
        show_slices(volume, columns=0)
    with pytest.raises(ValueError, match="^class_names must be one name for each of the masks' 3 classes"):
        show_slices(volume, truth * 2, class_names=["a", "b"])


def test_show_volume_and_show_slices_on_a_real_ct_scan(shared_data):
    nibabel = pytest.importorskip("nibabel")
    folder = shared_data / "tumour_volumes"
    scan = nibabel.load(folder / "lung2_image.nii.gz")
    crop = (slice(8, 32), slice(300, 430), slice(290, 440))  # around the tumour, (k, j, i)
    image = np.transpose(np.asanyarray(scan.dataobj), (2, 1, 0))[crop]
    label = np.transpose(np.asanyarray(nibabel.load(folder / "lung2_label.nii.gz").dataobj),
                         (2, 1, 0))[crop]
    spacing = tuple(float(z) for z in scan.header.get_zooms()[::-1])  # (5.0, 0.627, 0.627)
    assert image.dtype == np.int16 and image.min() < -500 and label.sum() == 24644
    figure = show_volume(image, label, spacing=spacing)
    point = [int(title.split()[-1]) for title in titles(figure)[:3]]
    assert label[tuple(point)] == 1  # the crosshair is on the tumour
    assert np.mean(np.argwhere(label), axis=0) == pytest.approx(point, abs=1.5)
    assert figure.axes[1].get_aspect() == pytest.approx(5.0 / 0.6269531, rel=1e-6)
    stretched = (image[point[0]] - image.min()) / (image.max() - image.min())
    np.testing.assert_allclose(picture(figure.axes[0]), gray(stretched), atol=1e-6)
    slices = titles(show_slices(image, label, n=4, spacing=spacing))
    assert slices == ["axial 8", "axial 11", "axial 13", "axial 16"]  # tumour k 15..25, here 7..17
