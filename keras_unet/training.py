"""Training: :func:`compile_unet` for plain ``model.fit``, mixed precision, devices (and
several of them: docs/multi_gpu.md), and :func:`train`, the recipe of ``keras-unet train``."""

import contextlib
import csv
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from keras_unet.checks import check_choice, check_number, fail
from keras_unet.tutorial import fast_mode


def _loss(class_name, **fixed):
    """A maker of ``keras_unet.losses.<class_name>`` that imports Keras only when called."""
    def make(**options):
        from keras_unet import losses

        return getattr(losses, class_name)(**fixed, **options)

    return make


#: The tile of :func:`train` for volumes (slices, rows, columns), where none is given.
DEFAULT_TILE_3D = (32, 128, 128)
#: The losses by name, each a maker ``LOSSES[name](from_logits=...)``.
LOSSES = {
    "dice_ce": _loss("DiceCELoss"), "dice": _loss("DiceLoss"), "jaccard": _loss("JaccardLoss"),
    "tversky": _loss("TverskyLoss"), "focal_tversky": _loss("FocalTverskyLoss"),
    "focal": _loss("FocalLoss"),
    "cross_entropy": _loss("DiceCELoss", dice_weight=0.0, name="cross_entropy"),
}


def available_devices():
    """Names of the devices the active Keras backend computes on, e.g. ``["CPU:0"]``.

    Example:
        >>> "CPU:0" in available_devices()
        True
    """
    import keras

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
    """Set (before building the model) and return Keras's global dtype policy:
    ``mixed_float16`` with a GPU, else ``mixed_bfloat16``; ``enabled=False``: ``float32``.

    Example:
        >>> set_mixed_precision()   # on a CPU
        'mixed_bfloat16'
        >>> set_mixed_precision(False)
        'float32'
    """
    import keras

    gpu = enabled and any(d.startswith("GPU") for d in available_devices())
    policy = "mixed_float16" if gpu else "mixed_bfloat16" if enabled else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def data_parallel(distribution="auto"):
    """``(distribution, devices, processes, process)``: what :func:`train` trains on, as
    ``distribution`` says. ``"auto"``: every device. On JAX, ``keras.distribution.DataParallel``
    over the devices of every process, which first join by ``keras.distribution.initialize``
    where ``KERAS_DISTRIBUTION_NUM_PROCESSES`` > 1 (``KERAS_DISTRIBUTION_JOB_ADDRESSES``: the
    first process's host:port; ``KERAS_DISTRIBUTION_PROCESS_ID``: 0, 1, ...); on TensorFlow,
    ``tf.distribute.MirroredStrategy`` over this machine's GPUs; None (one device) where there
    is one. A ``keras.distribution.Distribution`` or a ``tf.distribute.Strategy``: as given.

    Example:
        >>> data_parallel(None)
        (None, 1, 1, 0)
    """
    import keras

    backend = keras.backend.backend()
    if distribution == "auto" and backend == "jax":
        import jax

        if int(os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", 1)) > 1 and not (
                jax.distributed.is_initialized()):
            keras.distribution.initialize()
        devices = keras.distribution.list_devices()
        distribution = (keras.distribution.DataParallel(devices=devices) if len(devices) > 1
                        else None)
    elif distribution == "auto" and backend == "tensorflow":
        import tensorflow as tf

        if len(json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {}).get(
                "worker", [])) > 1:  # keras-team/keras#20585
            raise ValueError(
                "TF_CONFIG names several workers, but tf.distribute.MultiWorkerMirroredStrategy "
                "does not train Keras 3 models (model.fit fails with 'Attempt to convert a value "
                "(PerReplica...)'): train on several machines on the JAX backend "
                "(KERAS_BACKEND=jax and the KERAS_DISTRIBUTION_* variables, docs/multi_gpu.md)")
        gpus = tf.config.list_logical_devices("GPU")
        distribution = tf.distribute.MirroredStrategy() if len(gpus) > 1 else None
    elif distribution == "auto":
        distribution = None
    if hasattr(distribution, "device_mesh"):  # keras.distribution's (JAX)
        import jax

        distribution.auto_shard_dataset = False  # train() gives each process its share
        return distribution, distribution.device_mesh.devices.size, jax.process_count(), \
            jax.process_index()
    if distribution is not None and not hasattr(distribution, "num_replicas_in_sync"):
        fail("distribution", '"auto", None, a keras.distribution.Distribution or a '
             "tf.distribute.Strategy", distribution)
    return distribution, getattr(distribution, "num_replicas_in_sync", 1), 1, 0


