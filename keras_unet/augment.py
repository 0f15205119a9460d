"""Aligned data augmentation: one random transform for an image, its mask and its
pixel weights together.

The 2015 U-Net paper trained on 30 images and owed much to augmentation: shifts,
rotations and above all *elastic deformations*, "random displacement vectors on a
coarse 3 by 3 grid ... sampled from a Gaussian distribution with 10 pixels standard
deviation", interpolated bicubically to a displacement per pixel. This module does
that, with TensorFlow ops only, one example at a time, inside a ``tf.data`` map.

How a call works:

1. flips and 90-degree rotations permute the pixels (exact, no interpolation);
2. rotation, scaling, shift and the elastic displacement are composed into ONE dense
   sampling field (for each output pixel, where to read in the input), applied once
   by :func:`remap`: bilinear for the image and the weights, nearest neighbour for the
   mask, so class indices stay integers of the input and a binary mask stays {0, 1};
   outside the image, the image is mirrored (as the paper's overlap-tile mirroring);
3. brightness, contrast and gamma change the image only, clipped to [0, 1].

Image and mask never go through two random draws, so they cannot drift apart. (Keras
3's ``keras.layers.RandomElasticTransform`` draws a new displacement field for the
mask, even when given ``{"images": ..., "segmentation_masks": ...}`` in one call:
do not use it for segmentation.)

Randomness is stateless: ``seed`` is a shape-[2] integer tensor, and the same seed
gives the same result, also under ``num_parallel_calls``. In a pipeline::

    aug = Augmentation()
    seeds = tf.data.Dataset.random(seed=0, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip(pairs, seeds).map(
        lambda pair, seed: aug(*pair, seed=seed), num_parallel_calls=tf.data.AUTOTUNE
    )

Conventions: image float (H, W, C) in [0, 1]; mask (H, W, 1) float {0, 1} (binary) or
int32 class indices; weights float (H, W). H and W may be unknown until run time.
"""

import difflib
import inspect
import math
import numbers

import tensorflow as tf

#: Sub-seed of each random component (``stateless_fold_in``): switching one option
#: off does not change what the others draw.
_FLIP_SEED, _AFFINE_SEED, _ELASTIC_SEED, _INTENSITY_SEED = 1, 2, 3, 4
METHODS = ("bilinear", "nearest")


# ---------------------------------------------------------------------- arguments


def _fail(argument, rule, value):
    raise ValueError(f"{argument} must be {rule}; got {value!r}")


def _number(value, argument, low=None, high=None, *, open_low=False, open_high=False):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and math.isfinite(value)
    ok = ok and (low is None or (value > low if open_low else value >= low))
    ok = ok and (high is None or (value < high if open_high else value <= high))
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if open_low else '>='} {low}")
        if high is not None:
            bounds.append(f"{'<' if open_high else '<='} {high}")
        _fail(argument, "a finite number " + " and ".join(bounds), value)
    return float(value)


def _boolean(value, argument):
    if not isinstance(value, bool):
        _fail(argument, "True or False", value)
    return value


def _factor_range(value, argument):
    """``None`` (off: (1, 1)) or a pair ``(low, high)`` with ``0 < low <= high``."""
    if value is None:
        return (1.0, 1.0)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        _fail(argument, "None or a pair (low, high) of factors > 0", value)
    low = _number(value[0], f"{argument}[0]", 0, open_low=True)
    high = _number(value[1], f"{argument}[1]", 0, open_low=True)
    if low > high:
        _fail(argument, "a range (low, high) with low <= high", tuple(value))
    return (low, high)


def _check_options(options):
    """Validated, normalised copy of an :class:`Augmentation`'s options."""
    checked = {}
    for name in ("flip_horizontal", "flip_vertical", "rotate90", "elastic"):
        checked[name] = _boolean(options[name], name)
    checked["rotation"] = _number(options["rotation"], "rotation", 0, 180)
    checked["scale"] = _factor_range(options["scale"], "scale")
    checked["shift"] = _number(options["shift"], "shift", 0, 1, open_high=True)
    checked["elastic_sigma"] = _number(options["elastic_sigma"], "elastic_sigma", 0)
    grid = options["elastic_grid"]
    if isinstance(grid, bool) or not isinstance(grid, numbers.Integral) or grid < 2:
        _fail("elastic_grid", "an integer >= 2 (points per side of the coarse grid)", grid)
    checked["elastic_grid"] = int(grid)
    checked["brightness"] = _number(options["brightness"], "brightness", 0, 1)
    checked["contrast"] = _factor_range(options["contrast"], "contrast")
    checked["gamma"] = _factor_range(options["gamma"], "gamma")
    for name in ("affine_probability", "elastic_probability", "intensity_probability"):
        checked[name] = _number(options[name], name, 0, 1)
    return checked


