"""Keras metrics for training U-Nets: Dice, IoU and pixel error, over each epoch's batches."""

import keras
from keras import ops

from keras_unet.checks import check_choice, check_int
from keras_unet.losses import prepare


class HardMetric(keras.metrics.Metric):
    """Base: weighted counts of hard predictions (a sigmoid above ``threshold``, a softmax's
    arg-max) on :func:`keras_unet.losses.prepare`'s masks: per class ``intersection`` |T.P|,
    ``total`` |T| + |P|; ``count``, the most |T| + |P| - 2|T.P| can be (one-hot: 2 a pixel)."""

    prefix, options = None, ("n_classes", "threshold", "from_logits")  # the default name, config

    def __init__(self, n_classes, threshold=0.5, from_logits=False, name=None, dtype=None):
        super().__init__(name=name or self.prefix, dtype=dtype)
        self.n_classes, self.threshold = check_int(n_classes, "n_classes"), threshold
        self.from_logits = from_logits
        for count, shape in zip(("intersection", "total", "count"), [(n_classes,)] * 2 + [()]):
            setattr(self, count, self.add_variable(shape, "zeros", self.dtype, name=count))

    def update_state(self, y_true, y_pred, sample_weight=None):
        if y_pred.shape[-1] != self.n_classes:
            raise ValueError(f"{self.name} was made for {self.n_classes} classes; the output has "
                             f"the shape {tuple(y_pred.shape)}")
        truth, probabilities, weights, mode = prepare(y_true, y_pred, self.from_logits)
        predicted = (ops.one_hot(ops.argmax(probabilities, axis=-1), self.n_classes)
                     if mode == "multiclass" else probabilities > self.threshold)
        truth, predicted, weights = (ops.cast(a, self.dtype) for a in (truth, predicted, weights))
        if sample_weight is not None:  # per pixel (N, H, W[, 1]) or per image (N,)
            w = ops.cast(ops.convert_to_tensor(sample_weight), self.dtype)
            weights = weights * ops.expand_dims(w, tuple(range(w.ndim, weights.ndim)))
        axes = tuple(range(len(truth.shape) - 1))
        self.intersection.assign_add(ops.sum(weights * truth * predicted, axis=axes))
        self.total.assign_add(ops.sum(weights * (truth + predicted), axis=axes))
        self.count.assign_add(ops.sum(weights) * (2 if mode == "multiclass" else self.n_classes))

    def get_config(self):
        return {**super().get_config(), **{key: getattr(self, key) for key in self.options}}


@keras.saving.register_keras_serializable("keras_unet")
class DiceCoefficient(HardMetric):
    """Dice ``2|T.P| / (|T| + |P|)`` of ``class_id``, or the mean over the classes present."""

    prefix, options = "dice", HardMetric.options + ("class_id",)

    def __init__(self, n_classes, class_id=None, threshold=0.5, from_logits=False, name=None,
                 dtype=None):
        self.class_id = check_choice(class_id, (None, *range(check_int(n_classes, "n_classes"))),
                                     "class_id")
        super().__init__(n_classes, threshold, from_logits, name or self.prefix + (
            "" if class_id is None else f"_class{class_id}"), dtype)

    def score(self, intersection, total):
        return 2 * intersection / total

    def result(self):
        total, intersection = (ops.convert_to_tensor(v) for v in (self.total, self.intersection))
        present = (total > 0) & (True if self.class_id is None else
                                 ops.arange(self.n_classes) == self.class_id)
        scores = ops.where(present, self.score(intersection, ops.where(present, total, 1)), 0.0)
        n_present = ops.sum(ops.cast(present, self.dtype))
        return ops.where(n_present > 0, ops.sum(scores) / ops.maximum(n_present, 1.0), 1.0)


@keras.saving.register_keras_serializable("keras_unet")
class JaccardIndex(DiceCoefficient):
    """IoU ``|T.P| / |T + P|``, as :class:`DiceCoefficient` (:func:`iou` for multilabel)."""

    prefix = "iou"

    def score(self, intersection, total):
        return intersection / (total - intersection)


@keras.saving.register_keras_serializable("keras_unet")
class PixelError(HardMetric):
    """Fraction of the weighted pixels (or labels) predicted wrong: 1 - pixel accuracy."""

    prefix = "pixel_error"

    def result(self):
        return ops.sum(self.total - 2 * self.intersection) / ops.maximum(self.count, 1e-12)


def iou(n_classes, class_id=None, threshold=0.5, ignore_class=None, name=None, multilabel=False):
    """IoU as Keras's own metric (float32 counts; loads without this package): ``BinaryIoU``
    at ``threshold`` for one channel (0 for logits), else ``IoU`` of the arg-max for
    ``class_id`` or the mean (``ignore_class``: e.g. 255); multilabel: :class:`JaccardIndex`."""
    if multilabel or check_int(n_classes, "n_classes") == 1:
        return JaccardIndex(n_classes, class_id, threshold, name=name) if multilabel else \
            keras.metrics.BinaryIoU([1], threshold, name=name or "iou", dtype="float32")
    check_choice(class_id, (None, *range(n_classes)), "class_id")
    return keras.metrics.IoU(
        n_classes, list(range(n_classes)) if class_id is None else [class_id], dtype="float32",
        name=name or ("mean_iou" if class_id is None else f"iou_class{class_id}"),
        ignore_class=ignore_class, sparse_y_true=True, sparse_y_pred=False)
