"""Segmentation losses for U-Net outputs, in ``keras.ops`` (every Keras backend).

Masks follow :func:`keras_unet.images.as_mask`, read against the output's C channels by
:func:`prepare`: binary (C = 1 sigmoid, float {0, 1}), multiclass (C >= 2 softmax, integer
class indices; labels outside ``[0, C)``, e.g. 255, are ignored), multilabel (C >= 2 sigmoids,
float {0, 1} ``(N, H, W, C)``). One loss value per image, reduced as Keras does; pixel losses
divide by the counted pixels (Keras's ``ignore_class``). ``sample_weight`` weights pixels
``(N, H, W[, 1])`` (:mod:`keras_unet.weights`) or images ``(N,)``. Saved models load back.
Volumes: the same with ``(N, D, H, W, C)`` outputs (masks ``(N, D, H, W[, C])``).
"""

import sys

import keras
import numpy as np
from keras import ops
from keras.src.losses.loss import reduce_weighted_values  # stable since Keras 3.0
from keras.src.utils.backend_utils import in_tf_graph

from keras_unet import images
from keras_unet.checks import check_number

_register = keras.saving.register_keras_serializable(package="keras_unet")


def mask_mode(y_true, y_pred):
    """``"binary"``, ``"multiclass"`` or ``"multilabel"`` (float or bool with as many channels
    as the output, > 1): the convention of ``y_true`` for ``y_pred`` by static shapes and
    dtypes. ValueError where they do not fit (integer masks for one sigmoid, not clipped)."""
    true, pred = tuple(y_true.shape), tuple(y_pred.shape)
    rank, classes = len(pred), pred[-1] if pred else None
    dtype = keras.backend.standardize_dtype(y_true.dtype)
    if rank < 3 or classes is None:
        raise ValueError(f"y_pred must be (batch, height, width, classes); got shape {pred}")
    if len(true) not in (rank, rank - 1) or any(
            None not in (t, p) and t != p for t, p in zip(true[1:rank - 1], pred[1:rank - 1])):
        raise ValueError(f"mask shape {true} does not fit the output shape {pred}: expected "
                         f"{pred[:-1]} or {pred[:-1] + (1,)} (crop the masks of a "
                         f"valid-padding model to its output size)")
    channels = true[-1] if len(true) == rank else 1
    if channels not in (1, None) and ("int" in dtype or channels != classes or classes == 1):
        raise ValueError(f"mask shape {true} ({dtype}) has {channels} channels for the output "
                         f"shape {pred}; expected 1" + (f" (class indices: argmax a one-hot "
                         f"mask) or {classes} of float 0/1 (multilabel)" if classes > 1 else ""))
    if classes == 1 and "int" in dtype:
        raise ValueError(f"the model has one sigmoid output (binary) but the masks are integers "
                         f"({dtype}), which the package reads as class indices: build it with "
                         f"n_classes=<the number of classes>, or give binary masks as float 0/1 "
                         f"(masks.astype('float32'))")
    return "binary" if classes == 1 else "multilabel" if channels == classes else "multiclass"


def prepare(y_true, y_pred, from_logits=False):
    """A mask and a U-Net output in one form: ``(truth, probabilities, valid, mode)``.

    ``truth`` and ``probabilities``: ``(N, H, W, C)`` (one-hot for multiclass, zero where a
    label is ignored); ``valid``: ``(N, H, W, 1)``, 0 where ignored; ``mode``: as
    :func:`mask_mode`. ``from_logits``: softmax for multiclass, else sigmoid per channel. Mask
    values known now (not traced) are checked by :func:`keras_unet.images.as_mask`.

    >>> t, p, valid, mode = prepare(np.array([[[0, 2]]]), np.full((1, 1, 2, 3), 1 / 3))
    >>> tuple(t.shape), float(ops.sum(t)), mode
    ((1, 1, 2, 3), 2.0, 'multiclass')
    """
    jax = sys.modules.get("jax")
    traced = not isinstance(y_true, np.ndarray) and (keras.backend.is_keras_tensor(y_true) or (
        in_tf_graph() or jax is not None and isinstance(y_true, jax.core.Tracer)))
    values = None if traced else ops.convert_to_numpy(y_true)
    y_pred, y_true = ops.convert_to_tensor(y_pred), ops.convert_to_tensor(y_true)
    integer, classes = values is not None and values.dtype.kind in "iu", y_pred.shape[-1]
    mode = None if integer else mask_mode(y_true, y_pred)  # class indices: as_mask's verdict
    if values is not None:  # first; labels >= C are void (the largest)
        beyond = values[values >= classes] if integer and classes > 1 else ()
        ignore = int(np.max(beyond)) if len(beyond) else None
        images.as_mask(values, "y_true", mode, ignore_index=ignore, batch=True,
                       spatial_dims=3 if len(y_pred.shape) == 5 else 2)  # (N, D, H, W, C): 3D
    mode = mode or mask_mode(y_true, y_pred)
    dtype = y_pred.dtype if "float" in str(y_pred.dtype) else "float32"
    y_pred = ops.cast(y_pred, dtype)
    if len(y_true.shape) < len(y_pred.shape):
        y_true = ops.expand_dims(y_true, -1)
    if mode != "multiclass":
        truth = ops.clip(ops.cast(y_true, dtype), 0.0, 1.0)
        valid = ops.ones_like(truth[..., :1])
        return truth, ops.sigmoid(y_pred) if from_logits else y_pred, valid, mode
    labels = ops.cast(y_true, "int32")[..., 0]
    inside = (labels >= 0) & (labels < classes)
    valid = ops.expand_dims(ops.cast(inside, dtype), -1)
    # out-of-range labels: all zero (one_hot alone fails on PyTorch for 255)
    truth = ops.one_hot(ops.where(inside, labels, 0), classes, dtype=dtype) * valid
    return truth, ops.softmax(y_pred, axis=-1) if from_logits else y_pred, valid, mode