def _check_seed(seed):
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer or seed.shape.rank != 1 or seed.shape[0] not in (2, None):
        raise ValueError(
            "seed must be an integer tensor of shape [2] (e.g. from "
            f"tf.random.experimental.stateless_split); got {seed.dtype.name} "
            f"of shape {seed.shape}"
        )
    return tf.cast(seed, tf.int64)


def _with_channel(tensor, argument, ranks):
    """``tensor`` as rank 3 (H, W, C), and whether a channel axis was added."""
    tensor = tf.convert_to_tensor(tensor)
    rank = tensor.shape.rank
    if rank not in ranks:
        shapes = " or ".join(("(H, W)", "(H, W, C)")[r - 2] for r in ranks)
        raise ValueError(f"{argument} must have shape {shapes}; got shape {tensor.shape}")
    return (tensor[..., None], True) if rank == 2 else (tensor, False)


def _check_same_size(image, other, argument):
    if not image.shape[:2].is_compatible_with(other.shape[:2]):
        raise ValueError(
            f"{argument} must have the image's height and width {image.shape[:2]}; "
            f"got shape {other.shape}"
        )


# ----------------------------------------------------------------------- sampling


def _reflect(x, size):
    """Coordinates ``x`` mirrored into ``[0, size - 1]`` about the edge pixels'
    centres (``d c b | a b c d | c b a``), so bilinear sampling of the mirrored image
    equals bilinear sampling of the image at the reflected coordinate."""
    last = tf.cast(size - 1, tf.float32)
    period = tf.maximum(2.0 * last, 1.0)
    x = tf.math.floormod(tf.abs(x), period)
    x = tf.where(x > last, period - x, x)
    return tf.clip_by_value(x, 0.0, last)


def _locate(rows, cols, height, width):
    """The source pixels of reflected coordinates: the top-left neighbour's flat
    index (row * width + column), and the fractions of the way to the next row and
    to the next column; each (H2, W2)."""
    row, col = tf.floor(rows), tf.floor(cols)
    index = tf.cast(row, tf.int32) * width + tf.cast(col, tf.int32)
    return index, rows - row, cols - col


def _bilinear(image, index, row_fraction, col_fraction):
    """Bilinear samples of a float ``image`` (H, W, C) at located source pixels.

    A neighbour is read only with a fraction > 0, so the last row and column need no
    neighbour beyond them. Two linear interpolations ``a + t * (b - a)``: equal
    neighbours give that value exactly (a constant weight map stays constant).
    """
    flat = tf.reshape(image, (-1, tf.shape(image)[2]))
    right = tf.cast(col_fraction > 0, tf.int32)
    down = tf.cast(row_fraction > 0, tf.int32) * tf.shape(image)[1]
    top0, top1 = tf.gather(flat, index), tf.gather(flat, index + right)
    bottom0, bottom1 = tf.gather(flat, index + down), tf.gather(flat, index + down + right)
    row_fraction, col_fraction = row_fraction[..., None], col_fraction[..., None]
    top = top0 + col_fraction * (top1 - top0)
    bottom = bottom0 + col_fraction * (bottom1 - bottom0)
    return top + row_fraction * (bottom - top)


def _nearest(image, index, row_fraction, col_fraction):
    """The nearest pixel of ``image`` (any dtype) at located source pixels (ties go
    to the next row or column)."""
    width = tf.shape(image)[1]
    step = tf.cast(row_fraction >= 0.5, tf.int32) * width
    step += tf.cast(col_fraction >= 0.5, tf.int32)
    flat = tf.reshape(image, (-1, tf.shape(image)[2]))
    return tf.gather(flat, index + step)


