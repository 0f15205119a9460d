"""keras_unet/augment.py: image, mask and weights stay aligned through one random
transform (measured on a real ISBI 2012 image, against Keras's own elastic layer);
determinism; dtypes and values; exact flips and quarter turns; the elastic field's
statistics; mirrored borders; dynamic shapes in tf.data; option errors."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from scipy import ndimage

from keras_unet.augment import Augmentation, elastic_deform, remap
from keras_unet.weights import border_weight_map

#: Geometry only: brightness, contrast and gamma would change which pixels pass a
#: threshold, so a mask computed from the image would no longer be comparable.
GEOMETRY = dict(brightness=0.0, contrast=None, gamma=None)
OFF = Augmentation.none().get_config()


def only(**options):
    """An Augmentation with every option off except ``options``."""
    return Augmentation(**{**OFF, **options})


@pytest.fixture(scope="module")
def isbi(shared_data):
    """ISBI 2012 image 00 as float (512, 512, 1) in [0, 1], its cell mask (int32
    (512, 512, 1), 1 = cell interior) and its border weight map (512, 512)."""
    folder = shared_data / "isbi2012_em"
    image = np.asarray(Image.open(folder / "images" / "00.png"), np.float32)[..., None] / 255
    cells = np.asarray(Image.open(folder / "masks" / "00.png"))[..., None] > 0
    return image, cells.astype(np.int32), border_weight_map(cells[..., 0])


@pytest.fixture(scope="module")
def smooth_isbi(isbi):
    """The ISBI image smoothed (Gaussian, sigma 2 px), so that a threshold gives
    regions with boundaries like a segmentation's rather than pixel noise, and the
    median threshold."""
    smooth = ndimage.gaussian_filter(isbi[0], (2, 2, 0))
    return smooth, float(np.median(smooth))


def near_edge(mask, width=2):
    """Pixels within ``width`` pixels (Chebyshev) of a change of ``mask``'s value."""
    size = 2 * width + 1
    return ndimage.maximum_filter(mask, size) != ndimage.minimum_filter(mask, size)


def disagreement(mask, image, threshold):
    """Fraction of pixels where ``mask`` differs from ``image > threshold``; and that
    fraction among pixels at least 3 pixels away from an edge of ``mask``."""
    mask = np.asarray(mask)[..., 0] > 0.5
    wrong = mask != (np.asarray(image)[..., 0] > threshold)
    return wrong.mean(), wrong[~near_edge(mask)].mean()


# ------------------------------------------------------------------ alignment


def test_mask_computed_from_image_stays_aligned(smooth_isbi):
    # The mask is image > threshold; after the full geometric augmentation (flips,
    # quarter turns, +-15 degrees, scale 0.9-1.1, shift, elastic sigma 10 on a 3x3
    # grid) it must still be the warped image > threshold. It cannot be exactly: the
    # image is sampled bilinearly and the mask nearest-neighbour, so on a pixel whose
    # source lies between an inside and an outside pixel the two may disagree. 36% to
    # 41% of the pixels lie within 2 px of an edge of the warped mask; measured over
    # 5 seeds: 1.93% to 2.02% of all pixels disagree, and 0 to 3 pixels (0 to 2e-5 of
    # them) farther from an edge.
    image, threshold = smooth_isbi
    mask = (image > threshold).astype(np.int32)
    aug = Augmentation(**GEOMETRY)
    for seed in range(5):
        warped, warped_mask = aug(image, mask, seed=[seed, 7])
        assert np.abs(np.asarray(warped) - image).mean() > 0.05  # it did move
        overall, away_from_edges = disagreement(warped_mask, warped, threshold)
        assert 0.015 < overall < 0.025
        assert away_from_edges < 1e-4


def test_class_map_computed_from_image_stays_aligned(smooth_isbi):
    # Three classes (int32) from intensity tertiles: about twice the edges, measured
    # 3.7% disagreement, all of it within 2 px of an edge; class indices stay 0, 1, 2.
    image, _ = smooth_isbi
    bins = np.quantile(image, [1 / 3, 2 / 3])
    classes = np.digitize(image, bins).astype(np.int32)
    warped, warped_classes = Augmentation(**GEOMETRY)(image, classes, seed=[3, 1])
    warped_classes = np.asarray(warped_classes)
    assert warped_classes.dtype == np.int32
    assert set(np.unique(warped_classes)) == {0, 1, 2}
    wrong = (warped_classes != np.digitize(np.asarray(warped), bins))[..., 0]
    assert 0.03 < wrong.mean() < 0.045
    assert wrong[~near_edge(warped_classes[..., 0])].mean() < 1e-4