class SegmentationLoss(keras.losses.Loss):
    """Base of the losses: :func:`prepare`, pixel ``sample_weight`` folded into ``per_image(
    truth, probabilities, weights, counted, mode)`` (losses (N,); ``weights`` 0 where ignored,
    ``counted`` 1 where a label counts), Keras's reduction; ``options``: attributes, config."""

    def __init__(self, from_logits=False, reduction="sum_over_batch_size", name=None, dtype=None,
                 **options):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits, self.options = from_logits, tuple(options)
        vars(self).update(options)

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            truth, probabilities, valid, mode = prepare(y_true, y_pred, self.from_logits)
            weights, image = valid, sample_weight  # weights per pixel, or per image (N,)
            if sample_weight is not None and np.ndim(sample_weight) > 1:
                pixel = ops.cast(ops.convert_to_tensor(sample_weight), truth.dtype)
                pixel = ops.expand_dims(pixel, -1) if pixel.ndim == truth.ndim - 1 else pixel
                if pixel.ndim != truth.ndim or pixel.shape[-1] not in (1, None):
                    raise ValueError(f"sample_weight of shape {tuple(pixel.shape)} is neither "
                                     f"per image (N,) nor per pixel (N, H, W) or (N, H, W, 1)")
                weights, image = valid * pixel, None
            losses = self.per_image(truth, probabilities, weights, valid, mode)
            # Keras's own reduction (including the per-replica scaling of tf.distribute)
            return reduce_weighted_values(losses, sample_weight=image,
                                          reduction=self.reduction, dtype=self.dtype)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                **{key: getattr(self, key) for key in self.options}}


def tversky_index(truth, probabilities, weights, alpha, beta, smooth=1.0):
    """Soft Tversky index per image and class (N, C): ``(TP + s) / (TP + alpha FP + beta FN
    + s)``; alpha = beta = 0.5 is Dice, 1 is Jaccard. A class absent from both scores 1."""
    axes = tuple(range(1, len(truth.shape) - 1))
    tp = ops.sum(weights * truth * probabilities, axis=axes)
    fp = ops.sum(weights * (1 - truth) * probabilities, axis=axes)
    fn = ops.sum(weights * truth * (1 - probabilities), axis=axes)
    denominator = tp + alpha * fp + beta * fn + smooth
    empty = denominator == 0  # nothing to find, nothing found: 1, not 0/0 (NaN stays NaN)
    return ops.where(empty, 1.0, (tp + smooth) / ops.where(empty, 1.0, denominator))


class RegionLoss(SegmentationLoss):
    """1 - :func:`tversky_index` per image, averaged over the classes (or labels) with
    ``class_weights`` (default: equal), to the power ``gamma``: the base of the Dice, Jaccard
    and Tversky losses. ``smooth`` (>= 0) makes empty masks well defined (loss 0)."""

    alpha = beta = smooth_factor = 0.5  # Dice, whose smoothing is (2 TP + s) / (... + s)
    gamma = 1.0

    def __init__(self, smooth=1.0, class_weights=None, from_logits=False, **options):
        super().__init__(from_logits, smooth=check_number(smooth, "smooth", 0), class_weights=(
            None if class_weights is None else [float(w) for w in class_weights]), **options)

    def per_image(self, truth, probabilities, weights, counted, mode):
        index = tversky_index(truth, probabilities, weights, self.alpha, self.beta,
                              self.smooth * self.smooth_factor)
        w = [1.0] * truth.shape[-1] if self.class_weights is None else self.class_weights
        if len(w) != truth.shape[-1]:
            raise ValueError(f"class_weights has {len(w)} entries for {truth.shape[-1]} "
                             f"output classes")
        w = ops.convert_to_tensor(w, index.dtype)
        loss = ops.maximum(1.0 - ops.sum(index * w, axis=-1) / ops.sum(w), 0.0)
        return loss if self.gamma == 1 else loss**self.gamma


@_register
class DiceLoss(RegionLoss):
    """1 - the soft Dice coefficient ``(2|T.P| + smooth) / (|T| + |P| + smooth)``."""


@_register
class JaccardLoss(RegionLoss):
    """1 - the soft Jaccard index (IoU) ``(|T.P| + smooth) / (|T| + |P| - |T.P| + smooth)``."""

    alpha = beta = smooth_factor = 1.0


