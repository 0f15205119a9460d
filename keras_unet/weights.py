"""The border weight map of the 2015 U-Net paper, and class balancing.

Ronneberger, Fischer and Brox (2015, eq. 2) weigh each pixel ``x`` of a training mask by
``w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))**2 / (2 * sigma**2))``: ``w_c`` balances the
class frequencies, ``d1`` and ``d2`` are the distances to the nearest and the second-nearest
object (Euclidean, pixel centre to pixel centre; the paper used ``w0 = 10``, ``sigma ~ 5``).
Masks are read by :func:`keras_unet.images.as_mask`; maps are float32 of the mask's shape.
"""

import numpy as np
from scipy import ndimage

from keras_unet.checks import check_number
from keras_unet.images import as_mask

#: The border term is exact wherever it is at least ``TOLERANCE * w0``, that is where
#: ``d1 + d2 <= sigma * sqrt(2 ln(1 / TOLERANCE))`` (3.72 sigma); below, it may be left
#: out (0): each object's distances are needed only within that cutoff.
TOLERANCE = 1e-3

#: 4-connectivity: two cells that touch only at a corner are two cells.
FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def _labels(labels, argument, ignore_index=None):
    """``(array, channel, ignored)``: one 2-D mask as ``as_mask`` reads it, ignored pixels
    made 0; whether ``labels`` had a channel axis; the bool map of the ignored pixels."""
    mask = as_mask(labels, argument, ignore_index=ignore_index)
    if mask.shape[-1] != 1:
        raise ValueError(f"{argument} must be one mask, (height, width) or (height, width, 1) "
                         f"(binary, or instance labels); got shape {mask.shape}")
    array = mask[..., 0]
    ignored = (array == ignore_index) if ignore_index is not None else np.zeros(array.shape, bool)
    return np.where(ignored, 0, array), np.ndim(labels) == 3, ignored


def _class_weights(foreground, class_weights):
    """The weights ``(w_background, w_foreground)`` of one boolean mask."""
    if class_weights is None:
        return 1.0, 1.0
    if isinstance(class_weights, str) and class_weights == "balanced":
        counts = np.bincount(foreground.ravel(), minlength=2)
        present = np.count_nonzero(counts)  # a class absent from the mask weighs 0
        return tuple(foreground.size / (present * n) if n else 0.0 for n in counts)
    if isinstance(class_weights, dict):
        if set(class_weights) != {0, 1}:
            raise ValueError("class_weights must have exactly the keys 0 (background) and 1 "
                             f"(foreground); got the keys {sorted(class_weights, key=repr)}")
        return tuple(check_number(class_weights[k], f"class_weights[{k}]", 0) for k in (0, 1))
    raise ValueError("class_weights must be 'balanced', None or a dict {0: w_background, "
                     f"1: w_foreground}}; got {class_weights!r}")


def _instances(array):
    """Instance labels 1..n (int32) of a checked 2-D array, and n."""
    if array.dtype.kind == "f" or array.max() <= 1:  # a binary mask: its components
        return ndimage.label(array, structure=FOUR_CONNECTED)
    values, inverse = np.unique(array, return_inverse=True)  # renumbered 1..n
    inverse = inverse.reshape(array.shape).astype(np.int32)
    return inverse + (values[0] != 0), int(np.count_nonzero(values))  # no background: + 1


def _border_term(instances, w0, sigma):
    """``w0 * exp(-(d1 + d2)**2 / (2 sigma**2))`` on background pixels, 0 on objects. Each
    object's distance transform covers only its box grown by the cutoff (``TOLERANCE``);
    per pixel, the two smallest distances seen so far are kept."""
    margin = int(np.ceil(sigma * np.sqrt(2 * np.log(1 / TOLERANCE))))
    d1, d2 = np.full(instances.shape, np.inf), np.full(instances.shape, np.inf)
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
    """``w_c`` of a checked 2-D array; 0 on the ``ignored`` pixels, which are not counted."""
    foreground = array > 0
    background_weight, foreground_weight = _class_weights(foreground[~ignored], class_weights)
    return np.where(ignored, 0.0, np.where(foreground, foreground_weight, background_weight))