def test_keras_random_elastic_transform_does_not_keep_the_mask_aligned(smooth_isbi):
    # Keras 3's RandomElasticTransform, used as Keras documents for segmentation
    # (one call on {"images", "segmentation_masks"}, the mask sampled nearest) or as a
    # user would (one layer called on the image, then on the mask), deforms the mask
    # with a DIFFERENT random field than the image: the "transformation" it shares
    # between the two holds the layer's SeedGenerator, not a drawn seed, and
    # keras.ops.image.elastic_transform draws a fresh seed from it for every tensor.
    # (It also draws dx and dy from one seed, so every displacement points along the
    # diagonal.) Measured on this image: 27.7% (dict) and 30.2% (two calls) of the
    # mask pixels disagree, 14x and 16x ours (1.94% with this seed), and 19% and 22%
    # at least 3 px from any edge, where ours has none.
    image, threshold = smooth_isbi
    mask = (image > threshold).astype(np.float32)
    warped, warped_mask = Augmentation(**GEOMETRY)(image, mask, seed=[0, 7])
    ours = disagreement(warped_mask, warped, threshold)

    def layer():  # factor (1, 1): always deform (factor=1.0 deforms half the calls)
        return keras.layers.RandomElasticTransform(factor=(1.0, 1.0), value_range=(0, 1), seed=0)

    out = layer()({"images": image, "segmentation_masks": mask})
    one_call = disagreement(out["segmentation_masks"], out["images"], threshold)
    elastic = layer()
    warped = elastic(image)
    two_calls = disagreement(elastic(mask), warped, threshold)
    assert np.abs(np.asarray(warped) - image).mean() > 0.05  # it did deform

    for keras_overall, keras_away_from_edges in (one_call, two_calls):
        assert keras_overall > 0.25
        assert keras_overall > 10 * ours[0]
        assert keras_away_from_edges > 0.15


def test_weights_follow_the_mask(isbi):
    # The border weight map is high on the thin membranes between cells. Warp it with
    # the mask, recompute it from the warped mask, and compare: mean absolute
    # difference 9.9% to 13.7% of the mean weight over 4 seeds (a 1-3 px membrane
    # that nearest sampling widens or narrows by one pixel changes d1 + d2, hence the
    # weight, a lot); a map warped with another seed is off by 107% to 110%.
    image, cells, weights = isbi
    aug = Augmentation(**GEOMETRY)
    _, warped_cells, warped_weights = aug(image, cells, weights, seed=[1, 5])
    recomputed = border_weight_map(np.asarray(warped_cells)[..., 0])
    _, _, other = aug(image, cells, weights, seed=[11, 5])
    error = np.abs(np.asarray(warped_weights) - recomputed).mean() / recomputed.mean()
    other_error = np.abs(np.asarray(other) - recomputed).mean() / recomputed.mean()
    assert 0.05 < error < 0.15
    assert other_error > 0.9


# ---------------------------------------------------------------- determinism


def test_same_seed_same_result_other_seed_other_result(isbi):
    image, cells, weights = isbi
    aug = Augmentation()
    first = aug(image, cells, weights, seed=tf.constant([1, 2]))
    again = aug(image, cells, weights, seed=tf.constant([1, 2], tf.int64))
    other = aug(image, cells, weights, seed=[2, 1])
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        assert np.mean(np.asarray(a) != np.asarray(c)) > 0.1


def test_deterministic_in_a_parallel_tf_data_pipeline(isbi):
    image, cells, _ = isbi
    aug = Augmentation()
    images = np.stack([image[:128, :128], image[128:256, :128]] * 4)
    masks = np.stack([cells[:128, :128], cells[128:256, :128]] * 4)
    crops = tf.data.Dataset.from_tensor_slices((images, masks))
    seeds = tf.data.Dataset.random(seed=3).batch(2)

    def run():
        ds = tf.data.Dataset.zip(crops, seeds).map(
            lambda pair, seed: aug(*pair, seed=seed), num_parallel_calls=4
        )
        return [tuple(np.asarray(t) for t in pair) for pair in ds]

    first, second = run(), run()
    for (a, b), (c, d) in zip(first, second):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    # the same crop (0 and 2) with other seeds: other results
    assert np.mean(first[0][0] != first[2][0]) > 0.5


# ---------------------------------------------------------- dtypes and values


def test_dtypes_and_values_are_kept(isbi):
    image, cells, weights = isbi
    classes = np.where(cells > 0, 7, 3).astype(np.int32)
    classes[:100] = 0
    aug = Augmentation(brightness=0.3, contrast=(0.5, 1.5), gamma=(0.5, 2.0))
    for seed in range(4):
        out_image, out_classes, out_weights = aug(image, classes, weights, seed=[seed, 0])
        assert out_image.dtype == tf.float32 and out_image.shape == (512, 512, 1)
        assert out_classes.dtype == tf.int32 and out_classes.shape == (512, 512, 1)
        assert out_weights.dtype == tf.float32 and out_weights.shape == (512, 512)
        assert set(np.unique(out_classes)) <= {0, 3, 7}
        assert 0.0 <= float(tf.reduce_min(out_image)) <= float(tf.reduce_max(out_image)) <= 1.0
        assert float(tf.reduce_min(out_weights)) >= weights.min() - 1e-6
        assert float(tf.reduce_max(out_weights)) <= weights.max() + 1e-6

        binary = cells.astype(np.float32)
        _, out_binary, ones = aug(image, binary, np.ones((512, 512), np.float32), seed=[seed, 1])
        assert out_binary.dtype == tf.float32
        assert set(np.unique(out_binary)) == {0.0, 1.0}
        np.testing.assert_array_equal(ones, 1.0)  # exactly: equal neighbours, no rounding


def test_image_stays_in_range_without_intensity_changes(isbi):
    # bilinear sampling is a convex combination: [0, 1] in, [0, 1] out
    image = isbi[0]
    for seed in range(4):
        warped, _ = Augmentation(**GEOMETRY)(image, isbi[1], seed=[seed, 9])
        assert 0.0 <= float(tf.reduce_min(warped))
        assert float(tf.reduce_max(warped)) <= 1.0


