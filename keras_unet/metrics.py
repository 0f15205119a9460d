"""Keras metrics for training U-Nets: Dice per class and mean, IoU, pixel error.

Masks and outputs follow :mod:`keras_unet.losses`: binary outputs (one sigmoid channel)
are thresholded, multi-class outputs (softmax) take the arg-max, and labels outside
``[0, n_classes)`` are ignored: they are left out of every count (and of
:class:`PixelError`'s denominator), as ``keras.metrics.IoU(ignore_class=255)`` leaves
them out, on every backend. All counts accumulate over every batch of an epoch, so a
metric is the score of the whole epoch's pixels, not a mean of per-batch scores.
``sample_weight`` may weight pixels ``(N, H, W)`` or images ``(N,)``.

Example:
    >>> from keras_unet import build_unet
    >>> from keras_unet.losses import DiceCELoss
    >>> model = build_unet((64, 64, 1), n_classes=3, filters=8)
    >>> model.compile("adam", DiceCELoss(),
    ...               metrics=[DiceCoefficient(3), iou(3), PixelError(3)])
"""

import keras
from keras import ops

from keras_unet.losses import prepare
from keras_unet.model import check_int

_register = keras.saving.register_keras_serializable(package="keras_unet")


class _HardPredictionMetric(keras.metrics.Metric):
    """Turns a batch into hard one-hot predictions and truth, (N, H, W, C), and
    pixel weights (N, H, W, 1); subclasses accumulate what they need."""

    def __init__(self, n_classes, threshold=0.5, from_logits=False, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        check_int(n_classes, "n_classes")
        self.n_classes, self.threshold, self.from_logits = n_classes, threshold, from_logits

    def _hard(self, y_true, y_pred, sample_weight):
        if y_pred.shape[-1] != self.n_classes:
            raise ValueError(
                f"{self.name} was made for {self.n_classes} classes but the output has "
                f"{y_pred.shape[-1]} channels (shape {tuple(y_pred.shape)})"
            )
        truth, probabilities, weights = prepare(y_true, y_pred, self.from_logits)
        truth, weights = ops.cast(truth, self.dtype), ops.cast(weights, self.dtype)
        if self.n_classes == 1:
            predicted = ops.cast(probabilities > self.threshold, self.dtype)
        else:
            predicted = ops.one_hot(ops.argmax(probabilities, axis=-1), self.n_classes,
                                    dtype=self.dtype)
        if sample_weight is not None:
            sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), self.dtype)
            while len(sample_weight.shape) < len(weights.shape):
                sample_weight = ops.expand_dims(sample_weight, -1)
            weights = weights * sample_weight
        return truth, predicted, weights

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes,
                "threshold": self.threshold, "from_logits": self.from_logits}


@_register
class DiceCoefficient(_HardPredictionMetric):
    """Dice coefficient ``2|T.P| / (|T| + |P|)`` of hard predictions, over the epoch.

    Args:
        n_classes: the model's output channels (1 for a binary sigmoid output, whose
            one class is the foreground).
        class_id: report this class's Dice; by default the mean over the classes that
            occur in the truth or the prediction (a class absent from both has no Dice
            and is left out; if every class is absent the result is 1).
        threshold: for binary outputs, the probability above which a pixel is
            foreground.
        from_logits: the outputs are logits.

    Example:
        >>> import numpy as np
        >>> metric = DiceCoefficient(1)
        >>> metric.update_state(np.array([[1.0, 1, 0, 0]])[..., None, None],  # binary: float 0/1
        ...                     np.array([[0.9, 0.2, 0.7, 0.1]])[..., None, None])
        >>> float(metric.result())   # 2 * 1 / (2 + 2)
        0.5
    """

    def __init__(self, n_classes, class_id=None, threshold=0.5, from_logits=False, name=None,
                 dtype=None):
        if class_id is not None and not 0 <= class_id < n_classes:
            raise ValueError(f"class_id must be in [0, {n_classes}); got {class_id!r}")
        name = name or ("dice" if class_id is None else f"dice_class{class_id}")
        super().__init__(n_classes, threshold, from_logits, name, dtype)
        self.class_id = class_id
        counts = dict(shape=(n_classes,), initializer="zeros", dtype=self.dtype)
        self.intersection = self.add_variable(name="intersection", **counts)
        self.total = self.add_variable(name="total", **counts)  # |T| + |P|

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth, predicted, weights = self._hard(y_true, y_pred, sample_weight)
        axes = tuple(range(len(truth.shape) - 1))
        self.intersection.assign_add(ops.sum(weights * truth * predicted, axis=axes))
        self.total.assign_add(ops.sum(weights * (truth + predicted), axis=axes))

    def result(self):
        total = ops.convert_to_tensor(self.total)
        present = total > 0
        dice = 2 * ops.convert_to_tensor(self.intersection) / ops.where(present, total, 1.0)
        if self.class_id is not None:
            return ops.where(present[self.class_id], dice[self.class_id], 1.0)
        n_present = ops.sum(ops.cast(present, self.dtype))
        mean = ops.sum(ops.where(present, dice, 0.0)) / ops.maximum(n_present, 1.0)
        return ops.where(n_present > 0, mean, 1.0)

    def reset_state(self):
        for variable in (self.intersection, self.total):
            variable.assign(ops.zeros(variable.shape, variable.dtype))

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id}


