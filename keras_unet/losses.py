"""Segmentation losses for U-Net outputs, in ``keras.ops`` (every Keras backend).

Two kinds of output, as built by :func:`keras_unet.build_unet`:

* binary: ``n_classes=1``, a sigmoid (or logits), and masks of floats (or bools) in
  {0, 1} shaped like the output, ``(N, H, W, 1)`` (``(N, H, W)`` is accepted too).
  Integer masks are class indices everywhere in the package, so an integer mask with one
  output channel is refused when the loss is traced (``ValueError``), not clipped to
  {0, 1}: class masks 0..3 would otherwise train a binary model without a word. Binary
  masks stored as integers are cast first (``masks.astype("float32")``);
  :func:`keras_unet.data.make_dataset` gives float32 binary masks and int32 class masks;
* multi-class: ``n_classes >= 2``, a softmax (or logits), and *sparse* masks of class
  indices ``(N, H, W)`` or ``(N, H, W, 1)``. Labels outside ``[0, n_classes)`` (say 255
  for "unlabelled") are ignored: such pixels count neither as truth nor as prediction.
  Binary masks are clipped to [0, 1].

Every loss returns one value per image and is reduced over the batch by Keras.

Ignored pixels: a pixel loss (cross-entropy, focal, the cross-entropy term of
:class:`DiceCELoss`) is its weighted pixel losses summed and divided by the number of
counted (not ignored) pixels of the whole batch, as Keras's ``ignore_class`` does, so
``DiceCELoss(dice_weight=0)`` equals
``keras.losses.SparseCategoricalCrossentropy(ignore_class=255)`` even when the images
hold different numbers of unlabelled pixels (with ``reduction="none"`` or ``"sum"``
each image is divided by its own count; see :func:`mean_over_counted`). The region
losses (Dice, Jaccard, Tversky) are computed per image on the counted pixels.

Per-pixel weights (the paper's weight map, :mod:`keras_unet.weights`) go in as
``sample_weight`` of shape ``(N, H, W)`` or ``(N, H, W, 1)``, in
``model.fit(x, y, sample_weight=w)`` or as the third element of a dataset's
``(image, mask, weights)``: the region losses (Dice, Jaccard, Tversky) weight every
pixel's share of the soft overlap sums, the pixel losses (cross-entropy, focal) weight
each pixel's loss exactly as Keras's own losses do (not normalised: the divisor stays
the pixel count). A per-image weight ``(N,)`` weights whole images.

Defined values: an image whose mask and prediction are both empty has Dice 1 (loss 0)
thanks to the smoothing term. NaN in the predictions propagates into the loss (stop
with ``keras.callbacks.TerminateOnNaN``). Masks whose size differs from the output's
(forgot to crop them for a valid-padding model?) are a ValueError when the shapes are
known.

All losses are registered with Keras (package ``keras_unet``), so a compiled model saves
to ``.keras`` and loads with ``keras.models.load_model(path)`` in safe mode.
"""

import keras
from keras import ops
from keras.src.losses.loss import reduce_weighted_values  # stable since Keras 3.0

_register = keras.saving.register_keras_serializable(package="keras_unet")


# ------------------------------------------------------------------ preparation


def _static_checks(y_true, y_pred):
    true_shape, pred_shape = tuple(y_true.shape), tuple(y_pred.shape)
    rank, classes = len(pred_shape), pred_shape[-1]
    if rank < 3:
        raise ValueError(f"y_pred must be (batch, height, width, classes); got shape {pred_shape}")
    if len(true_shape) not in (rank, rank - 1):
        raise ValueError(
            f"mask shape {true_shape} does not fit the output shape {pred_shape}: expected "
            f"{pred_shape[:-1]} or {pred_shape[:-1] + (1,)}"
        )
    if len(true_shape) == rank and true_shape[-1] not in (1, None):
        hint = (" masks must be sparse class indices, not one-hot; use argmax"
                if classes is not None and classes > 1 else "")
        raise ValueError(
            f"mask shape {true_shape} has {true_shape[-1]} channels; expected 1 for "
            f"output shape {pred_shape}.{hint}"
        )
    for axis, (t, p) in enumerate(zip(true_shape[1:rank - 1], pred_shape[1:rank - 1]), 1):
        if t is not None and p is not None and t != p:
            raise ValueError(
                f"mask spatial shape {true_shape[1:rank - 1]} differs from the output's "
                f"{pred_shape[1:rank - 1]} (axis {axis}); for a valid-padding model crop "
                f"the masks (and weights) to the output size"
            )
    if classes is None:
        raise ValueError(f"y_pred's class axis must be known; got shape {pred_shape}")
    if classes == 1 and _is_integer(y_true.dtype):
        # Class indices 0..3 would be clipped to {0, 1} and train a binary model without
        # a word: the package's one rule is integer masks = class indices.
        raise ValueError(
            f"the model has one sigmoid output (binary) but the masks are integers "
            f"({_dtype_name(y_true.dtype)}), which the package reads as class indices: build "
            f"it with n_classes=<the number of classes>, or give binary masks as float 0/1 "
            f"(masks.astype('float32'))")