def test_rgb_image_and_2d_mask_keep_their_shapes():
    rng = np.random.default_rng(0)
    image = rng.random((40, 40, 3), dtype=np.float32)
    mask = rng.integers(0, 5, (40, 40)).astype(np.int32)
    out_image, out_mask = Augmentation()(image, mask, seed=[0, 0])
    assert out_image.shape == (40, 40, 3) and out_mask.shape == (40, 40)
    assert set(np.unique(out_mask)) <= set(range(5))


def test_non_square_images_keep_their_shape_through_quarter_turns():
    image = np.random.default_rng(1).random((48, 64, 1), dtype=np.float32)
    rotate = only(rotate90=True)
    for seed in range(8):
        out, out_mask = rotate(image, image > 0.5, seed=[seed, 0])
        assert out.shape == (48, 64, 1) and out_mask.shape == (48, 64, 1)
        # only 0 or 180 degrees are possible
        assert np.array_equal(out, image) or np.array_equal(out, np.rot90(image, 2))


def test_dynamic_shapes_in_tf_function_and_tf_data():
    aug = Augmentation()
    spec = tf.TensorSpec([None, None, 1], tf.float32)
    mask_spec = tf.TensorSpec([None, None, 1], tf.int32)
    weights_spec = tf.TensorSpec([None, None], tf.float32)
    traced = tf.function(
        lambda image, mask, weights, seed: aug(image, mask, weights, seed=seed),
        input_signature=[spec, mask_spec, weights_spec, tf.TensorSpec([2], tf.int64)],
    )
    graph_outputs = traced.get_concrete_function().structured_outputs
    shapes = [t.shape.as_list() for t in graph_outputs]
    assert shapes == [[None, None, 1], [None, None, 1], [None, None]]
    for h, w in ((37, 53), (64, 64), (1, 5)):
        image, mask = np.full((h, w, 1), 0.5, np.float32), np.ones((h, w, 1), np.int32)
        out = traced(image, mask, np.ones((h, w), np.float32), tf.constant([1, 2], tf.int64))
        assert [tuple(t.shape) for t in out] == [(h, w, 1), (h, w, 1), (h, w)]

    def sizes():
        for size in ((30, 40), (50, 20)):
            yield np.zeros(size + (1,), np.float32), np.ones(size + (1,), np.int32)

    ds = tf.data.Dataset.from_generator(sizes, output_signature=(spec, mask_spec))
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed=1).batch(2))
    ds = ds.map(lambda pair, seed: aug(*pair, seed=seed), num_parallel_calls=tf.data.AUTOTUNE)
    assert ds.element_spec[0].shape.as_list() == [None, None, 1]
    assert [(tuple(i.shape), tuple(m.shape)) for i, m in ds] == [
        ((30, 40, 1), (30, 40, 1)),
        ((50, 20, 1), (50, 20, 1)),
    ]


# ------------------------------------------------------ exact flips and turns


def dihedral(array):
    """The 8 flips/rotations of an (H, W, C) array, keyed by name."""
    return {
        f"{'flip ' if flip else ''}rot{90 * k}": np.rot90(np.flip(array, 1) if flip else array, k)
        for flip in (False, True)
        for k in range(4)
    }


def test_flips_and_quarter_turns_are_exact_permutations(isbi):
    image, cells, weights = isbi
    aug = only(flip_horizontal=True, flip_vertical=True, rotate90=True)
    seen = set()
    for seed in range(24):
        outputs = aug(image, cells, weights, seed=[seed, 3])
        out_image, out_cells, out_weights = (np.asarray(t) for t in outputs)
        names = [n for n, a in dihedral(image).items() if np.array_equal(out_image, a)]
        assert len(names) == 1  # exactly one of the 8, bit for bit
        seen.add(names[0])
        np.testing.assert_array_equal(out_cells, dihedral(cells)[names[0]])
        np.testing.assert_array_equal(out_weights, dihedral(weights[..., None])[names[0]][..., 0])
    assert len(seen) == 8


@pytest.mark.parametrize(
    "option, flipped", [("flip_horizontal", np.fliplr), ("flip_vertical", np.flipud)]
)
def test_single_flip(isbi, option, flipped):
    image = isbi[0]
    aug = only(**{option: True})
    outputs = [np.asarray(aug(image, isbi[1], seed=[s, 0])[0]) for s in range(8)]
    flips = [np.array_equal(o, flipped(image)) for o in outputs]
    assert all(f or np.array_equal(o, image) for f, o in zip(flips, outputs))
    assert 0 < sum(flips) < 8


def test_mirrored_labels_swap_left_and_right_with_the_flip():
    # A chest X-ray's convention: the patient's left lung (1) lies on the image's right, the
    # right lung (2) on its left. A flip that swaps the labels keeps the convention, so the
    # mask comes out unchanged; a plain flip breaks it. The same for a multi-label mask whose
    # channels 0 and 1 are the left and the right lung.
    image = np.linspace(0, 1, 16 * 16, dtype=np.float32).reshape(16, 16, 1)
    sides = np.repeat([[2] * 8 + [1] * 8], 16, axis=0).astype(np.int32)
    channels = np.stack([sides == 1, sides == 2, np.ones_like(sides, bool)], axis=-1)
    for mask, pairs in ((sides, [(1, 2)]), (channels, [[0, 1]])):
        swapping = only(flip_horizontal=True, mirrored_labels=pairs)
        flipped = 0
        for seed in range(8):
            out_image, out_mask = swapping(image, mask, seed=[seed, 0])
            flipped += not np.array_equal(out_image, image)
            np.testing.assert_array_equal(out_mask, mask)
            plain = only(flip_horizontal=True)(image, mask, seed=[seed, 0])[1]
            assert np.array_equal(plain, mask) != np.array_equal(out_image, np.fliplr(image))
        assert 0 < flipped < 8
    assert swapping.get_config()["mirrored_labels"] == ((0, 1),)