@_register
class PixelError(_HardPredictionMetric):
    """Fraction of (weighted) pixels whose hard prediction differs from the truth,
    over the epoch: 1 - pixel accuracy.

    Example:
        >>> import numpy as np
        >>> metric = PixelError(1)
        >>> metric.update_state(np.array([[1.0, 1, 0, 0]])[..., None, None],  # binary: float 0/1
        ...                     np.array([[0.9, 0.2, 0.7, 0.1]])[..., None, None])
        >>> float(metric.result())
        0.5
    """

    def __init__(self, n_classes, threshold=0.5, from_logits=False, name="pixel_error",
                 dtype=None):
        super().__init__(n_classes, threshold, from_logits, name, dtype)
        self.errors = self.add_variable(shape=(), initializer="zeros", name="errors",
                                        dtype=self.dtype)
        self.count = self.add_variable(shape=(), initializer="zeros", name="count",
                                       dtype=self.dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth, predicted, weights = self._hard(y_true, y_pred, sample_weight)
        if self.n_classes == 1:
            wrong = ops.abs(truth - predicted)
        else:
            wrong = 1 - ops.sum(truth * predicted, axis=-1, keepdims=True)
        self.errors.assign_add(ops.sum(weights * wrong))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return self.errors / ops.maximum(self.count, 1e-12)

    def reset_state(self):
        self.errors.assign(0.0)
        self.count.assign(0.0)


def iou(n_classes, class_id=None, threshold=0.5, ignore_class=None, name=None):
    """Intersection over union, as one of Keras's own IoU metrics configured for a
    U-Net output (so it needs nothing from this package to load again).

    * ``n_classes=1``: ``keras.metrics.BinaryIoU`` of the foreground at ``threshold``
      (use ``threshold=0`` for logits);
    * ``n_classes >= 2``: ``keras.metrics.IoU`` on sparse masks and the softmax's
      arg-max, averaged over all classes or for ``class_id`` alone. Classes absent from
      truth and prediction are left out of the mean. Set ``ignore_class`` (say 255) if
      masks carry an "unlabelled" value: Keras's IoU fails on labels outside the classes.

    The confusion matrix is float32 (Keras's default is an integer one, which truncates
    a float weight map passed as ``sample_weight``: weight 0.7 would count as 0).

    Example:
        >>> metric = iou(3)
        >>> type(metric).__name__, metric.name
        ('IoU', 'mean_iou')
    """
    check_int(n_classes, "n_classes")
    if n_classes == 1:
        return keras.metrics.BinaryIoU(target_class_ids=[1], threshold=threshold,
                                       name=name or "iou", dtype="float32")
    if class_id is not None and not 0 <= class_id < n_classes:
        raise ValueError(f"class_id must be in [0, {n_classes}); got {class_id!r}")
    ids = list(range(n_classes)) if class_id is None else [class_id]
    return keras.metrics.IoU(
        num_classes=n_classes, target_class_ids=ids, sparse_y_true=True, sparse_y_pred=False,
        ignore_class=ignore_class, dtype="float32",
        name=name or ("mean_iou" if class_id is None else f"iou_class{class_id}"),
    )