def _agreed(value, processes):
    """Process 0's ``value`` (a bool or a float, as float32), on each of ``processes``."""
    if processes == 1:
        return value
    import numpy as np
    from jax.experimental import multihost_utils

    return type(value)(multihost_utils.broadcast_one_to_all(np.float32(value)))


def compile_unet(model, *, loss="dice_ce", optimizer="adam", learning_rate=1e-3,
                 metrics="auto", jit_compile="auto", **compile_kwargs):
    """Compile a U-Net with a loss and metrics that fit its output, and return it.

    Binary or multi-class (class indices) is read from the output shape, logits from the last
    layer. ``loss``: a name in :data:`LOSSES` or a Keras loss; ``optimizer``: a name (made with
    ``learning_rate``) or an optimizer; ``metrics``: ``"auto"`` (Dice, per class too, IoU,
    pixel error) or a list; the rest goes to ``model.compile``.

    Example:
        >>> from keras_unet import build_unet
        >>> model = compile_unet(build_unet((64, 64, 1), 3, filters=8))
        >>> type(model.loss).__name__, model.loss.from_logits
        ('DiceCELoss', False)
    """
    import keras

    from keras_unet.metrics import DiceCoefficient, PixelError, iou
    from keras_unet.model import unet_config

    learning_rate = check_number(learning_rate, "learning_rate", 0, open_low=True)
    n_classes = model.output_shape[-1]
    from_logits = model.layers[-1].get_config().get("activation") in ("linear", None)
    multilabel = False
    with contextlib.suppress(ValueError):  # a model build_unet did not make: no record
        multilabel = unet_config(model).get("multilabel", False)
    if isinstance(loss, str):  # else a Keras loss, used as given
        loss = LOSSES[check_choice(loss, tuple(LOSSES), "loss")](from_logits=from_logits)
    if isinstance(optimizer, str):
        optimizer = keras.optimizers.get({"class_name": optimizer,
                                          "config": {"learning_rate": learning_rate}})
    if metrics == "auto":
        classes = [None, *range(n_classes)] if n_classes > 1 else [None]  # None: the mean
        metrics = [DiceCoefficient(n_classes, c, from_logits=from_logits) for c in classes]
        metrics += [iou(n_classes, threshold=0.0 if from_logits else 0.5, multilabel=multilabel),
                    PixelError(n_classes, from_logits=from_logits)]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile,
                  **compile_kwargs)
    return model


# The words of a message for the recorded options that are no argument of train()
_RECORDED_AS = {"images": "images ", "channels": "image channels ", "n_classes": "classes ",
                "augment": "augmentation "}


def _resume(workdir, options, monitor):
    """Go on from the backup in ``workdir`` of a run with the same ``options`` (others are
    refused), or start afresh; record them. The lowest ``monitor`` logged (to beat), or inf."""
    import h5py

    from keras_unet.images import write_atomically

    backup, recorded, log = workdir / "backup", workdir / "options.json", workdir / "history.csv"
    latest = backup / "latest.weights.h5"
    try:  # a first backup torn while written (none before it): start again, not fail
        if latest.exists() and not latest.with_name(f"{latest.name}.bkp").exists():
            h5py.File(latest, "r").close()
    except OSError:
        print(f"the backup in {backup} was cut off while being written: starting again")
        shutil.rmtree(backup)
    left = backup.exists() or (workdir / "best.keras").exists()
    before = json.loads(recorded.read_text()) if left and recorded.exists() else options
    def said(value):
        return {True: "on", False: "off"}[value] if isinstance(value, bool) else value

    differ = [f"{_RECORDED_AS.get(k, k + '=')}{said(before.get(k))} then, {said(v)} now"
              for k, v in options.items() if before.get(k) != v]
    if differ:
        raise ValueError(f"the backup in {workdir} belongs to a run with other options "
                         f"({'; '.join(differ)}): give the same options to resume it, another "
                         f"workdir, or delete {workdir} to start again")
    if not left:  # a fresh run: an earlier run's log would mix with this one's
        log.unlink(missing_ok=True)
    text = json.dumps(options, indent=1, sort_keys=True) + "\n"
    write_atomically(recorded, lambda file: file.write(text.encode()))
    with contextlib.suppress(OSError, ValueError), open(log) as file:
        values = [float(row[monitor]) for row in csv.DictReader(file) if row.get(monitor)]
        return min(filter(math.isfinite, values), default=float("inf"))
    return float("inf")


def _write_model(model, path):
    """Save ``model`` (uncompiled: loads without this package) whole or not at all."""
    from keras_unet.images import write_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as folder:
        model.save(Path(folder) / "model.keras")
        with open(Path(folder) / "model.keras", "rb") as saved:
            write_atomically(path, lambda file: shutil.copyfileobj(saved, file))