def remap(image, coords, method="bilinear"):
    """Sample ``image`` at arbitrary coordinates: ``out[i, j] = image[coords[i, j]]``.

    Coordinates are in pixels, ``(row, column)``, pixel centres at integers. Outside
    the image the image is mirrored about its edge pixels (``d c b | a b c d | c b
    a``), as the paper's overlap-tile strategy mirrors the borders.

    Args:
        image: ``(H, W, C)`` tensor; any dtype for ``"nearest"``, float for
            ``"bilinear"``. H and W may be unknown until run time.
        coords: ``(H2, W2, 2)`` float32, where to read each output pixel.
        method: ``"bilinear"`` (images, weights) or ``"nearest"`` (masks: class
            indices stay values of the input).

    Returns:
        ``(H2, W2, C)`` tensor of ``image``'s dtype.

    Raises:
        ValueError: for a bad ``method``, ``image`` or ``coords`` shape, or an integer
            image with ``"bilinear"``.

    Example:
        >>> import tensorflow as tf
        >>> image = tf.reshape(tf.range(4.0), (1, 4, 1))  # one row: 0 1 2 3
        >>> coords = tf.constant([[[0.0, 0.5], [0.0, -1.0], [0.0, 4.0]]])
        >>> remap(image, coords)[..., 0].numpy().tolist()  # between, mirrored left/right
        [[0.5, 1.0, 2.0]]
        >>> remap(image, coords, "nearest")[..., 0].numpy().tolist()  # ties: next pixel
        [[1.0, 1.0, 2.0]]
    """
    if method not in METHODS:
        _fail("method", "'bilinear' or 'nearest'", method)
    image, _ = _with_channel(image, "image", (3,))
    coords = tf.convert_to_tensor(coords, tf.float32)
    if coords.shape.rank != 3 or coords.shape[-1] not in (2, None):
        raise ValueError(f"coords must have shape (H, W, 2); got shape {coords.shape}")
    if method == "bilinear" and not image.dtype.is_floating:
        raise ValueError(
            f"bilinear remap needs a float image; got {image.dtype.name} (use 'nearest')"
        )
    source = _source_pixels(coords[..., 0], coords[..., 1], image)
    return _sample(image, source, method)


def _source_pixels(rows, cols, image):
    """:func:`_locate` the coordinates ``rows``, ``cols`` in ``image``, mirrored
    inside it (computed once for all the tensors sampled with one field)."""
    shape = tf.shape(image)
    rows, cols = _reflect(rows, shape[0]), _reflect(cols, shape[1])
    return _locate(rows, cols, shape[0], shape[1])


def _sample(image, source, method):
    """:func:`remap` at located source pixels."""
    sample = _nearest if method == "nearest" else _bilinear
    out = sample(image, *source)
    out.set_shape(source[0].shape[:2].concatenate(image.shape[2:]))
    return out


def _uniform(seed, shape=()):
    return tf.random.stateless_uniform(shape, seed)


def _between(u, low, high):
    return low + u * (high - low)


def _elastic_displacement(seed, height, width, sigma, grid, probability):
    """The paper's displacement field (H, W, 2) in pixels: N(0, sigma) vectors on a
    ``grid`` x ``grid`` grid, bicubically interpolated (``tf.image.resize``: the grid
    points sit at the centres of a ``grid`` x ``grid`` tiling of the image)."""
    normal_seed, apply_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    coarse = tf.random.stateless_normal((grid, grid, 2), normal_seed, stddev=sigma)
    coarse *= tf.cast(_uniform(apply_seed) < probability, tf.float32)
    return tf.image.resize(coarse, tf.stack([height, width]), method="bicubic")


def _sampling_field(seed, height, width, options):
    """Where each output pixel reads in the input: the elastic displacement, then the
    inverse of a rotation/scaling/shift about the image centre: rows and columns,
    (H, W) float32 each."""
    rows, cols = tf.meshgrid(
        tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32), indexing="ij"
    )
    if options["elastic"]:
        displacement = _elastic_displacement(
            tf.random.experimental.stateless_fold_in(seed, _ELASTIC_SEED),
            height,
            width,
            options["elastic_sigma"],
            options["elastic_grid"],
            options["elastic_probability"],
        )
        rows, cols = rows + displacement[..., 0], cols + displacement[..., 1]
    if _affine_enabled(options):
        u = _uniform(tf.random.experimental.stateless_fold_in(seed, _AFFINE_SEED), (5,))
        apply = u[0] < options["affine_probability"]
        limit = options["rotation"] * math.pi / 180
        angle = tf.where(apply, _between(u[1], -limit, limit), 0.0)
        scale = tf.where(apply, _between(u[2], *options["scale"]), 1.0)
        shift = tf.where(apply, _between(u[3:], -options["shift"], options["shift"]), 0.0)
        size = tf.cast(tf.stack([height, width]), tf.float32)
        centre = (size - 1) / 2
        y = rows - centre[0] - shift[0] * size[0]
        x = cols - centre[1] - shift[1] * size[1]
        cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
        rows, cols = centre[0] + cos * y + sin * x, centre[1] - sin * y + cos * x
    return rows, cols


