"""keras_unet/weights.py: the paper's border weight map, by hand, against a naive
reference and on a real ISBI 2012 mask; class balancing; errors."""

import re

import numpy as np
import pytest
from scipy import ndimage

from keras_unet.images import as_mask
from keras_unet.weights import (
    TOLERANCE,
    border_weight_map,
    class_weight_map,
    label_objects,
)


def naive_border_term(instances, w0, sigma):
    """The definition, literally: one full-image distance transform per object."""
    ids = [i for i in np.unique(instances) if i != 0]
    if len(ids) < 2:
        return np.zeros(instances.shape)
    distances = np.sort([ndimage.distance_transform_edt(instances != i) for i in ids], axis=0)
    term = w0 * np.exp(-((distances[0] + distances[1]) ** 2) / (2 * sigma**2))
    term[instances > 0] = 0.0
    return term


def two_cells(gap):
    """64x64, two 20x20 cells in rows 20..39, columns 10..29 and 30+gap..49+gap."""
    mask = np.zeros((64, 64), bool)
    mask[20:40, 10:30] = True
    mask[20:40, 30 + gap : 50 + gap] = True
    return mask


def random_instances(seed=0, size=160, n=30):
    """~n overlapping rectangles with distinct, non-consecutive labels."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), np.int32)
    for label in rng.choice(np.arange(1, 1000), n, replace=False):
        (r, c), (h, w) = rng.integers(0, size - 10, 2), rng.integers(3, 16, 2)
        labels[r : r + h, c : c + w] = label
    return labels


# ------------------------------------------------------------ the paper's formula


@pytest.mark.parametrize("gap, d1, d2", [(1, 1, 1), (2, 1, 2)])
def test_gap_between_two_cells_by_hand(gap, d1, d2):
    # The gap column next to the left cell is 1 from it and `gap` from the right cell
    # (pixel centre to pixel centre). 64 * 64 = 4096 pixels, 2 * 400 in cells.
    w = border_weight_map(two_cells(gap), w0=10, sigma=5)
    w_background = 4096 / (2 * (4096 - 800))
    w_foreground = 4096 / (2 * 800)
    expected = w_background + 10 * np.exp(-((d1 + d2) ** 2) / (2 * 5**2))
    assert expected == pytest.approx({1: 9.8525, 2: 8.9741}[gap], abs=1e-4)
    np.testing.assert_allclose(w[20:40, 30], expected, rtol=1e-6)
    np.testing.assert_allclose(w[20:40, 30 + gap - 1], expected, rtol=1e-6)
    # Far from both cells (d1 + d2 > 40): the class weight alone.
    assert w[0, 0] == pytest.approx(w_background, rel=1e-6)
    assert w[63, 63] == pytest.approx(w_background, rel=1e-6)
    # Inside the cells: the foreground's class weight, no border term.
    cells = two_cells(gap)
    np.testing.assert_allclose(w[cells], w_foreground, rtol=1e-6)
    assert w.dtype == np.float32 and w.shape == (64, 64)


def test_border_term_is_highest_in_the_gap_and_decays_away_from_it():
    w = border_weight_map(two_cells(1), w0=10, sigma=5, class_weights=None)
    assert np.unravel_index(np.argmax(w), w.shape)[1] == 30
    # Above the gap, 5 rows up from the cells' top: d1 = d2 = sqrt(5^2 + 1^2).
    assert w[15, 30] == pytest.approx(1 + 10 * np.exp(-(2 * np.sqrt(26)) ** 2 / 50), rel=1e-6)
    assert w[15, 30] < w[18, 30] < w[19, 30] < w[20, 30]


def test_fewer_than_two_objects_have_no_border_term():
    one = np.zeros((32, 32), np.int32)
    one[8:20, 8:20] = 1
    np.testing.assert_array_equal(border_weight_map(one, class_weights=None), 1.0)
    np.testing.assert_array_equal(border_weight_map(np.zeros((32, 32)), class_weights=None), 1.0)


def test_w0_zero_gives_the_class_weights_alone():
    mask = two_cells(1)
    np.testing.assert_array_equal(border_weight_map(mask, w0=0), class_weight_map(mask))


def test_channel_axis_is_kept():
    mask = two_cells(2)
    w = border_weight_map(mask[..., None].astype(np.float32))
    assert w.shape == (64, 64, 1) and w.dtype == np.float32
    np.testing.assert_array_equal(w[..., 0], border_weight_map(mask))
    assert class_weight_map(mask[..., None]).shape == (64, 64, 1)
    assert label_objects(mask[..., None])[0].shape == (64, 64, 1)


# ------------------------------------------------------------------ class weights


def test_balanced_class_weights_average_one():
    labels = random_instances()
    assert class_weight_map(labels).mean() == pytest.approx(1.0, rel=1e-6)
    background = (labels == 0).sum()
    assert class_weight_map(labels)[labels == 0][0] == pytest.approx(
        labels.size / (2 * background), rel=1e-6
    )


def test_none_gives_one_plus_the_border_term_only():
    labels = random_instances()
    w = border_weight_map(labels, w0=10, sigma=5, class_weights=None)
    np.testing.assert_array_equal(class_weight_map(labels, None), 1.0)
    np.testing.assert_allclose(w - 1.0, naive_border_term(labels, 10, 5), atol=TOLERANCE * 10)
    np.testing.assert_array_equal(w[labels > 0], 1.0)


def test_dict_class_weights_are_honoured():
    mask = two_cells(2)
    w = class_weight_map(mask, {0: 0.25, 1: 3})
    np.testing.assert_array_equal(w[mask], 3.0)
    np.testing.assert_array_equal(w[~mask], 0.25)
    b = border_weight_map(mask, class_weights={0: 0.25, 1: 3})
    assert b[30, 30] == pytest.approx(0.25 + 10 * np.exp(-9 / 50), rel=1e-6)


@pytest.mark.parametrize("fill", [0, 1])
def test_one_class_image_is_finite(fill):
    mask = np.full((16, 16), fill, np.uint8)
    for w in (class_weight_map(mask), border_weight_map(mask)):
        assert np.isfinite(w).all()
        np.testing.assert_array_equal(w, 1.0)  # balanced: the one class present weighs 1
    np.testing.assert_array_equal(class_weight_map(mask, {0: 2, 1: 7}), 2.0 if fill == 0 else 7.0)


# ---------------------------------------------------------- fast == naive reference


@pytest.mark.parametrize("seed, sigma", [(0, 5.0), (1, 5.0), (2, 2.0), (3, 12.0)])
def test_fast_equals_naive_reference(seed, sigma):
    labels = random_instances(seed)
    n = len(np.unique(labels)) - 1
    assert 20 <= n <= 30
    w0 = 10.0
    reference = naive_border_term(labels, w0, sigma)
    term = border_weight_map(labels, w0, sigma, class_weights=None).astype(np.float64) - 1.0
    # Exact (to float32) where the border term counts; below TOLERANCE * w0 it may be
    # left out.
    counts = reference >= TOLERANCE * w0
    assert counts.sum() > 400
    np.testing.assert_allclose(term[counts], reference[counts], rtol=1e-6, atol=1e-6)
    assert np.abs(term - reference).max() <= TOLERANCE * w0


# ------------------------------------------------------------------------ objects


def test_label_objects_binary_mask_is_four_connected():
    diagonal = np.array([[1, 0, 0],
                         [0, 1, 1],
                         [0, 0, 0]], bool)
    instances, n = label_objects(diagonal)
    assert n == 2
    assert instances.tolist() == [[1, 0, 0], [0, 2, 2], [0, 0, 0]]
    assert instances.dtype == np.int32


def test_label_objects_renumbers_instance_labels():
    labels = np.array([[0, 7, 7], [40, 0, 3]])
    instances, n = label_objects(labels)
    assert n == 3 and instances.tolist() == [[0, 2, 2], [3, 0, 1]]
    # No background at all: every label is an object, none becomes 0.
    instances, n = label_objects(np.array([[5, 5], [9, 9]]))
    assert n == 2 and instances.tolist() == [[1, 1], [2, 2]]


def test_touching_instances_without_background_have_no_border_term():
    labels = np.zeros((20, 20), np.int32)
    labels[:, :10], labels[:, 10:] = 1, 2
    np.testing.assert_array_equal(border_weight_map(labels, class_weights=None), 1.0)


# -------------------------------------------------------------- real ISBI 2012 mask


def test_real_isbi_mask(shared_data):
    from PIL import Image

    mask = np.asarray(Image.open(shared_data / "isbi2012_em" / "masks" / "00.png"))
    assert mask.shape == (512, 512) and set(np.unique(mask)) == {0, 255}
    cells = mask == 255
    assert label_objects(cells)[1] == 136  # 4-connected cells between membranes

    w = border_weight_map(cells, w0=10, sigma=5)  # speed: benchmarks/weight_map.py
    assert w.shape == (512, 512) and np.isfinite(w).all()

    background = np.count_nonzero(~cells)
    assert background == 57492
    w_background = mask.size / (2 * background)  # 2.2798
    w_foreground = mask.size / (2 * (mask.size - background))  # 0.6405
    assert w.mean() > 1.5  # the border term adds ~0.9 on average
    np.testing.assert_allclose(w[cells], w_foreground, rtol=1e-6)
    # The thinnest membranes: a cell right beside, the other one diagonal,
    # d1 + d2 = 1 + sqrt(2): the maximum is w_c + 0.89 w0.
    peak = w_background + 10 * np.exp(-((1 + np.sqrt(2)) ** 2) / 50)
    assert w.max() == pytest.approx(peak, rel=1e-6)
    assert not cells[np.unravel_index(np.argmax(w), w.shape)]
    # A raw 0/255 PNG is refused rather than read as one object numbered 255, as every
    # stage refuses it.
    with pytest.raises(ValueError, match="^" + re.escape(as_mask_error(mask, "labels")) + "$"):
        border_weight_map(mask)


# ------------------------------------------------------------------------- errors

GOOD = np.zeros((8, 8), np.int32)


def as_mask_error(array, name, **kwargs):
    """The message of images.as_mask for ``array``: every stage refuses a mask in its words."""
    with pytest.raises(ValueError) as error:
        as_mask(array, name, **kwargs)
    return str(error.value)


#: Masks that images.as_mask refuses: the weight maps refuse them with the same text.
BAD_MASKS = {
    "1-D": np.zeros(8),
    "empty": np.zeros((0, 8)),
    "negative": np.array([[0, -1], [2, 3]]),
    "soft": np.array([[0.0, 0.5], [1.0, 1.0]]),
    "NaN": np.array([[0.0, np.nan], [1.0, 1.0]]),
    "strings": np.array([["a", "b"]]),
    "uint8 0/255": np.array([[0, 255]], np.uint8),
    "int64 0/255": np.array([[0, 255]], np.int64),  # accepted as instance labels once
    "0/1/255 without ignore_index": np.array([[0, 1, 255]], np.uint8),
}


@pytest.mark.parametrize("case", sorted(BAD_MASKS))
@pytest.mark.parametrize("function, name", [(border_weight_map, "labels"),
                                            (class_weight_map, "mask"),
                                            (label_objects, "labels")])
def test_bad_masks_are_refused_as_images_as_mask_refuses_them(case, function, name):
    expected = as_mask_error(BAD_MASKS[case], name)
    assert expected.startswith(name)
    with pytest.raises(ValueError, match="^" + re.escape(expected) + "$"):
        function(BAD_MASKS[case])


def test_a_multilabel_mask_is_not_one_set_of_objects():
    with pytest.raises(ValueError, match=re.escape(
            "labels must be one mask, (height, width) or (height, width, 1) (binary, or "
            "instance labels); got shape (8, 8, 3)")):
        border_weight_map(np.zeros((8, 8, 3)))
CLASS_WEIGHTS = ("class_weights must be 'balanced', None or a dict "
                 "{0: w_background, 1: w_foreground}; got ")
KEYS = "class_weights must have exactly the keys 0 (background) and 1 (foreground); got the keys "


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(labels=GOOD, sigma=0), "sigma must be a finite number > 0; got 0"),
        (dict(labels=GOOD, sigma=-2.0), "sigma must be a finite number > 0; got -2.0"),
        (dict(labels=GOOD, sigma=float("inf")), "sigma must be a finite number > 0; got inf"),
        (dict(labels=GOOD, w0=-1), "w0 must be a finite number >= 0; got -1"),
        (dict(labels=GOOD, w0="10"), "w0 must be a finite number >= 0; got '10'"),
        (dict(labels=GOOD, class_weights="auto"), CLASS_WEIGHTS + "'auto'"),
        (dict(labels=GOOD, class_weights=[1, 2]), CLASS_WEIGHTS + "[1, 2]"),
        (dict(labels=GOOD, class_weights={1: 2.0}), KEYS + "[1]"),
        (dict(labels=GOOD, class_weights={0: 1, 1: 2, 2: 3}), KEYS + "[0, 1, 2]"),
        (dict(labels=GOOD, class_weights={0: 1, 1: -2}),
         "class_weights[1] must be a finite number >= 0; got -2"),
        (dict(labels=GOOD, class_weights={0: float("nan"), 1: 2}),
         "class_weights[0] must be a finite number >= 0; got nan"),
    ],
)
def test_bad_input_raises(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        border_weight_map(**kwargs)


def test_class_weight_map_names_its_mask_argument():
    with pytest.raises(ValueError, match=r"^class_weights\[0\] must be a finite number"):
        class_weight_map(GOOD, {0: "x", 1: 1})


def test_void_pixels_weigh_zero_and_are_no_object():
    cells = np.zeros((9, 12), np.uint8)
    cells[1:8, 1:5] = cells[1:8, 6:11] = 1  # two cells, a 1-pixel gap in column 5
    void = cells.copy()
    void[0] = void[:, -1] = 255  # an unlabelled border, as read_mask(ignore_index=255) keeps it
    # without ignore_index the 1s would be one object (label 1) and the border another
    with pytest.raises(ValueError, match=re.escape(as_mask_error(void, "labels"))):
        border_weight_map(void)
    assert "ignore_index=255" in as_mask_error(void, "labels")
    weights = border_weight_map(void, class_weights=None, ignore_index=255)
    expected = border_weight_map(np.where(void == 255, 0, void), class_weights=None)
    expected[void == 255] = 0
    np.testing.assert_array_equal(weights, expected)
    assert weights[4, 5] > 10  # the gap between the two cells still carries the border term
    # balancing counts the labelled pixels only (88 of 108)
    balanced = class_weight_map(void, ignore_index=255)
    assert balanced[void == 255].tolist() == [0.0] * 20  # row 0 and the last column
    labelled = np.count_nonzero(void != 255)
    background = np.count_nonzero(void == 0)
    np.testing.assert_allclose(balanced[void == 0], labelled / (2 * background))
    np.testing.assert_allclose(balanced[void == 1], labelled / (2 * (labelled - background)))
    with pytest.raises(ValueError, match=re.escape(
            "ignore_index must be an integer >= 0, the value of unlabelled pixels (e.g. 255); "
            "got -1")):
        class_weight_map(void, ignore_index=-1)
