"""Training helpers: compile a U-Net for its data, mixed precision, devices.

Plain ``model.fit`` stays the way to train; these only save the boilerplate.

Mixed precision
    :func:`set_mixed_precision` picks ``mixed_float16`` when a GPU is visible and
    ``mixed_bfloat16`` otherwise (CPUs with bf16 instructions, TPUs). Call it *before*
    :func:`keras_unet.build_unet`. The model's last layer stays float32, and under
    ``mixed_float16`` ``model.compile`` wraps the optimizer in Keras's
    ``LossScaleOptimizer`` (dynamic loss scaling) by itself.

XLA
    ``model.compile(jit_compile="auto")``, Keras's default and :func:`compile_unet`'s,
    compiles the train step with XLA on the TensorFlow and JAX backends where the model
    allows. Pass ``jit_compile=False`` to debug.

Several devices
    The data pipeline is TensorFlow, and so is the simplest multi-device path: build and
    compile inside a ``tf.distribute`` strategy's scope, then fit as usual; Keras splits
    each global batch across the replicas::

        strategy = tf.distribute.MirroredStrategy()          # all GPUs of this machine
        with strategy.scope():
            model = build_unet((None, None, 1), 2)
            compile_unet(model)
        model.fit(dataset, epochs=50)                         # dataset: global batches

    * several machines: ``tf.distribute.MultiWorkerMirroredStrategy()``, with each
      worker's ``TF_CONFIG`` environment variable naming the cluster and its own index;
      run the same script on every worker and shard the dataset per worker
      (``tf.data.Options().experimental_distribute.auto_shard_policy``).
    * TPU: ``resolver = tf.distribute.cluster_resolver.TPUClusterResolver()``,
      ``tf.config.experimental_connect_to_cluster(resolver)``,
      ``tf.tpu.experimental.initialize_tpu_system(resolver)``, then
      ``tf.distribute.TPUStrategy(resolver)`` as above, with
      ``set_mixed_precision()`` (bfloat16) and fixed-size tiles (``drop_remainder=True``).
    * JAX backend: ``keras.distribution.set_distribution(keras.distribution.DataParallel())``
      before building the model.

    ``tests/test_training.py`` checks that one step under MirroredStrategy on two
    (logical) devices gives the same weights as on one.
"""

import numbers

import keras

from keras_unet import losses as losses_module
from keras_unet.metrics import DiceCoefficient, PixelError, iou

LOSSES = {
    "dice_ce": losses_module.DiceCELoss,
    "dice": losses_module.DiceLoss,
    "jaccard": losses_module.JaccardLoss,
    "tversky": losses_module.TverskyLoss,
    "focal_tversky": losses_module.FocalTverskyLoss,
    "focal": losses_module.FocalLoss,
    "cross_entropy": lambda from_logits: losses_module.DiceCELoss(
        dice_weight=0.0, from_logits=from_logits, name="cross_entropy"),
}


def available_devices():
    """Names of the devices the active Keras backend computes on, e.g. ``["CPU:0"]``.

    Example:
        >>> "CPU:0" in available_devices()
        True
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name.replace("/physical_device:", "") for d in tf.config.list_physical_devices()]
    if backend == "jax":
        import jax

        return [f"{d.platform.upper()}:{d.id}" for d in jax.devices()]
    if backend == "torch":
        import torch

        return ["CPU:0"] + [f"GPU:{i}" for i in range(torch.cuda.device_count())]
    return [f"(devices of the {backend} backend are not listed)"]


def set_mixed_precision(enabled=True):
    """Set Keras's global dtype policy for mixed precision, and return its name.

    ``mixed_float16`` when a GPU is visible, ``mixed_bfloat16`` otherwise;
    ``enabled=False`` restores ``float32``. Call it before building the model.

    Example:
        >>> set_mixed_precision()   # on a CPU
        'mixed_bfloat16'
        >>> set_mixed_precision(False)
        'float32'
    """
    if not enabled:
        policy = "float32"
    elif any(d.startswith("GPU") for d in available_devices()):
        policy = "mixed_float16"
    else:
        policy = "mixed_bfloat16"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def _from_logits(model):
    activation = model.layers[-1].get_config().get("activation")
    return activation in ("linear", None)


def compile_unet(model, *, loss="dice_ce", optimizer="adam", learning_rate=1e-3,
                 metrics="auto", jit_compile="auto", **compile_kwargs):
    """Compile a U-Net with a loss and metrics that fit its output, and return it.

    Binary (one output channel, masks {0, 1}) or multi-class (sparse class indices) is
    read from the model's output; logits (``output_activation=None``) from its last
    layer.

    Args:
        model: a model from :func:`keras_unet.build_unet` (or any model whose output
            is ``(N, H, W, n_classes)``).
        loss: a name (``"dice_ce"`` — cross-entropy + Dice, the default; ``"dice"``,
            ``"jaccard"``, ``"tversky"``, ``"focal_tversky"``, ``"focal"``,
            ``"cross_entropy"``) or a Keras loss object, used as given.
        optimizer: a Keras optimizer name or object.
        learning_rate: with an optimizer name; a finite number > 0.
        metrics: ``"auto"`` for Dice (mean, and per class for multi-class), IoU and
            pixel error; or a list, used as given.
        jit_compile: passed to ``model.compile`` (XLA; ``"auto"`` is Keras's default).
        **compile_kwargs: anything else ``model.compile`` takes.

    Example:
        >>> from keras_unet import build_unet
        >>> model = compile_unet(build_unet((64, 64, 1), 3, filters=8))
        >>> model.loss.name, model.loss.from_logits
        ('dice_ce_loss', False)
    """
    number = isinstance(learning_rate, numbers.Real) and not isinstance(learning_rate, bool)
    if not number or not 0 < learning_rate < float("inf"):
        # a NaN or infinite rate trains every weight to NaN; 0 or less does not train
        raise ValueError(f"learning_rate must be a finite number > 0 (e.g. 1e-3); got "
                         f"{learning_rate!r}")
    learning_rate = float(learning_rate)  # NumPy's too (Keras takes Python floats only)
    n_classes = model.output_shape[-1]
    from_logits = _from_logits(model)
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)} or a Keras loss; got {loss!r}")
        loss = LOSSES[loss](from_logits=from_logits)
    if isinstance(optimizer, str):
        optimizer = keras.optimizers.get({"class_name": optimizer,
                                          "config": {"learning_rate": learning_rate}})
    if metrics == "auto":
        metrics = [DiceCoefficient(n_classes, from_logits=from_logits)]
        if n_classes > 1:
            metrics += [DiceCoefficient(n_classes, c, from_logits=from_logits)
                        for c in range(n_classes)]
        metrics += [iou(n_classes, threshold=0.0 if from_logits else 0.5),
                    PixelError(n_classes, from_logits=from_logits)]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile,
                  **compile_kwargs)
    return model
