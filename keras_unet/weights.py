"""The border weight map of the 2015 U-Net paper, and class balancing.

Ronneberger, Fischer and Brox (2015, eq. 2) weigh each pixel ``x`` of a training mask by

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))**2 / (2 * sigma**2))

where ``w_c`` balances the class frequencies and ``d1``, ``d2`` are the distances to
the nearest and the second-nearest cell. The second term is large only on the thin
background borders between two cells, so the network is pushed to learn them (the
paper used ``w0 = 10`` and ``sigma ~ 5`` pixels).

Distances are Euclidean, in pixels, from a pixel's centre to the centre of the closest
pixel of the cell: a background pixel touching a cell is at distance 1 from it.

Only numpy and scipy are used (and the loaders' ignore_index rule,
:func:`keras_unet.images.check_ignore_index`). The maps are float32 with the mask's
shape, ready to be the per-pixel sample weights of an ``(image, mask, weights)``
training triple.
"""

import numbers

import numpy as np
from scipy import ndimage

from keras_unet.images import check_ignore_index

#: The border term is exact wherever it is at least ``TOLERANCE * w0``, that is where
#: ``d1 + d2 <= sigma * sqrt(2 ln(1 / TOLERANCE))`` (3.72 sigma); below, it may be left
#: out (0). This is what makes the map fast: each cell's distances are needed only
#: within that cutoff of the cell.
TOLERANCE = 1e-3

#: 4-connectivity: two cells that touch only at a corner are two cells.
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


# ---------------------------------------------------------------------- arguments


def _check_labels(labels, argument, ignore_index=None):
    """``(array, channel, ignored)``: ``labels`` as a 2-D array with its ignored pixels
    made background (0), whether a trailing channel axis was dropped, and the bool map
    of the pixels equal to ``ignore_index`` (all False when it is None)."""
    array = np.asarray(labels)
    if array.ndim == 3 and array.shape[-1] == 1:
        array, channel = array[..., 0], True
    elif array.ndim == 2:
        channel = False
    else:
        raise ValueError(
            f"{argument} must be 2-D (height, width) or (height, width, 1); "
            f"got shape {array.shape}"
        )
    if array.size == 0:
        raise ValueError(f"{argument} is empty: shape {np.shape(labels)}")
    ignored = np.zeros(array.shape, bool)
    if ignore_index is not None:
        check_ignore_index(ignore_index)
        ignored = array == ignore_index
        array = np.where(ignored, 0, array).astype(array.dtype)
    if array.dtype == bool:
        return array, channel, ignored
    if np.issubdtype(array.dtype, np.floating):
        if np.isnan(array).any():
            raise ValueError(f"{argument} contains NaN")
        other = array[(array != 0) & (array != 1)]
        if other.size:
            raise ValueError(
                f"float {argument} must be a binary mask of 0 and 1 only; got the value "
                f"{other[0].item()!r}. Instance labels must be integers"
            )
    elif np.issubdtype(array.dtype, np.integer):
        if array.min() < 0:
            raise ValueError(
                f"{argument} must be >= 0 (0 = background, 1..K = objects); "
                f"got the value {array.min()}"
            )
        if array.dtype == np.uint8 and np.isin(array, (0, 255)).all() and array.max() == 255:
            raise ValueError(
                f"{argument} is a uint8 image of 0 and 255 only, which would read as one "
                f"object numbered 255; pass a binary mask ({argument} > 0) or instance "
                f"labels numbered 1..K"
            )
        if set(np.unique(array).tolist()) == {0, 1, 255}:
            raise ValueError(
                f"{argument} holds 0, 1 and 255, which would read as two objects numbered 1 "
                f"and 255; if 255 marks unlabelled pixels, pass ignore_index=255, else a "
                f"binary mask ({argument} == 1)"
            )
    else:
        raise ValueError(
            f"{argument} must be a bool, integer or float array; got dtype {array.dtype}"
        )
    return array, channel, ignored


def _check_number(value, argument, *, positive):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        rule = "> 0" if positive else ">= 0"
        raise ValueError(f"{argument} must be a finite number {rule}; got {value!r}")
    return float(value)