def test_nothing_changes_with_augmentation_none(isbi):
    image, cells, weights = isbi
    for out, given in zip(Augmentation.none()(image, cells, weights, seed=[1, 1]), isbi):
        np.testing.assert_array_equal(out, given)


# --------------------------------------------------------- elastic and affine


def test_elastic_with_sigma_zero_is_the_identity(isbi):
    image, cells, weights = isbi
    for out, given in zip(elastic_deform(image, cells, weights, sigma=0.0, seed=[4, 4]), isbi):
        np.testing.assert_array_equal(out, given)
    out, _ = only(elastic=True, elastic_sigma=0.0)(image, cells, seed=[1, 1])
    np.testing.assert_array_equal(out, image)


def coordinate_image(height, width):
    """(H, W, 2): each pixel's own row and column, divided by 1000 (bilinear sampling
    of a linear ramp is exact, so a warped coordinate image gives the source of
    every output pixel)."""
    rows, cols = np.mgrid[:height, :width].astype(np.float32)
    return np.stack([rows, cols], -1) / 1000


def test_elastic_displacements_have_the_papers_sigma():
    # With grid 3 on a 99 x 99 image the grid points fall on pixels 16, 49 and 82:
    # there the displacement is the drawn N(0, sigma) vector itself. Over 300 seeds,
    # measured at the middle one (49, 49): std 10.2 px (rows) and 9.6 px (columns),
    # rows and columns uncorrelated (-0.03; Keras's elastic layer moves both by the
    # same amount); 10 pixels away the field moves with it (correlation 0.93), at
    # the next grid point (49, 82) independently (-0.05).
    coords = coordinate_image(99, 99)
    mask = np.zeros((99, 99, 1), np.int32)
    displacements = []
    for seed in range(300):
        warped, _ = elastic_deform(coords, mask, sigma=10.0, grid=3, seed=[seed, 0])
        displacements.append((np.asarray(warped) - coords) * 1000)
    displacements = np.array(displacements)
    centre = displacements[:, 49, 49]
    assert np.all(np.abs(centre.mean(0)) < 1.5)
    assert np.all((centre.std(0) > 9.0) & (centre.std(0) < 11.0))
    assert abs(np.corrcoef(centre[:, 0], centre[:, 1])[0, 1]) < 0.15
    assert np.corrcoef(centre[:, 1], displacements[:, 49, 59, 1])[0, 1] > 0.9
    assert abs(np.corrcoef(centre[:, 1], displacements[:, 49, 82, 1])[0, 1]) < 0.15


def test_scale_about_the_centre():
    # scale 2 (fixed range): the output shows the middle half of the image, twice as
    # large: output pixel p reads input pixel c + (p - c) / 2, c = 31.5
    coords = coordinate_image(64, 64)
    warped, _ = only(scale=(2.0, 2.0))(coords, np.zeros((64, 64, 1)), seed=[0, 0])
    rows, cols = np.mgrid[:64, :64]
    source = np.asarray(warped) * 1000
    np.testing.assert_allclose(source[..., 0], 31.5 + (rows - 31.5) / 2, atol=1e-3)
    np.testing.assert_allclose(source[..., 1], 31.5 + (cols - 31.5) / 2, atol=1e-3)


def test_rotation_scale_and_shift_stay_in_their_ranges():
    # Fit the affine map source = A @ p + b to each warped coordinate image (exact:
    # residuals measured 1.5e-5 px) and read back the angle, scale and shift. Over 40
    # seeds, measured: angles -14.9 to 14.2 degrees, scales 0.901 to 1.100, shifts
    # -4.96 to 4.99 px (0.05 * 101 = 5.05).
    size = 101
    coords = coordinate_image(size, size)
    aug = only(rotation=15.0, scale=(0.9, 1.1), shift=0.05)
    grid = np.mgrid[:size, :size].reshape(2, -1).T.astype(np.float64)
    design = np.column_stack([grid, np.ones(len(grid))])
    # output pixels within 30 px of the centre read inside the image (30 / 0.9 + 5 <
    # 50), not in its mirror image
    inside = np.hypot(*(grid - 50).T) <= 30
    angles, scales, shifts = [], [], []
    for seed in range(40):
        warped, _ = aug(coords, np.zeros((size, size, 1)), seed=[seed, 1])
        source = np.asarray(warped, np.float64).reshape(-1, 2)[inside] * 1000
        fit, *_ = np.linalg.lstsq(design[inside], source, rcond=None)
        assert np.abs(design[inside] @ fit - source).max() < 1e-3
        linear = fit[:2].T  # source = c + linear @ (p - c - shift), linear = R(-angle) / scale
        angles.append(np.degrees(np.arctan2(linear[0, 1], linear[0, 0])))
        scales.append(1 / np.sqrt(np.linalg.det(linear)))
        shifts.append(np.linalg.solve(linear, 50 - fit[2]) - 50)
    angles, shifts = np.abs(angles), np.abs(shifts)
    assert 14.0 < angles.max() <= 15.0
    assert 0.9 <= min(scales) < 0.91 and 1.09 < max(scales) <= 1.1
    assert 4.5 < shifts.max() <= 5.05