def _dtype_name(dtype):
    return getattr(dtype, "name", None) or str(dtype).rsplit(".", 1)[-1]


def _is_integer(dtype):
    """True for int8..int64 and uint8..uint64 of every backend (not bool)."""
    return _dtype_name(dtype).startswith(("int", "uint"))


def prepare(y_true, y_pred, from_logits=False):
    """Bring a mask and a U-Net output to a common form.

    Returns ``(truth, probabilities, valid)``: ``truth`` and ``probabilities`` of
    shape ``(N, H, W, C)`` (one-hot truth for multi-class, all zero for an ignored
    label), and ``valid`` of shape ``(N, H, W, 1)``, 0 where a multi-class label lies
    outside ``[0, C)``: losses multiply it into their pixel weights.

    Example:
        >>> import numpy as np
        >>> t, p, valid = prepare(np.array([[[0, 2]]]), np.full((1, 1, 2, 3), 1 / 3))
        >>> tuple(t.shape), float(ops.sum(t))
        ((1, 1, 2, 3), 2.0)
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    _static_checks(y_true, y_pred)
    classes = y_pred.shape[-1]
    if len(y_true.shape) == len(y_pred.shape):
        y_true = ops.squeeze(y_true, axis=-1)
    dtype = y_pred.dtype if "float" in str(y_pred.dtype) else "float32"
    y_pred = ops.cast(y_pred, dtype)
    if classes == 1:
        probabilities = ops.sigmoid(y_pred) if from_logits else y_pred
        truth = ops.clip(ops.expand_dims(ops.cast(y_true, dtype), -1), 0.0, 1.0)
        valid = ops.ones_like(truth)
    else:
        probabilities = ops.softmax(y_pred, axis=-1) if from_logits else y_pred
        labels = ops.cast(y_true, "int32")
        inside = (labels >= 0) & (labels < classes)
        valid = ops.expand_dims(ops.cast(inside, dtype), -1)
        # out-of-range labels: all zero (one_hot alone would fail on PyTorch for 255 and
        # make -1 class 0 there)
        truth = ops.one_hot(ops.where(inside, labels, 0), classes, dtype=dtype) * valid
    return truth, probabilities, valid


def _split_weights(sample_weight, rank, dtype):
    """(per-pixel weights (N, H, W, 1) or None, per-image weights (N,) or None)."""
    if sample_weight is None:
        return None, None
    weight = ops.cast(ops.convert_to_tensor(sample_weight), dtype)
    if len(weight.shape) <= 1:
        return None, weight
    if len(weight.shape) == rank - 1:
        weight = ops.expand_dims(weight, -1)
    if len(weight.shape) != rank or weight.shape[-1] not in (1, None):
        raise ValueError(
            f"sample_weight of shape {tuple(weight.shape)} is neither per image (N,) nor "
            f"per pixel (N, H, W) or (N, H, W, 1)"
        )
    return weight, None


# ------------------------------------------------------------------- base class


class SegmentationLoss(keras.losses.Loss):
    """Base of the package's losses: prepares masks and outputs (see the module
    docstring), folds per-pixel ``sample_weight`` into :meth:`per_image`, and reduces
    the per-image losses like any Keras loss. Subclasses implement ``per_image``."""

    def __init__(self, from_logits=False, reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = from_logits

    def per_image(self, truth, probabilities, weights, counted):
        """Loss per image, shape (N,), from (N, H, W, C) truth and probabilities,
        (N, H, W, 1) pixel weights (zero where a label is ignored) and the (N, H, W, 1)
        mask ``counted`` (1 where a label counts, 0 where it is ignored); pixel losses
        average with :func:`mean_over_counted`."""
        raise NotImplementedError

    def call(self, y_true, y_pred):
        truth, probabilities, valid = prepare(y_true, y_pred, self.from_logits)
        return self.per_image(truth, probabilities, valid, valid)

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            truth, probabilities, valid = prepare(y_true, y_pred, self.from_logits)
            pixel, image = _split_weights(sample_weight, len(truth.shape), truth.dtype)
            weights = valid if pixel is None else valid * pixel
            losses = self.per_image(truth, probabilities, weights, valid)
            # Keras's own reduction: the same semantics as every Keras loss, including
            # the per-replica scaling under tf.distribute.
            return reduce_weighted_values(losses, sample_weight=image,
                                          reduction=self.reduction, dtype=self.dtype)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


# ----------------------------------------------------------------- region losses


def tversky_index(truth, probabilities, weights, alpha, beta, smooth=1.0):
    """Soft Tversky index per image and class, shape (N, C):
    ``(TP + smooth) / (TP + alpha FP + beta FN + smooth)`` with weighted soft counts.
    ``alpha = beta = 0.5`` is the Dice coefficient, ``alpha = beta = 1`` the Jaccard
    index (IoU). A class absent from both truth and prediction scores 1, also with
    ``smooth=0``."""
    axes = tuple(range(1, len(truth.shape) - 1))
    tp = ops.sum(weights * truth * probabilities, axis=axes)
    fp = ops.sum(weights * (1 - truth) * probabilities, axis=axes)
    fn = ops.sum(weights * truth * (1 - probabilities), axis=axes)
    denominator = tp + alpha * fp + beta * fn + smooth
    # nothing to find and nothing found (possible with smooth=0): a perfect score, not 0/0
    # (a NaN prediction still gives NaN: `NaN == 0` is false)
    empty = denominator == 0
    safe = ops.where(empty, ops.ones_like(denominator), denominator)
    return ops.where(empty, ops.ones_like(denominator), (tp + smooth) / safe)


@_register
class TverskyLoss(SegmentationLoss):
    """1 - the soft Tversky index (Salehi et al. 2017), averaged over classes, raised
    to ``gamma``. ``alpha`` weighs false positives, ``beta`` false negatives
    (``beta > alpha`` favours recall: thin vessels, small tumours). This is the
    paper's convention; ``keras.losses.Tversky`` applies its ``alpha`` to the false
    negatives, so ``TverskyLoss(a, b)`` equals ``keras.losses.Tversky(alpha=b, beta=a)``
    (for one image, ``smooth=0``).

    Args:
        alpha, beta: weights of false positives and false negatives.
        gamma: exponent of the loss; ``gamma < 1`` is the focal Tversky loss.
        smooth: added to numerator and denominator; makes empty masks well defined.
        class_weights: weights of the classes in the mean (default: equal); for a
            binary output there is one class, the foreground.
        from_logits: ``y_pred`` are logits rather than probabilities.

    Example:
        >>> import numpy as np
        >>> loss = TverskyLoss(alpha=0.3, beta=0.7)
        >>> truth, prediction = np.ones((1, 4, 4, 1)), np.full((1, 4, 4, 1), 0.5)
        >>> round(float(loss(truth, prediction)), 4)   # 1 - (8 + 1) / (8 + 0.7 * 8 + 1)
        0.3836
    """

    def __init__(self, alpha=0.3, beta=0.7, gamma=1.0, smooth=1.0, class_weights=None,
                 from_logits=False, reduction="sum_over_batch_size", name="tversky_loss",
                 dtype=None):
        super().__init__(from_logits=from_logits, reduction=reduction, name=name, dtype=dtype)
        for argument, value in (("alpha", alpha), ("beta", beta), ("smooth", smooth)):
            if value < 0:
                raise ValueError(f"{argument} must be >= 0; got {value!r}")
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0; got {gamma!r}")
        self.alpha, self.beta, self.gamma, self.smooth = alpha, beta, gamma, smooth
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]

    # Dice's smoothing is written (2 TP + s) / (2 TP + FP + FN + s): half of it in
    # the Tversky form with alpha = beta = 0.5.
    _smooth_factor = 1.0

    def per_image(self, truth, probabilities, weights, counted):
        index = tversky_index(truth, probabilities, weights, self.alpha, self.beta,
                              self.smooth * self._smooth_factor)
        if self.class_weights is None:
            mean = ops.mean(index, axis=-1)
        else:
            if len(self.class_weights) != truth.shape[-1]:
                raise ValueError(
                    f"class_weights has {len(self.class_weights)} entries for "
                    f"{truth.shape[-1]} output classes"
                )
            w = ops.convert_to_tensor(self.class_weights, index.dtype)
            mean = ops.sum(index * w, axis=-1) / ops.sum(w)
        loss = ops.maximum(1.0 - mean, 0.0)
        return loss if self.gamma == 1 else loss**self.gamma

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta,
                "gamma": self.gamma, "smooth": self.smooth, "class_weights": self.class_weights}


@_register
class DiceLoss(TverskyLoss):
    """1 - the soft Dice coefficient ``(2|T.P| + smooth) / (|T| + |P| + smooth)``,
    per image, averaged over classes (weighted by ``class_weights``).

    Example:
        >>> import numpy as np
        >>> truth = np.array([[[1, 1], [0, 0]]], "float32")[..., None]
        >>> prediction = np.array([[[1, 0], [0, 0]]], "float32")[..., None]
        >>> round(float(DiceLoss(smooth=0)(truth, prediction)), 4)   # 1 - 2*1 / (2 + 1)
        0.3333
    """

    _smooth_factor = 0.5

    def __init__(self, smooth=1.0, class_weights=None, from_logits=False,
                 reduction="sum_over_batch_size", name="dice_loss", dtype=None):
        super().__init__(0.5, 0.5, 1.0, smooth, class_weights, from_logits, reduction, name, dtype)

    def get_config(self):
        config = super().get_config()
        for key in ("alpha", "beta", "gamma"):
            config.pop(key)
        return config


@_register
class JaccardLoss(DiceLoss):
    """1 - the soft Jaccard index (IoU) ``(|T.P| + smooth) / (|T| + |P| - |T.P| + smooth)``,
    per image, averaged over classes.

    Example:
        >>> import numpy as np
        >>> truth = np.array([[[1, 1], [0, 0]]], "float32")[..., None]
        >>> prediction = np.array([[[1, 0], [0, 0]]], "float32")[..., None]
        >>> float(JaccardLoss(smooth=0)(truth, prediction))   # 1 - 1 / 2
        0.5
    """

    _smooth_factor = 1.0

    def __init__(self, smooth=1.0, class_weights=None, from_logits=False,
                 reduction="sum_over_batch_size", name="jaccard_loss", dtype=None):
        super().__init__(smooth, class_weights, from_logits, reduction, name, dtype)
        self.alpha = self.beta = 1.0


@_register
class FocalTverskyLoss(TverskyLoss):
    """The focal Tversky loss (Abraham and Khan 2019): ``(1 - Tversky index) ** gamma``
    with ``gamma = 0.75`` by default, which leans on the hard images and classes."""

    def __init__(self, alpha=0.3, beta=0.7, gamma=0.75, smooth=1.0, class_weights=None,
                 from_logits=False, reduction="sum_over_batch_size",
                 name="focal_tversky_loss", dtype=None):
        super().__init__(alpha, beta, gamma, smooth, class_weights, from_logits, reduction,
                         name, dtype)


# ------------------------------------------------------------------ pixel losses


def pixel_cross_entropy(truth, probabilities):
    """Per-pixel cross-entropy, shape (N, H, W): binary for one channel, categorical
    over the (one-hot) truth for several."""
    if truth.shape[-1] == 1:
        return keras.losses.binary_crossentropy(truth, probabilities)
    return keras.losses.categorical_crossentropy(truth, probabilities)


_POOLED = ("sum_over_batch_size", "mean", "mean_with_sample_weight")


def mean_over_counted(pixel_losses, weights, counted, reduction="sum_over_batch_size"):
    """Per-image values, shape (N,), of a pixel loss averaged over the counted pixels:
    the package's one rule for ignored labels (see the module docstring).

    ``pixel_losses`` is (N, H, W), ``weights`` and ``counted`` are (N, H, W, 1): the
    pixel weights (zero where a label is ignored) and 1 where a label counts. Each
    image's weighted sum is divided by a pixel count, as Keras does (the weights are
    not normalised): for the reductions that average over the batch
    (``"sum_over_batch_size"``, ``"mean"``) by the mean count of counted pixels per
    image, so that the batch mean of the values is the mean over all counted pixels of
    the batch (Keras's ``ignore_class``); for ``"mean_with_sample_weight"`` by the mean
    summed weight per image; otherwise (``"none"``, ``"sum"``) by the image's own count.
    An image (or batch) without a counted pixel gives 0.

    Example:
        >>> import numpy as np
        >>> losses = np.array([[[1.0, 3.0]], [[2.0, 5.0]]])     # 2 images of 1x2 pixels
        >>> counted = np.array([[[1, 1]], [[1, 0]]], "float32")[..., None]
        >>> [round(float(v), 4) for v in mean_over_counted(losses, counted, counted)]
        [2.6667, 1.3333]
        >>> [float(v) for v in mean_over_counted(losses, counted, counted, "none")]
        [2.0, 2.0]
    """
    pixel_losses = ops.convert_to_tensor(pixel_losses)
    dtype = pixel_losses.dtype
    weights = ops.squeeze(ops.cast(ops.convert_to_tensor(weights), dtype), -1)
    counted = ops.squeeze(ops.cast(ops.convert_to_tensor(counted), dtype), -1)
    axes = tuple(range(1, len(pixel_losses.shape)))
    sums = ops.sum(pixel_losses * weights, axis=axes)
    counts = ops.sum(weights if reduction == "mean_with_sample_weight" else counted, axis=axes)
    if reduction in _POOLED:
        counts = ops.mean(counts) * ops.ones_like(counts)
    empty = counts == 0
    return ops.where(empty, ops.zeros_like(sums),
                     sums / ops.where(empty, ops.ones_like(counts), counts))


@_register
class FocalLoss(SegmentationLoss):
    """Focal loss (Lin et al. 2017): cross-entropy scaled by ``(1 - p_t) ** gamma``,
    which quiets the easy pixels. Keras's ``binary_focal_crossentropy`` for one
    channel and ``categorical_focal_crossentropy`` on the one-hot mask for several,
    averaged over the counted pixels (see :func:`mean_over_counted`).

    Args:
        gamma: focusing exponent (0 is plain cross-entropy).
        alpha: weight of the foreground (binary, with ``alpha`` for class 1 and
            ``1 - alpha`` for class 0 when ``apply_class_balancing``) or of every class
            (multi-class); ``None`` for no weighting.

    Example:
        >>> import numpy as np
        >>> truth, prediction = np.ones((1, 2, 2, 1)), np.full((1, 2, 2, 1), 0.9)
        >>> round(float(FocalLoss(gamma=2.0, alpha=None)(truth, prediction)), 6)  # 0.1**2 * -ln 0.9
        0.001054
    """

    def __init__(self, gamma=2.0, alpha=0.25, from_logits=False,
                 reduction="sum_over_batch_size", name="focal_loss", dtype=None):
        super().__init__(from_logits=from_logits, reduction=reduction, name=name, dtype=dtype)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0; got {gamma!r}")
        self.gamma, self.alpha = gamma, alpha

    def per_image(self, truth, probabilities, weights, counted):
        if truth.shape[-1] == 1:
            pixels = keras.losses.binary_focal_crossentropy(
                truth, probabilities, apply_class_balancing=self.alpha is not None,
                alpha=0.25 if self.alpha is None else self.alpha, gamma=self.gamma)
        else:
            pixels = keras.losses.categorical_focal_crossentropy(
                truth, probabilities, alpha=1.0 if self.alpha is None else self.alpha,
                gamma=self.gamma)
        return mean_over_counted(pixels, weights, counted, self.reduction)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}


@_register
class DiceCELoss(SegmentationLoss):
    """Cross-entropy + Dice, the combination nnU-Net and MONAI train with:
    ``ce_weight * CE + dice_weight * (1 - Dice)``. The cross-entropy term is pixel-wise
    (weighted by the weight map and averaged over the counted pixels exactly as
    Keras's cross-entropy with ``ignore_class``), the Dice term is the soft Dice of
    :class:`DiceLoss` with the same pixel weights. ``DiceCELoss(dice_weight=0)`` is
    the plain cross-entropy.

    Example:
        >>> import numpy as np
        >>> truth, prediction = np.ones((1, 2, 2, 1)), np.full((1, 2, 2, 1), 0.9)
        >>> round(float(DiceCELoss(smooth=0)(truth, prediction)), 4)   # -ln 0.9 + 1 - 7.2/7.6
        0.158
    """

    def __init__(self, ce_weight=1.0, dice_weight=1.0, smooth=1.0, class_weights=None,
                 from_logits=False, reduction="sum_over_batch_size", name="dice_ce_loss",
                 dtype=None):
        super().__init__(from_logits=from_logits, reduction=reduction, name=name, dtype=dtype)
        self.ce_weight, self.dice_weight = ce_weight, dice_weight
        self.dice = DiceLoss(smooth, class_weights)

    def per_image(self, truth, probabilities, weights, counted):
        ce = mean_over_counted(pixel_cross_entropy(truth, probabilities), weights, counted,
                               self.reduction)
        return self.ce_weight * ce + self.dice_weight * self.dice.per_image(
            truth, probabilities, weights, counted)

    def get_config(self):
        return {**super().get_config(), "ce_weight": self.ce_weight,
                "dice_weight": self.dice_weight, "smooth": self.dice.smooth,
                "class_weights": self.dice.class_weights}