def _class_weights(foreground, class_weights):
    """The weights ``(w_background, w_foreground)`` of one boolean mask."""
    if class_weights is None:
        return 1.0, 1.0
    if isinstance(class_weights, str) and class_weights == "balanced":
        counts = np.bincount(foreground.ravel(), minlength=2)
        present = np.count_nonzero(counts)
        # A class absent from the mask weighs 0: it has no pixel to weigh.
        return tuple(foreground.size / (present * n) if n else 0.0 for n in counts)
    if isinstance(class_weights, dict):
        if set(class_weights) != {0, 1}:
            raise ValueError(
                "class_weights must have exactly the keys 0 (background) and 1 "
                f"(foreground); got the keys {sorted(class_weights, key=repr)}"
            )
        return tuple(
            _check_number(class_weights[k], f"class_weights[{k}]", positive=False)
            for k in (0, 1)
        )
    raise ValueError(
        "class_weights must be 'balanced', None or a dict {0: w_background, "
        f"1: w_foreground}}; got {class_weights!r}"
    )


# ------------------------------------------------------------------------- pieces


def _instances(array):
    """Instance labels 1..n (int32) of a checked 2-D array, and n."""
    if array.dtype == bool or array.max() <= 1:  # binary mask: its connected components
        return ndimage.label(array, structure=_FOUR_CONNECTED)
    values, inverse = np.unique(array, return_inverse=True)  # renumber to 1..n
    inverse = inverse.reshape(array.shape).astype(np.int32)
    if values[0] != 0:  # no background: the smallest label must not become 0
        inverse += 1
    return inverse, int(np.count_nonzero(values))


def _border_term(instances, w0, sigma):
    """``w0 * exp(-(d1 + d2)**2 / (2 sigma**2))`` on background pixels, 0 on objects.

    Each object's distance transform is computed only in its bounding box grown by the
    cutoff distance (see ``TOLERANCE``): a pixel outside it is farther than the cutoff
    from the object, so the object cannot be one of the two that count there. Per
    pixel, the two smallest distances seen so far are kept.
    """
    margin = int(np.ceil(sigma * np.sqrt(2 * np.log(1 / TOLERANCE))))
    d1 = np.full(instances.shape, np.inf)
    d2 = np.full(instances.shape, np.inf)
    for index, box in enumerate(ndimage.find_objects(instances), start=1):
        if box is None:
            continue
        window = tuple(slice(max(s.start - margin, 0), s.stop + margin) for s in box)
        distance = ndimage.distance_transform_edt(instances[window] != index)
        nearest, second = d1[window], d2[window]  # views: updated in place
        np.minimum(second, np.maximum(nearest, distance), out=second)
        np.minimum(nearest, distance, out=nearest)
    term = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))  # d2 = inf -> 0
    term[instances > 0] = 0.0
    return term


def _class_weight_array(array, class_weights, ignored):
    """``w_c`` of a checked 2-D array, float64; 0 on the ``ignored`` pixels, which the
    balancing does not count."""
    foreground = array > 0
    background_weight, foreground_weight = _class_weights(foreground[~ignored], class_weights)
    return np.where(ignored, 0.0, np.where(foreground, foreground_weight, background_weight))


def _with_channel(weights, channel):
    weights = weights.astype(np.float32)
    return weights[..., None] if channel else weights


# ------------------------------------------------------------------------- public


def label_objects(labels):
    """The objects that :func:`border_weight_map` sees in ``labels``, numbered 1..n.

    A binary mask (bool, or values in {0, 1} only) gives its 4-connected components
    (cells separated by membranes, as in ISBI 2012); an instance label image is
    renumbered 1..n in the order of its labels. Background stays 0.

    Args:
        labels: ``(height, width)`` or ``(height, width, 1)`` array, as for
            :func:`border_weight_map`.

    Returns:
        ``(instances, n)``: int32 labels of ``labels``'s shape, and the number of
        objects.

    Example:
        >>> import numpy as np
        >>> mask = np.array([[1, 0, 1],
        ...                  [0, 0, 1]])
        >>> instances, n = label_objects(mask)
        >>> n, instances.tolist()
        (2, [[1, 0, 2], [0, 0, 2]])
    """
    array, channel, _ = _check_labels(labels, "labels")
    instances, n = _instances(array)
    return (instances[..., None] if channel else instances), n