def test_remap_mirrors_like_numpy_reflect():
    # shifting by 5 rows and -7 columns past the border reads numpy's "reflect" pad
    image = np.random.default_rng(2).random((20, 30, 2), dtype=np.float32)
    rows, cols = np.mgrid[:20, :30].astype(np.float32)
    coords = np.stack([rows - 5, cols + 7], -1)
    padded = np.pad(image, ((5, 0), (0, 7), (0, 0)), mode="reflect")
    expected = padded[:20, 7:]
    np.testing.assert_array_equal(remap(image, coords), expected)
    np.testing.assert_array_equal(remap(image, coords, "nearest"), expected)
    # far outside (several reflections) and a one-pixel-wide image
    far = np.pad(image, ((5, 0), (100 - 7, 0), (0, 0)), mode="reflect")[:20, :30]
    np.testing.assert_array_equal(remap(image, coords - [0, 100]), far)
    np.testing.assert_array_equal(remap([[[2.0]]], [[[3.7, -1.2]]]), [[[2.0]]])


# ------------------------------------------------------------------- errors

GRID_RULE = "an integer >= 2"
PROBABILITY = "a finite number >= 0 and <= 1"
MIRRORED = "mirrored_labels must be pairs (a, b) of distinct labels, with rotate90=False; got "


def raises(message):
    return pytest.raises(ValueError, match=re.escape(message))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"elastic_sigma": -1.0}, "elastic_sigma must be a finite number >= 0; got -1.0"),
        ({"elastic_grid": 1}, f"elastic_grid must be {GRID_RULE}; got 1"),
        ({"elastic_grid": 3.0}, f"elastic_grid must be {GRID_RULE}; got 3.0"),
        (
            {"scale": (1.1, 0.9)},
            "scale must be a range (low, high) with low <= high; got (1.1, 0.9)",
        ),
        ({"scale": 1.1}, "scale must be None or a pair (low, high) of factors > 0; got 1.1"),
        ({"gamma": (0.0, 2.0)}, "gamma[0] must be a finite number > 0; got 0.0"),
        ({"elastic_probability": 1.5}, f"elastic_probability must be {PROBABILITY}; got 1.5"),
        ({"affine_probability": -0.1}, f"affine_probability must be {PROBABILITY}; got -0.1"),
        ({"rotation": 200}, "rotation must be a finite number >= 0 and <= 180; got 200"),
        ({"shift": 1.0}, "shift must be a finite number >= 0 and < 1; got 1.0"),
        ({"brightness": float("nan")}, f"brightness must be {PROBABILITY}; got nan"),
        ({"elastic": "yes"}, "elastic must be True or False; got 'yes'"),
        ({"mirrored_labels": [(1, 2)]},
         MIRRORED + "[(1, 2)]"),
        ({"mirrored_labels": [(1, 1)], "rotate90": False},
         MIRRORED + "[(1, 1)]"),
        ({"mirrored_labels": (1, 2), "rotate90": False},
         MIRRORED + "(1, 2)"),
        ({"mirrored_labels": [(1, -2)], "rotate90": False},
         "mirrored_labels must be an integer >= 0; got -2"),
        ({"mirrored_labels": [(True, 2)], "rotate90": False},
         "mirrored_labels must be an integer >= 0; got True"),
        ({"rotaton": 10}, "unknown Augmentation option 'rotaton'; did you mean 'rotation'?"),
    ],
)
def test_bad_options(options, message):
    with raises(message):
        Augmentation(**options)


def test_bad_options_of_elastic_deform_and_edited_attributes():
    image, mask = np.zeros((8, 8, 1), np.float32), np.zeros((8, 8, 1), np.int32)
    with raises("elastic_sigma must be a finite number >= 0; got -2"):
        elastic_deform(image, mask, sigma=-2, seed=[0, 0])
    with raises(f"elastic_grid must be {GRID_RULE}; got 1"):
        elastic_deform(image, mask, grid=1, seed=[0, 0])
    aug = Augmentation()
    aug.scale = (2.0, 1.0)  # plain attributes are checked again at each call
    with raises("scale must be a range (low, high) with low <= high; got (2.0, 1.0)"):
        aug(image, mask, seed=[0, 0])


def test_bad_inputs():
    aug = Augmentation()
    image, mask = np.zeros((8, 8, 1), np.float32), np.zeros((8, 8, 1), np.int32)
    seed_rule = "seed must be an integer tensor of shape [2] (e.g. from "
    seed_rule += "tf.random.experimental.stateless_split); got "
    with raises(seed_rule + "int32 of shape (3,)"):
        aug(image, mask, seed=[1, 2, 3])
    with raises(seed_rule + "float32 of shape (2,)"):
        aug(image, mask, seed=[0.5, 1.0])
    with raises("image must be float in [0, 1]; got dtype uint8"):
        aug(image.astype(np.uint8), mask, seed=[0, 0])
    with raises("image must have shape (H, W, C) or (D, H, W, C); got shape (1, 2, 8, 8, 1)"):
        aug(np.zeros((1, 2, 8, 8, 1), np.float32), mask, seed=[0, 0])
    with raises("mask must have the image's height and width (8, 8); got shape (8, 9, 1)"):
        aug(image, np.zeros((8, 9, 1)), seed=[0, 0])
    with raises("weights must have the image's height and width (8, 8); got shape (4, 4, 1)"):
        aug(image, mask, np.ones((4, 4)), seed=[0, 0])
    with raises("method must be one of 'bilinear', 'nearest'; got 'cubic'"):
        remap(image, np.zeros((2, 2, 2)), "cubic")