@_register
class TverskyLoss(RegionLoss):
    """1 - the soft Tversky index (Salehi et al. 2017) to the power ``gamma`` (> 0, None: 1;
    < 1 is the focal Tversky loss). ``alpha`` and ``beta`` (>= 0) weigh false positives and
    false negatives (``beta > alpha`` favours recall); ``keras.losses.Tversky`` swaps them."""

    smooth_factor = 1.0

    def __init__(self, alpha=0.3, beta=0.7, gamma=None, smooth=1.0, class_weights=None,
                 from_logits=False, **options):
        gamma = check_number(self.gamma if gamma is None else gamma, "gamma", 0, open_low=True)
        super().__init__(smooth, class_weights, from_logits, alpha=check_number(
            alpha, "alpha", 0), beta=check_number(beta, "beta", 0), gamma=gamma, **options)


@_register
class FocalTverskyLoss(TverskyLoss):
    """The focal Tversky loss (Abraham and Khan 2019): :class:`TverskyLoss` with ``gamma``
    0.75 by default, which leans on the hard images and classes."""

    gamma = 0.75


def mean_over_counted(pixel_losses, weights, counted, reduction="sum_over_batch_size"):
    """Per-image values (N,) of a pixel loss (N, H, W): its sum weighted by ``weights`` (N, H,
    W, 1) over the mean count of ``counted`` pixels per image (Keras's ``ignore_class`` mean),
    the mean summed weight (``mean_with_sample_weight``) or its own count (``none``, ``sum``)."""
    pixel_losses = ops.convert_to_tensor(pixel_losses)
    weights, counted = (ops.squeeze(ops.cast(ops.convert_to_tensor(a), pixel_losses.dtype), -1)
                        for a in (weights, counted))
    axes = tuple(range(1, len(pixel_losses.shape)))
    sums = ops.sum(pixel_losses * weights, axis=axes)
    counts = ops.sum(weights if reduction == "mean_with_sample_weight" else counted, axis=axes)
    if reduction in ("sum_over_batch_size", "mean", "mean_with_sample_weight"):
        counts = ops.mean(counts) * ops.ones_like(counts)
    return sums / ops.where(counts == 0, 1.0, counts)  # no counted pixel: the sum is 0


def focal_cross_entropy(truth, probabilities, mode, gamma=0.0, alpha=None):
    """Per-pixel focal cross-entropy (N, H, W) (gamma 0: cross-entropy): Keras's binary one
    averaged over the sigmoid channels, or the categorical one for ``mode="multiclass"``."""
    if gamma == 0 and alpha is None:  # not (1 - p)**0: its gradient is NaN where p = 1
        return (keras.losses.categorical_crossentropy if mode == "multiclass" else
                keras.losses.binary_crossentropy)(truth, probabilities)
    if mode == "multiclass":
        return keras.losses.categorical_focal_crossentropy(
            truth, probabilities, alpha=1.0 if alpha is None else alpha, gamma=gamma)
    return keras.losses.binary_focal_crossentropy(
        truth, probabilities, apply_class_balancing=alpha is not None,
        alpha=0.25 if alpha is None else alpha, gamma=gamma)


@_register
class FocalLoss(SegmentationLoss):
    """Focal loss (Lin et al. 2017), :func:`focal_cross_entropy` over the counted pixels:
    ``gamma`` (>= 0) focuses; ``alpha`` weighs the foreground (sigmoid: ``alpha`` for 1,
    ``1 - alpha`` for 0) or every class (multiclass); ``None``: no weighting."""

    def __init__(self, gamma=2.0, alpha=0.25, from_logits=False, **options):
        super().__init__(from_logits, gamma=check_number(gamma, "gamma", 0), alpha=alpha,
                         **options)

    def per_image(self, truth, probabilities, weights, counted, mode):
        return mean_over_counted(focal_cross_entropy(truth, probabilities, mode, self.gamma,
                                                     self.alpha), weights, counted, self.reduction)


@_register
class DiceCELoss(SegmentationLoss):
    """``ce_weight * cross-entropy + dice_weight * (1 - Dice)``, as nnU-Net and MONAI train:
    the pixel cross-entropy (binary per sigmoid channel, categorical for multiclass) averaged
    over the counted pixels, plus :class:`DiceLoss`; ``dice_weight=0`` is cross-entropy."""

    def __init__(self, ce_weight=1.0, dice_weight=1.0, smooth=1.0, class_weights=None,
                 from_logits=False, **options):
        self.dice = DiceLoss(smooth, class_weights)
        super().__init__(from_logits, ce_weight=ce_weight, dice_weight=dice_weight,
                         smooth=self.dice.smooth, class_weights=self.dice.class_weights, **options)

    def per_image(self, truth, probabilities, weights, counted, mode):
        ce = mean_over_counted(focal_cross_entropy(truth, probabilities, mode), weights,
                               counted, self.reduction)
        return self.ce_weight * ce + self.dice_weight * self.dice.per_image(
            truth, probabilities, weights, counted, mode)