def class_weight_map(mask, class_weights="balanced", *, ignore_index=None):
    """The class-balancing weights ``w_c``: one weight for background pixels (0),
    another for foreground pixels (> 0).

    Args:
        mask: ``(height, width)`` or ``(height, width, 1)``: a binary mask (bool, or
            0/1) or an instance label image (integers, 0 = background).
        class_weights: ``"balanced"`` weighs class k by ``N / (n_classes * N_k)`` (N
            pixels, N_k of them in class k, n_classes the classes present), so the map
            averages 1; a mask of one class only is all ones. The frequencies are
            this mask's: for a whole data set's, pass them as a dict. ``None`` gives 1
            everywhere. A dict ``{0: w_background, 1: w_foreground}`` (finite numbers
            >= 0) gives those weights.
        ignore_index: the value of unlabelled pixels (e.g. 255), as ``read_mask``'s
            ``ignore_index`` keeps them: they weigh 0 and the balancing does not count
            them. A mask of 0, 1 and 255 without it is refused (255 would be an object).

    Returns:
        float32 weights of ``mask``'s shape.

    Raises:
        ValueError: for a bad mask (wrong shape, negative or NaN values, float values
            other than 0 and 1) or bad ``class_weights``, naming what is wrong.

    Example:
        >>> import numpy as np
        >>> mask = np.array([[0, 1, 1, 1, 1]])
        >>> class_weight_map(mask).tolist()  # 5 / (2 * 1), 5 / (2 * 4)
        [[2.5, 0.625, 0.625, 0.625, 0.625]]
        >>> class_weight_map(mask, {0: 1, 1: 5}).tolist()
        [[1.0, 5.0, 5.0, 5.0, 5.0]]
        >>> class_weight_map(np.array([[0, 1, 255, 255]]), ignore_index=255).tolist()
        [[1.0, 1.0, 0.0, 0.0]]
    """
    array, channel, ignored = _check_labels(mask, "mask", ignore_index)
    return _with_channel(_class_weight_array(array, class_weights, ignored), channel)


def border_weight_map(labels, w0=10.0, sigma=5.0, class_weights="balanced", *,
                      ignore_index=None):
    """The U-Net paper's pixel weights: class balancing plus a high weight on the
    background borders that separate touching objects.

        ``w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))**2 / (2 * sigma**2))``

    ``d1`` and ``d2`` are the distances from ``x`` to the nearest and the
    second-nearest object, pixel centre to pixel centre. The border term applies to
    background pixels only (object pixels weigh ``w_c``), and is 0 with fewer than
    two objects (no second distance). It is exact wherever it is at least
    ``TOLERANCE * w0`` (1e-3 * w0); below, it may be left out.

    Args:
        labels: ``(height, width)`` or ``(height, width, 1)`` (the channel axis is kept
            in the result). Either an instance label image (integers, 0 = background,
            1..K = objects) or a binary mask (bool, or values 0 and 1 only) whose
            4-connected components are the objects, e.g. ISBI 2012's cells
            separated by membranes. A uint8 mask of 0/255 must be made binary first
            (``mask > 0``). See :func:`label_objects`.
        w0: height of the border term (the paper's 10); ``>= 0``.
        sigma: width of the border term in pixels (the paper's ~5); ``> 0``.
        class_weights: ``w_c``: ``"balanced"``, ``None`` or ``{0: w_background,
            1: w_foreground}``, as for :func:`class_weight_map`.
        ignore_index: the value of unlabelled pixels (e.g. 255): they weigh 0 and are
            no object (a binary mask with a void border keeps its components as the
            objects); without it, labels of 0, 1 and 255 are refused.

    Returns:
        float32 weights of ``labels``'s shape.

    Raises:
        ValueError: for bad labels (wrong shape, negative or NaN values, float values
            other than 0 and 1), ``w0 < 0``, ``sigma <= 0`` or bad ``class_weights``,
            naming the argument and what is wrong.

    Example:
        >>> import numpy as np
        >>> mask = np.zeros((5, 9), bool)
        >>> mask[:, :4] = mask[:, 5:] = True  # two cells, a 1-pixel gap in column 4
        >>> w = border_weight_map(mask, w0=10, sigma=5, class_weights=None)
        >>> round(float(w[2, 4]), 4)  # 1 + 10 * exp(-(1 + 1)**2 / (2 * 5**2))
        10.2312
        >>> float(w[2, 0]), w.shape, w.dtype
        (1.0, (5, 9), dtype('float32'))
    """
    array, channel, ignored = _check_labels(labels, "labels", ignore_index)
    w0 = _check_number(w0, "w0", positive=False)
    sigma = _check_number(sigma, "sigma", positive=True)
    weights = _class_weight_array(array, class_weights, ignored)
    if w0 > 0:
        weights = weights + np.where(ignored, 0.0, _border_term(_instances(array)[0], w0, sigma))
    return _with_channel(weights, channel)