def test_config_round_trip_and_repr():
    aug = Augmentation(rotation=5, elastic_sigma=4.0, gamma=None)
    config = aug.get_config()
    assert config["rotation"] == 5.0 and config["gamma"] == (1.0, 1.0)
    assert len(config) == 17 and config["mirrored_labels"] == ()
    assert Augmentation.from_config(config).get_config() == config
    assert repr(aug).startswith(
        "Augmentation(flip_horizontal=True, flip_vertical=True, flip_depth=True, rotate90=True,"
    )


# ------------------------------------------------------------------- volumes


def blobs(shape=(16, 32, 32), n=5, seed=0):
    """Make-believe blobs: ``n`` random ellipsoids, smoothed (Gaussian, sigma 1 voxel) into
    a float (D, H, W, 1) volume in [0, 1], and its mask (int32 (D, H, W, 1), volume > 0.5):
    here 3845 voxels (23%)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*map(np.arange, shape), indexing="ij"), -1)
    inside = np.zeros(shape, bool)
    for _ in range(n):
        centre, radii = rng.uniform(0.2, 0.8, 3) * shape, rng.uniform(0.15, 0.3, 3) * shape
        inside |= (((grid - centre) / radii) ** 2).sum(-1) < 1
    volume = ndimage.gaussian_filter(inside.astype(np.float32), 1.0)[..., None]
    return volume, (volume > 0.5).astype(np.int32)


def coordinate_volume(*shape):
    """(D, H, W, 3): each voxel's own (slice, row, column), divided by 1000."""
    return np.stack(np.mgrid[tuple(slice(s) for s in shape)], -1).astype(np.float32) / 1000


def test_volume_mask_computed_from_the_volume_stays_aligned():
    # As the 2D test: the mask is volume > 0.5; after the full geometric augmentation in
    # 3D (flips of the 3 axes, quarter turns in-plane, +-15 degrees about axis 0, scale
    # and shift on every axis, elastic sigma 10 on a 3x3x3 grid) it is still the warped
    # volume > 0.5, but where trilinear and nearest sampling may differ: measured over 5
    # seeds, 2.0% to 2.8% of the voxels, and 0 to 2 voxels farther than 2 voxels from an
    # edge of the warped mask.
    volume, mask = blobs()
    aug = Augmentation(**GEOMETRY)
    for seed in range(5):
        warped, warped_mask = (np.asarray(t)[..., 0] for t in aug(volume, mask, seed=[seed, 7]))
        assert np.abs(warped - volume[..., 0]).mean() > 0.3  # it did move
        wrong = (warped_mask > 0.5) != (warped > 0.5)
        assert 0.015 < wrong.mean() < 0.035
        assert wrong[~near_edge(warped_mask)].sum() <= 3


def test_elastic_field_of_a_volume_keeps_its_mask_and_soft_mask_together():
    # The mask sampled nearest and the same mask as float weights sampled trilinearly by
    # the same field: foreground count and mass agree within 1% (measured 0.0% to 0.9%
    # over 6 seeds, sigma (1, 3, 3)) while the field itself grows or shrinks the blobs
    # (3657 to 4283 voxels of 3845); another seed's field moves 2275 voxels (59% of the
    # foreground) to or from it.
    volume, mask = blobs()
    soft = mask[..., 0].astype(np.float32)
    counts = []
    for seed in range(6):
        _, warped, mass = elastic_deform(volume, mask, soft, sigma=(1, 3, 3), seed=[seed, 1])
        count, mass = int(np.sum(warped)), float(np.sum(mass))
        assert abs(count - mass) < 0.01 * count
        counts.append(count)
    assert min(counts) == 3657 and max(counts) == 4283 and mask.sum() == 3845
    _, first = elastic_deform(volume, mask, sigma=(1, 3, 3), seed=[0, 1])
    _, other = elastic_deform(volume, mask, sigma=(1, 3, 3), seed=[0, 2])
    assert np.sum(np.asarray(first) != np.asarray(other)) > 0.5 * mask.sum()


@pytest.mark.parametrize(
    "option, axis", [("flip_depth", 0), ("flip_vertical", 1), ("flip_horizontal", 2)]
)
def test_single_flip_of_a_volume(option, axis):
    rng = np.random.default_rng(3)
    volume = rng.random((8, 16, 16, 2), dtype=np.float32)
    mask, weights = rng.integers(0, 3, (8, 16, 16)), rng.random((8, 16, 16), dtype=np.float32)
    aug, flipped = only(**{option: True}), 0
    for seed in range(8):
        out = [np.asarray(t) for t in aug(volume, mask, weights, seed=[seed, 0])]
        flip = np.array_equal(out[0], np.flip(volume, axis))
        assert flip or np.array_equal(out[0], volume)
        for given, got in zip((mask, weights), out[1:]):
            np.testing.assert_array_equal(got, np.flip(given, axis) if flip else given)
        flipped += flip
    assert 0 < flipped < 8