def load_dataset(name, data_dir=None, *, seed=0):
    """The training ``(images, masks)`` of ``datasets.LOADERS[name]`` (from ``data_dir``,
    else downloaded; ``"synthetic"``: 64 cells of ``seed``, 16 in fast mode)."""
    from keras_unet.datasets import LOADERS

    synthetic = dict(n=16 if fast_mode() else 64, seed=seed) if name == "synthetic" else {}
    split, _ = LOADERS[check_choice(name, tuple(LOADERS), "images")](data_dir, **synthetic)
    return list(split.images), list(split.masks)


def _classes(masks, mode, n_classes, ignore_index, rank=2):
    """(masks in ``mode`` (:func:`keras_unet.images.as_mask`), the model's output channels):
    1 for binary masks, one per label, else :func:`keras_unet.images.mask_classes`'s."""
    import numpy as np

    from keras_unet.images import as_mask, mask_classes

    if mode:
        masks = [as_mask(m, f"masks[{i}]", mode, ignore_index=ignore_index, spatial_dims=rank)
                 for i, m in enumerate(masks)]
    binary = masks[0].dtype == np.float32  # or multilabel: one channel per label
    labels = masks[0].shape[-1] if binary and masks[0].ndim == rank + 1 else 1
    if binary and labels == 1 and n_classes and n_classes > 2:
        raise ValueError(f"n_classes={n_classes}, but the masks are binary (two values, read "
                         f"as 0 and 1): give masks of class indices, or leave n_classes out")
    if not binary and n_classes == 1:
        raise ValueError("n_classes=1, but the masks hold class indices: class masks have 2 "
                         "classes or more (binary masks need no n_classes)")
    return masks, labels if binary else mask_classes(masks, ignore_index, n_classes=n_classes)