def _with_channel(weights, channel, dtype=np.float32):
    return weights.astype(dtype)[..., None] if channel else weights.astype(dtype)


def label_objects(labels):
    """The objects :func:`border_weight_map` sees in ``labels`` ``(H, W[, 1])``: a binary
    mask (bool, 0/1) gives its 4-connected components (cells between membranes, as in ISBI
    2012); an instance label image is renumbered 1..n. Returns ``(instances, n)``, int32
    labels of ``labels``'s shape (background 0) and the number of objects.

    Example:
        >>> import numpy as np
        >>> instances, n = label_objects(np.array([[1, 0, 1], [0, 0, 1]]))
        >>> n, instances.tolist()
        (2, [[1, 0, 2], [0, 0, 2]])
    """
    array, channel, _ = _labels(labels, "labels")
    instances, n = _instances(array)
    return _with_channel(instances, channel, np.int32), n


def class_weight_map(mask, class_weights="balanced", *, ignore_index=None):
    """The class-balancing weights ``w_c``: one for background pixels (0), one for the rest.

    Args:
        mask: ``(H, W[, 1])``, a binary mask or instance labels (0 = background).
        class_weights: ``"balanced"``: class k weighs ``N / (n_classes * N_k)`` in this mask
            (the map averages 1); ``None``: 1 everywhere; ``{0: w_background, 1:
            w_foreground}`` (numbers >= 0; e.g. a whole data set's frequencies).
        ignore_index: the value of unlabelled pixels (e.g. 255): they weigh 0 and are not
            counted.

    Returns float32 weights of ``mask``'s shape; a bad mask or option is a ValueError.

    Example:
        >>> import numpy as np
        >>> class_weight_map(np.array([[0, 1, 1, 1, 1]])).tolist()  # 5 / (2 * 1), 5 / (2 * 4)
        [[2.5, 0.625, 0.625, 0.625, 0.625]]
    """
    array, channel, ignored = _labels(mask, "mask", ignore_index)
    return _with_channel(_class_weight_array(array, class_weights, ignored), channel)


def border_weight_map(labels, w0=10.0, sigma=5.0, class_weights="balanced", *,
                      ignore_index=None):
    """The paper's pixel weights: ``w_c(x) + w0 * exp(-(d1(x) + d2(x))**2 / (2 * sigma**2))``,
    high on the background borders between touching objects (the term is 0 on objects and
    with fewer than two objects; exact wherever it is at least ``TOLERANCE * w0``).

    Args:
        labels: ``(H, W[, 1])`` (a channel axis is kept): instance labels (integers, 0 =
            background) or a binary mask whose 4-connected components are the objects
            (:func:`label_objects`).
        w0: height of the border term (the paper's 10), >= 0; ``sigma``: its width in
            pixels (the paper's ~5), > 0.
        class_weights, ignore_index: as for :func:`class_weight_map` (ignored pixels weigh
            0 and are no object).

    Example:
        >>> import numpy as np
        >>> mask = np.zeros((5, 9), bool)
        >>> mask[:, :4] = mask[:, 5:] = True  # two cells, a 1-pixel gap in column 4
        >>> w = border_weight_map(mask, class_weights=None)
        >>> round(float(w[2, 4]), 4), float(w[2, 0])  # 1 + 10 * exp(-(1 + 1)**2 / 50)
        (10.2312, 1.0)
    """
    array, channel, ignored = _labels(labels, "labels", ignore_index)
    w0, sigma = check_number(w0, "w0", 0), check_number(sigma, "sigma", 0, open_low=True)
    weights = _class_weight_array(array, class_weights, ignored)
    if w0 > 0:
        weights = weights + np.where(ignored, 0.0, _border_term(_instances(array)[0], w0, sigma))
    return _with_channel(weights, channel)