def test_flips_and_turns_of_a_volume_are_exact_permutations():
    # 8 in-plane flips/turns times the depth flip: each output is exactly one of the 16
    volume = np.random.default_rng(4).random((6, 12, 12, 1), dtype=np.float32)
    aug = only(flip_horizontal=True, flip_vertical=True, flip_depth=True, rotate90=True)
    transforms = {
        (depth, flip, k): np.rot90(np.flip(volume, (0, 2) if depth else 2) if flip
                                   else np.flip(volume, 0) if depth else volume, k, axes=(1, 2))
        for depth in (False, True) for flip in (False, True) for k in range(4)
    }
    seen = set()
    for seed in range(32):  # all 16 by seed [25, 3]
        out, out_mask = (np.asarray(t) for t in aug(volume, volume > 0.5, seed=[seed, 3]))
        names = [n for n, a in transforms.items() if np.array_equal(out, a)]
        assert len(names) == 1
        np.testing.assert_array_equal(out_mask, transforms[names[0]] > 0.5)
        seen.add(names[0])
    assert len(seen) == 16
    # not square in-plane: half turns only
    flat = volume[:, :, :9]
    for seed in range(6):
        out, _ = only(rotate90=True)(flat, flat > 0.5, seed=[seed, 0])
        assert any(np.array_equal(out, np.rot90(flat, k, (1, 2))) for k in (0, 2))


def test_flip_depth_changes_no_draw_of_an_image(isbi):
    image, cells, weights = (a[:96, :96] for a in isbi)
    for seed in range(3):
        with_depth = Augmentation()(image, cells, weights, seed=[seed, 5])
        without = Augmentation(flip_depth=False)(image, cells, weights, seed=[seed, 5])
        for a, b in zip(with_depth, without):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(only(flip_depth=True)(image, cells, seed=[0, 0])[0], image)


def test_rotation_of_90_degrees_about_axis_0_is_rot90_in_plane():
    # With rotation=90 the seed [167117, 0] draws +89.9998 degrees, [5610, 0] -89.998:
    # the affine path's trilinear sampling gives rot90 in-plane (k = 1 and 3) to 1e-6 and
    # 1e-5 (measured), the nearest-sampled mask exactly, every slice turned alike.
    volume = ndimage.gaussian_filter(np.random.default_rng(1).random((8, 32, 32)), (1, 3, 3))
    volume = volume.astype(np.float32)[..., None]
    mask = (volume > np.median(volume)).astype(np.int32)
    for seed, k in (([167117, 0], 1), ([5610, 0], 3)):
        turned, turned_mask = only(rotation=90.0)(volume, mask, seed=seed)
        np.testing.assert_allclose(turned, np.rot90(volume, k, (1, 2)), atol=5e-5)
        np.testing.assert_array_equal(turned_mask, np.rot90(mask, k, (1, 2)))


def test_affine_map_of_a_volume_rotates_in_plane_and_scales_every_axis():
    # The affine map source = A @ p + b fitted to warped coordinate volumes (exact: residual
    # < 1e-3 voxel): A = diag(1, R(-angle)) / scale, the slices never mix with the rows
    # and columns; scales in (0.9, 1.1), angles within 15 degrees, shifts within 5% of
    # each axis (0.8 slice, 1.6 pixels).
    shape = (16, 32, 32)
    coords = coordinate_volume(*shape)
    aug = only(rotation=15.0, scale=(0.9, 1.1), shift=0.05)
    grid = np.mgrid[:16, :32, :32].reshape(3, -1).T.astype(np.float64)
    inside = np.all(np.abs(grid - [7.5, 15.5, 15.5]) <= [4, 8, 8], axis=1)
    design = np.column_stack([grid, np.ones(len(grid))])[inside]
    angles = []
    for seed in range(6):
        warped, _ = aug(coords, np.zeros(shape), seed=[seed, 1])
        source = np.asarray(warped, np.float64).reshape(-1, 3)[inside] * 1000
        fit, *_ = np.linalg.lstsq(design, source, rcond=None)
        assert np.abs(design @ fit - source).max() < 1e-3
        linear = fit[:3].T
        scale = 1 / linear[0, 0]
        assert 0.9 <= scale <= 1.1 and np.allclose(linear[0, 1:], 0, atol=1e-5)
        assert np.allclose(linear[1:, 0], 0, atol=1e-5)
        np.testing.assert_allclose(np.linalg.det(linear[1:, 1:] * scale), 1, atol=1e-5)
        angles.append(np.degrees(np.arctan2(linear[1, 2], linear[1, 1])))
        shift = np.linalg.solve(linear, [7.5, 15.5, 15.5] - fit[3]) - [7.5, 15.5, 15.5]
        assert np.all(np.abs(shift) <= 0.05 * np.array(shape) + 1e-3)
    assert max(np.abs(angles)) <= 15 and np.ptp(angles) > 5


def test_elastic_sigma_per_axis_moves_only_those_axes():
    coords = coordinate_volume(9, 33, 33)
    for sigma, axis in (((0.0, 0.0, 3.0), 2), ((2.0, 0.0, 0.0), 0)):
        warped, _ = elastic_deform(coords, np.zeros((9, 33, 33)), sigma=sigma, seed=[3, 3])
        moved = np.abs(np.asarray(warped) - coords).max(axis=(0, 1, 2)) * 1000
        assert moved[axis] > 0.5
        assert np.all(np.delete(moved, axis) == 0)
    image = coordinate_image(20, 24)  # 2D: one sigma per axis too
    warped, _ = elastic_deform(image, np.zeros((20, 24)), sigma=(0.0, 4.0), seed=[1, 1])
    moved = np.abs(np.asarray(warped) - image).max(axis=(0, 1)) * 1000
    assert moved[0] == 0 and moved[1] > 1