def train(images, masks=None, output="unet.keras", *, mask_mode=None, n_classes=None,
          ignore_index=None, data_dir=None, tile=None, depth=4, filters=32, padding="same",
          pool_size=2, foreground=None, spatial_dims=None, batch_size=4, epochs=25,
          steps_per_epoch=50, budget=None, loss="dice_ce", learning_rate=1e-3, augment=True,
          validation_split=0.2, seed=0, workdir=None, distribution=None, verbose=None):
    """Train a U-Net as ``keras-unet train`` does; write the best epoch (by validation loss).

    ``images``, ``masks``: in the package convention, or ``images`` a ``datasets.LOADERS``
    name (``data_dir``: its copy). Volumes ``(D, H, W, C)`` train a 3D U-Net (``spatial_dims``
    3, or a ``tile`` of 3 sides, for volumes without a channel axis), ``pool_size`` as
    :func:`~keras_unet.model.build_unet` takes it. Random ``tile`` windows (256, or
    ``DEFAULT_TILE_3D``, or the nearest that fits), ``foreground`` of them centred on a
    foreground pixel (default: 1/3 for volumes, as nnU-Net; none for images). Stops after
    ``budget`` minutes or on a NaN loss (ValueError). ``workdir`` (``<output>_training``)
    keeps ``history.csv`` and backups: the same call resumes. ``distribution`` (e.g.
    ``"auto"``): the devices and processes of :func:`data_parallel`; ``batch_size`` is the
    global batch, split evenly over them, and ``learning_rate`` is for it: the same global batch
    trains the same weights on any number of devices. Process 0 writes the files. Returns the
    Keras History (None: an earlier run had trained the model already).

    Example:
        >>> import tempfile
        >>> from keras_unet.datasets import synthetic_cells
        >>> images, masks, _ = synthetic_cells(4, size=64)
        >>> output = Path(tempfile.mkdtemp()) / "cells.keras"
        >>> history = train(images, masks, output, depth=2, filters=4, epochs=1, verbose=0)
        tile 256 is larger than the smallest image: using tile 64
        training on 3 images, validating on 1; tiles 64x64, 1 output channel(s), ...
        model saved to ...cells.keras; the log of every epoch is in ...history.csv
    """
    import keras
    import numpy as np

    from keras_unet.data import make_dataset
    from keras_unet.model import build_unet, output_size, receptive_border, valid_input_sizes

    distribution, devices, processes, process = data_parallel(distribution)  # before JAX runs
    if isinstance(images, str):
        images, masks = load_dataset(images, data_dir, seed=seed)
    rank = spatial_dims or (len(tile) if isinstance(tile, (tuple, list)) else
                            3 if np.ndim(images[0]) == 4 else 2)
    check_choice(rank, (2, 3), "spatial_dims")
    sizes = dict(depth=depth, padding=padding, pool_size=pool_size)
    output, given = Path(output), tile
    tile = tuple(tile) if isinstance(tile, (tuple, list)) else (tile,) * rank if tile else (
        (valid_input_sizes(256, **sizes)[0],) * 2 if rank == 2 else
        tuple(v[0] for v in valid_input_sizes(DEFAULT_TILE_3D, **sizes)))
    if len(tile) != rank or rank == 2 and tile[0] != tile[1]:
        fail("tile", "a side (square tiles)" if rank == 2 else "a side or 3 sides", given)
    workdir = Path(workdir) if workdir else output.with_name(f"{output.stem}_training")
    if given and rank == 2 and (fits := valid_input_sizes(tile[0], **sizes)) != [tile[0]]:
        rule = f" (a multiple of 2**depth = {2**depth})" if padding == "same" else ""
        raise ValueError(f"tile={given} does not fit a depth-{depth} U-Net with padding="
                         f"'{padding}'{rule}; nearest sizes that fit: {', '.join(map(str, fits))}")
    if given and rank == 3:  # as predict
        try:
            output_size(tile, **sizes)
        except ValueError as error:
            raise ValueError(f"tile={given} does not fit: {error}") from None
    masks, n_classes = _classes(list(masks), mask_mode, n_classes, ignore_index, rank)
    if batch_size % devices:
        raise ValueError(f"batch_size={batch_size} cannot be split evenly over {devices} "
                         f"devices: give a multiple of {devices}")
    if fast_mode():
        epochs, steps_per_epoch = min(epochs, 2), min(steps_per_epoch, 3)
    keras.utils.set_random_seed(seed)
    order = np.random.default_rng(seed).permutation(len(images))
    n_val = min(max(int(validation_split > 0), round(len(images) * validation_split)),
                len(images) - 1)  # one image at least for validation (if asked) and training
    crop = np.broadcast_to(receptive_border(depth, pool_size=pool_size) if padding == "valid"
                           else 0, rank)
    smallest = np.min([np.shape(image)[:rank] for image in images], axis=0) + 2 * crop
    smallest = np.full(2, smallest.min()) if rank == 2 else smallest  # square 2D tiles
    sides = np.array(tile)
    def said(sides):  # noqa: E306  (a tile in words: 64, or 32x128x128)
        return "x".join(map(str, sides)) if rank == 3 else str(sides[0])

    if any(sides > smallest):
        fits = (valid_input_sizes(tuple(int(n) for n in smallest), **sizes) if rank == 3
                else [valid_input_sizes(int(smallest[0]), **sizes)] * 2)
        fitting = [f[0] if t > n else int(t) for t, n, f in zip(sides, smallest, fits)]
        if any(np.array(fitting) > smallest):
            raise ValueError(f"the smallest image, {said(smallest - 2 * crop)} px, is too small "
                             f"for a depth-{depth} U-Net: use a smaller depth")
        print(f"tile {said(sides)} is larger than the smallest image: using tile {said(fitting)}")
        tile = tuple(fitting)
    channels = images[0].shape[-1] if np.ndim(images[0]) == rank + 1 else 1
    foreground = (1 / 3 if rank == 3 else None) if foreground is None else foreground
    workdir.mkdir(parents=True, exist_ok=True)
    options = dict(images=len(images), channels=int(channels), n_classes=int(n_classes),
                   tile=[int(t) for t in tile] if rank == 3 else int(tile[0]), depth=depth,
                   filters=filters, padding=padding, batch_size=batch_size,
                   steps_per_epoch=steps_per_epoch, loss=loss,
                   learning_rate=float(learning_rate), augment=bool(augment),
                   validation_split=float(validation_split), seed=seed)
    if rank == 3:  # recorded where they matter only: a 2D run's backup resumes as before
        options.update(pool_size=json.loads(json.dumps(pool_size)), foreground=foreground)
    best, log, monitor = workdir / "best.keras", workdir / "history.csv", "val_loss" * bool(
        n_val) or "loss"
    beat = _agreed(_resume(workdir, options, monitor) if process == 0 else 0.0, processes)
    if _agreed(process == 0 and best.exists() and not (workdir / "backup").exists(), processes):
        if process == 0:  # trained, but not written
            _write_model(keras.models.load_model(best, compile=False), output)
            best.unlink()
            (workdir / "options.json").unlink()
        print(f"the run in {workdir} had finished training: its best model is saved to "
              f"{output} (not trained again); the log of every epoch is in {log}")
        return None
    scope = distribution.scope if distribution else contextlib.nullcontext
    files = workdir  # the other processes save as process 0 does (Keras's saving is collective
    if process:  # under a distribution), into a copy of its backup, then delete it
        files = Path(tempfile.mkdtemp(prefix=f"keras_unet_process{process}_"))
        if (workdir / "backup").exists():
            shutil.copytree(workdir / "backup", files / "backup")
    with scope():
        model = build_unet((None,) * rank + (channels,), n_classes, depth=depth,
                           filters=filters, padding=padding, batch_norm=True, pool_size=pool_size,
                           multilabel=masks[0].dtype == np.float32 and n_classes > 1)
        compile_unet(model, loss=loss, learning_rate=learning_rate)
    tiles = dict(batch_size=batch_size // processes, tile=tile if rank == 3 else tile[0],
                 output_crop=tuple(int(c) for c in crop) if rank == 3 else int(crop[0]),
                 ignore_index=ignore_index, spatial_dims=rank, shard=(processes, process))
    fit = order[n_val:]  # and ~32 validation tiles, in whole batches
    val = [order[i % n_val] for i in range(-(-max(32, n_val) // batch_size) * batch_size)
           ] if n_val else []
    data = make_dataset([images[i] for i in fit], [masks[i] for i in fit], augment=augment,
                        seed=seed, foreground=foreground, **tiles)
    validation = make_dataset([images[i] for i in val], [masks[i] for i in val], augment=False,
                              shuffle=False, repeat=False, seed=seed + 1, foreground=foreground,
                              **tiles) if n_val else None

    def spent(epoch, logs, start=time.monotonic()):
        if budget and _agreed(time.monotonic() - start > budget * 60, processes):
            print(f"\nthe time budget of {budget:g} min is spent: stopping after epoch {epoch + 1}")
            model.stop_training = True

    callbacks = [  # double_checkpoint: a backup torn while written has one before it
        keras.callbacks.TerminateOnNaN(), keras.callbacks.LambdaCallback(on_epoch_end=spent),
        keras.callbacks.BackupAndRestore(str(files / "backup"), double_checkpoint=True),
        keras.callbacks.ModelCheckpoint(str(files / best.name), monitor=monitor,
                                        save_best_only=True, initial_value_threshold=beat),
        keras.callbacks.CSVLogger(str(files / log.name), append=True)]
    centred = f" ({foreground:.0%} centred on the foreground)" if foreground else ""
    if devices > 1:
        print(f"data parallel on {devices} devices, {processes} process(es): global batch "
              f"{batch_size} ({batch_size // devices} per device), learning rate "
              f"{learning_rate:g}")
    print(f"training on {len(fit)} images, validating on {n_val}; tiles "
          f"{'x'.join(map(str, tile))}{centred}, {n_classes} output channel(s), {model.count_params():,} parameters; log and "
          f"backups in {workdir}")
    with scope():
        history = model.fit(data, validation_data=validation, epochs=epochs, shuffle=False,
                            steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=0
                            if process else (1 if sys.stdout.isatty() else 2) if verbose is None
                            else verbose)
    if process:
        shutil.rmtree(files)
        print(f"process {process} of {processes} done: process 0 saves the model to {output}")
        return history
    good = keras.models.load_model(best, compile=False) if best.exists() else None
    good = good if good is None or all(np.isfinite(w).all() for w in good.get_weights()) else None
    losses = [history.history.get(k, [0.0] * len(history.epoch)) for k in ("loss", "val_loss")]
    nan = [e for e, ok in zip(history.epoch, np.isfinite(losses).all(0)) if not ok]
    try:  # good is None: no epoch saved, or NaN weights after a finite loss
        good is None or _write_model(good, output)
    except OSError as error:
        raise OSError(f"the model could not be written to {output} ({error.strerror or error}"
                      f"); it is kept in {best}: train again, with another output if need be, "
                      f"to write it without training again") from None
    best.unlink(missing_ok=True)  # a full copy of the model: not kept once the run is over
    (workdir / "options.json").unlink(missing_ok=True)
    if nan or good is None:
        epoch = nan[0] if nan else (history.epoch or [0])[-1]
        kept = (f"the best model of the epochs before it is saved to {output}" if good is not None
                else f"no model was saved{f' ({output} is left as it was)' * output.exists()}")
        raise ValueError(f"the loss became NaN in epoch {epoch + 1} and training stopped; "
                         f"{kept}. Try a lower learning_rate (this run's: {learning_rate:g})")
    print(f"model saved to {output}; the log of every epoch is in {log}")
    return history