def _warp(image, mask, weights, seed, options):
    """Rotation, scale, shift and elastic deformation as ONE sampling field, applied
    once: bilinear to the image and the ``weights`` (a list of 0 or 1 tensors, sampled
    together with the image), nearest-neighbour to the mask."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    source = _source_pixels(*_sampling_field(seed, height, width, options), image)
    floats = [image, *weights]
    stacked = tf.concat([tf.cast(t, tf.float32) for t in floats], axis=-1)
    sampled = _sample(stacked, source, "bilinear")
    outputs, start = [], 0
    for tensor in floats:
        end = start + tf.shape(tensor)[-1]
        output = tf.cast(sampled[..., start:end], tensor.dtype)
        output.set_shape(tensor.shape)
        outputs.append(output)
        start = end
    return outputs[0], _sample(mask, source, "nearest"), outputs[1:]


def _affine_enabled(options):
    moves = options["rotation"] > 0 or options["scale"] != (1.0, 1.0) or options["shift"] > 0
    return moves and options["affine_probability"] > 0


def _flip_rotate(tensors, seed, options):
    """Random flips and 90-degree rotations of all ``tensors`` (H, W, C) together.
    Odd quarter turns only for square images, so shapes never change."""
    u = _uniform(seed, (3,))
    height, width = tf.shape(tensors[0])[0], tf.shape(tensors[0])[1]

    def maybe(condition, transform, tensors):
        return tf.cond(condition, lambda: [transform(t) for t in tensors], lambda: tensors)

    if options["flip_horizontal"]:
        tensors = maybe(u[0] < 0.5, lambda t: tf.reverse(t, [1]), tensors)
    if options["flip_vertical"]:
        tensors = maybe(u[1] < 0.5, lambda t: tf.reverse(t, [0]), tensors)
    if options["rotate90"]:
        turns = tf.minimum(tf.cast(u[2] * 4, tf.int32), 3)
        turns = tf.where(tf.equal(height, width), turns, 2 * (turns // 2))
        shapes = [t.shape for t in tensors]
        tensors = [tf.image.rot90(t, turns) for t in tensors]
        for tensor, shape in zip(tensors, shapes):
            tensor.set_shape(shape)
    return list(tensors)


def _adjust_intensity(image, seed, options):
    """Brightness (added), contrast (about the channel means), gamma; then [0, 1]."""
    u = _uniform(seed, (4,))
    apply = u[0] < options["intensity_probability"]
    brightness = tf.where(
        apply, _between(u[1], -options["brightness"], options["brightness"]), 0.0
    )
    contrast = tf.where(apply, _between(u[2], *options["contrast"]), 1.0)
    gamma = tf.where(apply, _between(u[3], *options["gamma"]), 1.0)
    mean = tf.reduce_mean(image, axis=(0, 1), keepdims=True)
    image = (image + brightness - mean) * contrast + mean
    return tf.clip_by_value(image, 0.0, 1.0) ** gamma


def _intensity_enabled(options):
    changes = (
        options["brightness"] > 0
        or options["contrast"] != (1.0, 1.0)
        or options["gamma"] != (1.0, 1.0)
    )
    return changes and options["intensity_probability"] > 0


# ------------------------------------------------------------------------- public


class Augmentation:
    """A random transform applied jointly to an image, its mask and its weights.

    Defaults suit microscopy (the 2015 paper's setting): every flip and quarter turn,
    a small rotation, scaling and shift, the paper's elastic deformation, and mild
    intensity changes. Each geometric option composes into one sampling field applied
    once; see the module docstring.

    Args:
        flip_horizontal: flip left-right with probability 1/2.
        flip_vertical: flip up-down with probability 1/2.
        rotate90: rotate by 0, 90, 180 or 270 degrees, uniformly (0 or 180 only for
            non-square images, which keep their shape).
        rotation: rotate by an angle uniform in ``[-rotation, rotation]`` degrees
            (``0 <= rotation <= 180``; 0 = off).
        scale: zoom by a factor uniform in ``(low, high)``, ``0 < low <= high``
            (> 1 enlarges the content); ``None`` = off.
        shift: shift by a fraction uniform in ``[-shift, shift]`` of the height and
            of the width, independently (``0 <= shift < 1``; 0 = off).
        affine_probability: probability in [0, 1] that rotation, scale and shift are
            applied at all.
        elastic: the paper's elastic deformation: displacement vectors drawn from
            ``N(0, elastic_sigma)`` pixels on an ``elastic_grid`` x ``elastic_grid``
            grid, bicubically interpolated to every pixel.
        elastic_sigma: standard deviation of the grid displacements in pixels (the
            paper's 10; ``>= 0``, 0 = identity).
        elastic_grid: points per side of the coarse grid (the paper's 3; ``>= 2``).
        elastic_probability: probability in [0, 1] that the deformation is applied.
        brightness: add an amount uniform in ``[-brightness, brightness]`` to the image
            (``0 <= brightness <= 1``; 0 = off).
        contrast: scale the image about its channel means by a factor uniform in
            ``(low, high)``; ``None`` = off.
        gamma: raise the image to a power uniform in ``(low, high)``; ``None`` = off.
        intensity_probability: probability in [0, 1] that brightness, contrast and
            gamma are applied at all. They change the image only, which is then
            clipped to [0, 1].

    Call ``aug(image, mask, weights=None, *, seed)``:
        image: float ``(H, W, C)`` in [0, 1]; mask: ``(H, W, 1)`` (or ``(H, W)``,
        ``(H, W, K)``) float {0, 1} or integer class indices; weights: float ``(H, W)``
        (or ``(H, W, 1)``); seed: integer tensor of shape [2]. Returns ``(image, mask)``,
        or ``(image, mask, weights)`` when weights are given, with the shapes and
        dtypes of the inputs. The mask is sampled nearest-neighbour, so it holds only
        values of the input mask.

    Raises:
        ValueError: at construction, for an unknown option or a bad value, naming it;
            at a call, for bad shapes or a bad seed.

    Example:
        >>> import numpy as np
        >>> image = np.random.default_rng(0).random((64, 64, 1), dtype=np.float32)
        >>> mask = (image > 0.5).astype(np.int32)
        >>> aug = Augmentation(rotation=10, scale=(0.9, 1.1))
        >>> warped, warped_mask = aug(image, mask, seed=[4, 2])
        >>> warped.shape, warped_mask.dtype.name
        (TensorShape([64, 64, 1]), 'int32')
        >>> sorted(np.unique(warped_mask).tolist())
        [0, 1]
        >>> Augmentation(scale=(1.1, 0.9))
        Traceback (most recent call last):
        ...
        ValueError: scale must be a range (low, high) with low <= high; got (1.1, 0.9)
    """

    def __init__(
        self,
        *,
        flip_horizontal=True,
        flip_vertical=True,
        rotate90=True,
        rotation=15.0,
        scale=(0.9, 1.1),
        shift=0.05,
        affine_probability=1.0,
        elastic=True,
        elastic_sigma=10.0,
        elastic_grid=3,
        elastic_probability=1.0,
        brightness=0.1,
        contrast=(0.9, 1.1),
        gamma=(0.8, 1.25),
        intensity_probability=1.0,
        **unknown,
    ):
        if unknown:
            name = sorted(unknown)[0]
            close = difflib.get_close_matches(name, self.option_names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "."
            raise ValueError(
                f"unknown Augmentation option {name!r}{hint} "
                f"Options: {', '.join(self.option_names())}"
            )
        arguments = locals()
        options = {name: arguments[name] for name in self.option_names()}
        self.__dict__.update(_check_options(options))

    @classmethod
    def option_names(cls):
        """The names of the options, in signature order.

        Example:
            >>> Augmentation.option_names()[:3]
            ('flip_horizontal', 'flip_vertical', 'rotate90')
        """
        parameters = inspect.signature(cls.__init__).parameters.values()
        return tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)

    @classmethod
    def none(cls):
        """An augmentation that changes nothing (every option off).

        Example:
            >>> image, mask = Augmentation.none()([[[0.5]]], [[[1]]], seed=[0, 0])
            >>> float(image[0, 0, 0]), int(mask[0, 0, 0])
            (0.5, 1)
        """
        return cls(
            flip_horizontal=False,
            flip_vertical=False,
            rotate90=False,
            rotation=0.0,
            scale=None,
            shift=0.0,
            elastic=False,
            brightness=0.0,
            contrast=None,
            gamma=None,
        )

    def get_config(self):
        """The options as a dict; ``Augmentation(**config)`` rebuilds it.

        Example:
            >>> config = Augmentation(rotation=5).get_config()
            >>> config["rotation"], config["elastic_sigma"]
            (5.0, 10.0)
            >>> Augmentation.from_config(config).get_config() == config
            True
        """
        return {name: getattr(self, name) for name in self.option_names()}

    @classmethod
    def from_config(cls, config):
        """The augmentation of :meth:`get_config`'s dict."""
        return cls(**config)

    def __repr__(self):
        options = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"Augmentation({options})"

    def __call__(self, image, mask, weights=None, *, seed):
        options = _check_options(self.get_config())  # attributes may have been edited
        seed = _check_seed(seed)
        image, _ = _with_channel(image, "image", (3,))
        if not image.dtype.is_floating:
            raise ValueError(
                f"image must be float in [0, 1]; got dtype {image.dtype.name}"
            )
        mask, mask_channel = _with_channel(mask, "mask", (2, 3))
        _check_same_size(image, mask, "mask")
        tensors = [image, mask]
        if weights is not None:
            weights, weights_channel = _with_channel(weights, "weights", (2, 3))
            _check_same_size(image, weights, "weights")
            tensors.append(weights)

        if options["flip_horizontal"] or options["flip_vertical"] or options["rotate90"]:
            flip_seed = tf.random.experimental.stateless_fold_in(seed, _FLIP_SEED)
            tensors = _flip_rotate(tensors, flip_seed, options)
        image, mask, *rest = tensors

        if options["elastic"] or _affine_enabled(options):
            image, mask, rest = _warp(image, mask, rest, seed, options)

        if _intensity_enabled(options):
            intensity_seed = tf.random.experimental.stateless_fold_in(seed, _INTENSITY_SEED)
            adjusted = _adjust_intensity(tf.cast(image, tf.float32), intensity_seed, options)
            image = tf.cast(adjusted, image.dtype)

        mask = mask[..., 0] if mask_channel else mask
        if weights is None:
            return image, mask
        (weights,) = rest
        return image, mask, (weights[..., 0] if weights_channel else weights)


def elastic_deform(image, mask, weights=None, *, sigma=10.0, grid=3, seed):
    """The U-Net paper's elastic deformation alone, of an image, its mask and its
    weights together.

    Random displacement vectors on a coarse ``grid`` x ``grid`` grid, drawn from
    ``N(0, sigma)`` pixels, are interpolated bicubically to a displacement per pixel;
    the image and weights are sampled bilinearly, the mask nearest-neighbour, with
    mirrored borders. Same as ``Augmentation.none()`` with ``elastic=True``.

    Args:
        image, mask, weights, seed: as for :class:`Augmentation`.
        sigma: standard deviation of the grid displacements in pixels (``>= 0``;
            0 = identity).
        grid: points per side of the coarse grid (``>= 2``).

    Returns:
        ``(image, mask)``, or ``(image, mask, weights)`` when weights are given.

    Raises:
        ValueError: for ``sigma < 0``, ``grid < 2``, bad shapes or a bad seed.

    Example:
        >>> import numpy as np
        >>> image = np.zeros((32, 32, 1), np.float32)
        >>> image[::8] = 1.0  # horizontal lines, 8 pixels apart
        >>> mask = image.astype(np.int32)
        >>> bent, bent_mask = elastic_deform(image, mask, sigma=4.0, seed=[0, 1])
        >>> bool(np.any(bent != image)), bool(np.all((bent_mask == 0) | (bent_mask == 1)))
        (True, True)
        >>> same, _ = elastic_deform(image, mask, sigma=0.0, seed=[0, 1])
        >>> bool(np.array_equal(same, image))
        True
    """
    options = Augmentation.none().get_config()
    options.update(elastic=True, elastic_sigma=sigma, elastic_grid=grid)
    return Augmentation(**options)(image, mask, weights, seed=seed)