def test_trilinear_remap_is_exact_on_a_linear_ramp():
    rng = np.random.default_rng(5)
    grid = np.mgrid[:8, :16, :16].astype(np.float32)
    slope = np.array([0.03, -0.02, 0.01], np.float32)
    ramp = (0.5 + np.tensordot(slope, grid, 1))[..., None]
    coords = rng.uniform(0, [7, 15, 15], (4, 5, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(remap(ramp, coords), 0.5 + coords @ slope[:, None], atol=2e-6)
    rounded = np.floor(coords + 0.5).astype(int)
    expected = ramp[rounded[..., 0], rounded[..., 1], rounded[..., 2]]
    np.testing.assert_array_equal(remap(ramp, coords, "nearest"), expected)


def test_remap_mirrors_a_volume_like_numpy_reflect():
    volume = np.random.default_rng(6).random((6, 10, 12, 2), dtype=np.float32)
    coords = np.stack(np.mgrid[:6, :10, :12], -1).astype(np.float32) + [-3, 4, -5]
    padded = np.pad(volume, ((3, 0), (0, 4), (5, 0), (0, 0)), mode="reflect")
    expected = padded[:6, 4:, :12]
    np.testing.assert_array_equal(remap(volume, coords), expected)
    np.testing.assert_array_equal(remap(volume, coords, "nearest"), expected)


def test_volume_shapes_dtypes_and_values_are_kept():
    rng = np.random.default_rng(7)
    volume = rng.random((8, 16, 16, 2), dtype=np.float32)
    classes = rng.choice(np.array([0, 3, 7], np.int32), (8, 16, 16))
    labels = (rng.random((8, 16, 16, 3)) > 0.5).astype(np.float32)
    aug = Augmentation(brightness=0.3, contrast=(0.5, 1.5), gamma=(0.5, 2.0))
    for seed in range(3):
        out = aug(volume, classes, rng.random((8, 16, 16), dtype=np.float32), seed=[seed, 0])
        assert [(tuple(t.shape), t.dtype.name) for t in out] == [
            ((8, 16, 16, 2), "float32"), ((8, 16, 16), "int32"), ((8, 16, 16), "float32")]
        assert set(np.unique(out[1])) <= {0, 3, 7}
        assert 0.0 <= float(tf.reduce_min(out[0])) <= float(tf.reduce_max(out[0])) <= 1.0
        _, out_labels, ones = aug(volume, labels, np.ones((8, 16, 16, 1)), seed=[seed, 1])
        assert out_labels.shape == (8, 16, 16, 3) and set(np.unique(out_labels)) == {0.0, 1.0}
        np.testing.assert_array_equal(ones, 1.0)
    again = aug(volume, classes, seed=[1, 0])
    other = aug(volume, classes, seed=[2, 0])
    np.testing.assert_array_equal(again[0], aug(volume, classes, seed=[1, 0])[0])
    assert np.mean(np.asarray(again[0]) != np.asarray(other[0])) > 0.5


def test_volumes_of_dynamic_shape_in_tf_function():
    spec = tf.TensorSpec([None, None, None, 1], tf.float32)
    traced = tf.function(lambda v, m, seed: Augmentation()(v, m, seed=seed), input_signature=[
        spec, tf.TensorSpec([None] * 3, tf.int32), tf.TensorSpec([2], tf.int64)])
    for shape in ((8, 16, 16), (5, 12, 20)):
        out = traced(np.zeros(shape + (1,), np.float32), np.ones(shape, np.int32),
                     tf.constant([1, 2], tf.int64))
        assert [tuple(t.shape) for t in out] == [shape + (1,), shape]
        np.testing.assert_array_equal(out[1], 1)


def test_bad_volume_inputs():
    aug, volume = Augmentation(), np.zeros((8, 16, 16, 1), np.float32)
    mask = np.zeros((8, 16, 16), np.int32)
    spatial = "the volume's depth, height and width (8, 16, 16); got shape"
    with raises(f"mask must have {spatial} (8, 16, 15, 1)"):
        aug(volume, np.zeros((8, 16, 15, 1)), seed=[0, 0])
    with raises("mask must have shape (D, H, W) or (D, H, W, C); got shape (16, 16)"):
        aug(volume, np.zeros((16, 16)), seed=[0, 0])
    with raises(f"weights must have {spatial} (4, 16, 16, 1)"):
        aug(volume, mask, np.ones((4, 16, 16, 1)), seed=[0, 0])
    with raises("coords must have shape (D2, H2, W2, 3) for an image of shape (8, 16, 16, 1); "
                "got shape (4, 4, 4, 2)"):
        remap(volume, np.zeros((4, 4, 4, 2)))
    with raises("coords must have shape (H2, W2, 2) for an image of shape (8, 8, 1); "
                "got shape (4, 4, 3)"):
        remap(np.zeros((8, 8, 1), np.float32), np.zeros((4, 4, 3)))
    with raises("elastic_sigma must be a number or 3 numbers for the volume's depth, height "
                "and width; got (1.0, 2.0)"):
        elastic_deform(volume, mask, sigma=(1, 2), seed=[0, 0])
    with raises("elastic_sigma must be a number >= 0 or one per spatial axis (2 or 3 numbers); "
                "got (1, 2, 3, 4)"):
        Augmentation(elastic_sigma=(1, 2, 3, 4))
    with raises("elastic_sigma[1] must be a finite number >= 0; got -1"):
        Augmentation(elastic_sigma=(1, -1))
    config = Augmentation(elastic_sigma=(2, 10, 10)).get_config()
    assert config["elastic_sigma"] == (2.0, 10.0, 10.0)
    assert Augmentation.from_config(config).get_config() == config
