"""The ``keras-unet`` command.

    keras-unet train     images + masks (or a dataset) -> a trained .keras model
    keras-unet predict   a model + images of any size -> mask PNGs (overlap-tile)
    keras-unet evaluate  predicted vs true masks -> Dice, IoU, pixel error (V_rand)
    keras-unet demo      synthetic cells end to end in a few minutes on a CPU
    keras-unet info      versions, Keras backend and the devices it sees
    keras-unet summary   build a U-Net and print its layers (default: the 2015 paper's)

Every subcommand has ``--help``. A mistake (a missing folder, a bad option value, a
dataset that cannot be downloaded) is one line on stderr, naming the command's options,
and exit status 2; nothing is left half-written. TensorFlow's start-up log lines are
hidden unless ``--verbose`` is given.
"""

import argparse
import contextlib
import importlib.metadata
import os
import platform
import re
import sys
import time
from pathlib import Path

from keras_unet import __version__
from keras_unet.tutorial import fast_mode

DISTRIBUTION = "keras-unet-paper"
DATASETS = ("synthetic", "isbi2012", "drive", "oxford_pets")
FAST = fast_mode()


class CommandError(Exception):
    """A problem the user can fix: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake in the command line told in one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(convert, ok, expected):
    """An argparse type: the text as ``convert`` reads it (int or float) where ``ok`` takes
    it, else the one line "expected <expected>; got '<text>'"."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):  # NaN fails every comparison: refused too
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
# a learning rate, minutes: not 0, negative, nan or inf
_positive_number = _number(float, lambda v: 0 < v < float("inf"), "a positive number")
_non_negative_number = _number(float, lambda v: 0 <= v < float("inf"), "a number >= 0")
_fraction = _number(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
_probability = _number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def _palette(text):
    """``--palette``: colours to class indices, ``"R,G,B=CLASS;R,G,B=CLASS;..."`` (a gray
    level ``V=CLASS`` is ``V,V,V=CLASS``), given inline or as a file holding the same
    text (one pair a line, or separated by ``;``). A ``{(r, g, b): class}`` dict."""
    path = Path(text)
    if path.is_file():
        text = path.read_text()
    palette = {}
    for pair in filter(None, (p.strip() for p in re.split(r"[;\n]", text))):
        try:
            colour, index = pair.split("=")
            colour = tuple(int(v) for v in colour.split(","))
            colour, index = colour * 3 if len(colour) == 1 else colour, int(index)
            if len(colour) != 3 or not all(0 <= v <= 255 for v in colour) or index < 0:
                raise ValueError
        except ValueError:
            if "=" not in text:
                raise argparse.ArgumentTypeError(f"{text!r} is neither a file nor R,G,B=CLASS "
                                                 f"pairs, e.g. '0,0,0=0;255,0,0=1'") from None
            raise argparse.ArgumentTypeError(
                f"{pair!r} is not R,G,B=CLASS (0..255 each, a class index >= 0), e.g. "
                f"'0,0,0=0;255,0,0=1'") from None
        if colour in palette and palette[colour] != index:
            raise argparse.ArgumentTypeError(f"the colour {pair.split('=')[0]} is given two "
                                             f"classes, {palette[colour]} and {index}")
        palette[colour] = index
    if not palette:
        raise argparse.ArgumentTypeError(f"expected R,G,B=CLASS;R,G,B=CLASS...; got {text!r}")
    return palette


# The library's messages name its Python arguments; the command's name its options.
_OPTIONS = {"images_dir": "--images", "masks_dir": "--masks", "data_dir": "--data-dir",
            "input_dir": "input", "mask_mode": "--mask-mode", "tile": "--tile",
            "depth": "--depth", "filters": "--filters", "padding": "--padding",
            "upsampling": "--upsampling", "overlap": "--overlap", "tta": "--tta",
            "batch_size": "--batch-size", "input_shape": "--input-shape", "loss": "--loss",
            "learning_rate": "--learning-rate"}
_OPTIONS_OF = {"summary": {"n_classes": "--n-classes"},
               "train": {"n_classes": "--classes", "threshold": "--mask-threshold",
                         "ignore_index": "--ignore-index", "palette": "--palette"},
               "predict": {"threshold": "--threshold"}, "evaluate": {"n_classes": "--classes"}}
_NO_PALETTE = re.compile(r"pass mask_mode='palette' and palette=\{.*?\}")
# Each command's own words, applied before the option names: (pattern, replacement) for
# re.sub. train has its own palette syntax; predict has no Python (image[..., :1],
# tile=None) and its output is an argument, not an option.
_WORDS_OF = {
    "train": [
        (_NO_PALETTE, "give --palette R,G,B=CLASS;... (each colour's class index)"),
        (r"palette=\{.*?\}", "--palette R,G,B=CLASS;..."),
        (r"\bnot in palette\b", "not in --palette"),
    ],
    "predict": [
        (r"\boverwrite=True", "--overwrite"),
        (r"\boutput_dir\b", "output"),
        (r"\bleave tile=None", "leave out --tile"),
        (r"\bor tile=None", "or leave out --tile"),
        (r"\btile (\d+)", r"--tile \1"),
        (r"\ba smaller tile\b", "a smaller --tile"),
        (r"\buse a tile >= (\d+)", r"use --tile \1 or larger"),
        (r"with padding='(\w+)'", r"with \1 padding"),
        (r"build the model with input shape \(None, None, \d+\)",
         "use a model of any input size (keras-unet train makes those)"),
        (r"takes (\d+) \(gray: image\[\.\.\., :1\]; RGB: np\.repeat\(image, 3, -1\)\)",
         lambda m: f"takes {m[1]} (save the images as {'gray' if m[1] == '1' else 'RGB'} ones)"),
    ],
}


def in_option_names(message, command=None):
    """``message`` of a library error with its Python argument names (``data_dir``,
    ``mask_mode='multiclass'``) replaced by the options of ``keras-unet command``
    (``--data-dir``, ``--mask-mode multiclass``), and the library's other advice in that
    command's words (``tile=None`` is ``leave out --tile`` in predict).

    Example:
        >>> in_option_names("data_dir x is not a folder. Pass mask_mode='multiclass'")
        '--data-dir x is not a folder. Pass --mask-mode multiclass'
        >>> in_option_names("use a smaller tile (e.g. 112) or tile=None", "predict")
        'use a smaller --tile (e.g. 112) or leave out --tile'
    """
    for pattern, words in _WORDS_OF.get(command, []):
        message = re.sub(pattern, words, message)
    who = f"keras-unet {command}" if command else "the command"
    message = _NO_PALETTE.sub(f"save it as a gray mask of class indices: {who} takes no "
                              f"colour palette", message)
    for name, option in {**_OPTIONS, **_OPTIONS_OF.get(command, {})}.items():
        def option_with(match, name=name, option=option):
            values = [v for v in match.groups() if v is not None]
            return " or ".join(f"{option} {v}" for v in values if v) or option

        # name='a' or 'b' / name=value / name= ; a bare name only where it is no English word
        message = re.sub(rf"\b{name}=(?:'([^']*)'(?: or '([^']*)')?|([\w.-]*))", option_with,
                         message)
        if "_" in name:
            message = re.sub(rf"\b{name}\b", option, message)
    return message


@contextlib.contextmanager
def _stderr_hidden():
    """File descriptor 2 (where C++ libraries write directly) on /dev/null, then back."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _start_keras(args):
    """Import Keras and start its backend, the first time, without TensorFlow's start-up
    log lines (absl, oneDNN, CUDA and cuDNN probing), which it writes straight to stderr
    before any setting can hide them; with ``--verbose``, as they come. Each command
    calls it once it has checked what it can check without Keras."""
    if args.verbose or "keras" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    try:
        with _stderr_hidden():
            import keras

            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                tf.config.list_logical_devices()  # CUDA's probing (cuInit) logs here
    except ImportError as error:
        raise CommandError(f"cannot start Keras: {error} (--verbose shows its log)") from None
    with contextlib.suppress(ImportError):
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)


def _version(module):
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return None


# ------------------------------------------------------------------------- info


def cmd_info(args):
    _start_keras(args)
    import keras

    from keras_unet.training import available_devices

    backend = keras.backend.backend()
    rows = [
        ("keras_unet", f"{__version__} (distribution {DISTRIBUTION})"),
        ("python", platform.python_version()),
        ("keras", keras.__version__),
        ("backend", f"{backend} (set KERAS_BACKEND to change)"),
    ]
    for name in ("tensorflow", "jax", "torch", "numpy"):
        rows.append((name, _version(name) or "not installed"))
    rows.append(("devices", ", ".join(available_devices())))
    for key, value in rows:
        print(f"{key:<11} {value}")
    return 0


def _shape(text):
    try:
        parts = [None if p.strip().lower() in ("", "none") else int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not HEIGHT,WIDTH,CHANNELS (integers; 'none' for any size)"
        ) from None
    return tuple(parts)


def cmd_summary(args):
    _start_keras(args)
    from keras_unet.model import build_unet

    try:
        model = build_unet(
            args.input_shape, args.n_classes, depth=args.depth, filters=args.filters,
            padding=args.padding, batch_norm=args.batch_norm, upsampling=args.upsampling,
        )
    except ValueError as err:
        raise CommandError(err) from None
    model.summary(line_length=96)
    return 0


# ------------------------------------------------------------------------ train


def _palette_text(palette):
    """``{(r, g, b): class}`` in ``--palette``'s syntax: ``0=0;255,0,0=1``."""
    return ";".join(f"{r}={c}" if r == g == b else f"{r},{g},{b}={c}"
                    for (r, g, b), c in palette.items())


def _mask_advice(error, command="train"):
    """A :class:`~keras_unet.MaskValuesError`'s message, its fix (the last
    sentence) worded in the options of ``keras-unet command``."""
    facts = str(error).rsplit(". ", 1)[0] if error.fix else str(error)
    if command != "train":  # evaluate reads mask files as they are
        return (f"{facts}. keras-unet {command} reads masks of 0/255 or 0/1 and masks of "
                f"class indices 0, 1, 2, ...: save them so (as PNG, not JPEG)")
    if not error.fix:
        return str(error)
    ((key, value),) = error.fix.items()
    if key == "mask_mode":
        advice = f"Give --mask-mode {value}"
    elif key == "threshold":
        advice = f"Give --mask-threshold {value:g} to read the pixels above {value:g} as 1"
    elif key == "ignore_index":
        advice = f"If {value} marks unlabelled pixels, give --ignore-index {value}"
    else:  # palette
        advice = f"If each value is a class, give --palette '{_palette_text(value)}'"
    return f"{facts}. {advice}"


def _load_data(args):
    """(images, masks) lists from --images/--masks or --dataset."""
    from keras_unet import datasets
    from keras_unet.images import MaskValuesError, from_folder

    palette, ignore = getattr(args, "palette", None), getattr(args, "ignore_index", None)
    if args.dataset:
        if args.images or args.masks or args.mask_threshold is not None or palette \
                or ignore is not None:
            raise CommandError("give either --dataset or --images and --masks (and their "
                               "--mask-threshold, --palette, --ignore-index), not both")
        if args.dataset == "synthetic":
            images, masks, _ = datasets.synthetic_cells(16 if FAST else 64, size=256, seed=args.seed)
            return list(images), list(masks)
        loader = {"isbi2012": datasets.load_isbi2012, "drive": datasets.load_drive,
                  "oxford_pets": datasets.load_oxford_pets}[args.dataset]
        try:
            train, _ = loader(args.data_dir)
        except datasets.DownloadError as error:
            raise CommandError(f"{error}. Without a network, download it on another "
                               f"machine and give its folder with --data-dir") from None
        return list(train.images), list(train.masks)
    if not (args.images and args.masks):
        raise CommandError("give --images DIR and --masks DIR (or --dataset NAME)")
    mode = args.mask_mode
    if palette:
        if mode != "auto":
            raise CommandError(f"--palette reads colour-coded masks as classes; it does not "
                               f"go with --mask-mode {mode}")
        mode = "palette"
    classes = getattr(args, "classes", None)
    read = dict(palette=palette, threshold=args.mask_threshold, ignore_index=ignore,
                n_classes=classes if classes and classes > 1 else None)  # 1: _classes says
    try:
        try:
            split = from_folder(args.images, args.masks, mask_mode=mode, **read)
        except MaskValuesError as error:
            if mode != "multiclass" or error.fix != {"mask_mode": "binary"}:
                raise
            # --mask-mode multiclass: masks of only 0 and 255 are the classes 0 and 1
            split = from_folder(args.images, args.masks, mask_mode="binary")
    except MaskValuesError as error:
        raise CommandError(_mask_advice(error)) from None
    return list(split.images), list(split.masks)


def _classes(masks, args):
    """(masks in the package convention, n_classes of the model) for --mask-mode,
    --classes, --ignore-index and --palette: the classes the masks use
    (:func:`keras_unet.images.mask_classes`), or --classes, which every value must be
    below (or be --ignore-index)."""
    import numpy as np

    from keras_unet.images import MaskValuesError, mask_classes

    classes, ignore = getattr(args, "classes", None), getattr(args, "ignore_index", None)
    palette = getattr(args, "palette", None)
    binary = masks[0].dtype == np.float32
    if args.mask_mode == "binary" and not binary:  # a dataset's class masks
        if max(int(m.max()) for m in masks) > 1:
            raise CommandError("--mask-mode binary: the masks hold more than two classes")
        masks, binary = [m.astype(np.float32) for m in masks], True
    elif args.mask_mode == "multiclass":
        values = set(np.unique(np.concatenate([np.unique(m) for m in masks])).tolist())
        if values in ({0, 255}, {0, 65535}):  # binary masks, stored full scale
            masks = [m > 0 for m in masks]
        masks, binary = [m.astype(np.int32) for m in masks], False
    if binary:
        if classes and classes > 2:
            raise CommandError(f"--classes {classes}, but the masks are binary (two values, "
                               f"read as 0 and 1): give masks of class indices, or leave "
                               f"--classes out")
        return masks, 1
    if classes == 1:
        raise CommandError("--classes 1, but the masks hold class indices: class masks have 2 "
                           "classes or more (binary masks need no --classes)")
    if palette and not classes:  # the classes the palette names, used or not
        classes = max(2, 1 + max((c for c in palette.values() if c != ignore), default=1))
    try:
        return masks, mask_classes(masks, ignore, n_classes=classes)
    except MaskValuesError as error:
        raise CommandError(_mask_advice(error)) from None


def _budget_callback(minutes):
    """A callback that stops training at the end of the epoch during which ``minutes``
    have passed (Keras is imported here, not when the command starts)."""
    import keras

    class Budget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            if time.monotonic() - self.start > minutes * 60:
                print(f"\nthe time budget of {minutes:g} min is spent: stopping after "
                      f"epoch {epoch + 1}")
                self.model.stop_training = True

    return Budget()


def _discard_unreadable_backup(backup):
    """A run killed while writing its very first backup leaves a broken weights file
    and no earlier one to fall back to: start again rather than fail to resume."""
    latest = backup / "latest.weights.h5"
    if not latest.exists() or (backup / "latest.weights.h5.bkp").exists():
        return
    import h5py

    try:
        with h5py.File(latest, "r"):
            return
    except OSError:
        print(f"the backup in {backup} was cut off while being written: starting again")
        for path in backup.iterdir():
            path.unlink()


def _save_atomically(model, target):
    """Save ``model`` to ``target`` whole or not at all."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.part.keras")
    try:
        model.save(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _check_writable(path, option, folder=False):
    """Refuse, before any training, a ``path`` that could not be written at the end: its
    nearest existing folder must be a folder in which a file can be created (tried with
    a probe, as :func:`keras_unet.images.writable_folder` does)."""
    from keras_unet.images import writable_folder

    try:
        writable_folder(path if folder else path.parent)
    except NotADirectoryError as error:
        existing = Path(error.filename)
        where = "is a file" if existing == path else f"cannot be made: {existing} is a file"
        raise CommandError(f"{option} {path} {where}, not a folder; give a path in a folder "
                           f"you can write to") from None
    except OSError as error:
        raise CommandError(f"{option} {path} cannot be written: no file can be created in "
                           f"{error.filename} ({error.strerror or error}); give a path in a "
                           f"folder you can write to") from None


# What a run records in <workdir>/options.json, and how a message names each.
_RUN_OPTIONS = {"images": "images", "channels": "image channels", "n_classes": "classes",
                "tile": "--tile", "depth": "--depth", "filters": "--filters",
                "padding": "--padding", "batch_size": "--batch-size",
                "steps_per_epoch": "--steps-per-epoch", "loss": "--loss",
                "learning_rate": "--learning-rate", "augment": "augmentation",
                "validation_split": "--validation-split", "seed": "--seed"}


def _check_restart(workdir, options):
    """Before a run in ``workdir``: refuse to resume the backup (or best model) of a run
    with other ``options`` (one line naming them); on a fresh start remove the log of an
    earlier run; record ``options`` in ``workdir/options.json``. Returns whether a
    previous run's work (backup or best model) is there to go on from."""
    import json

    recorded = workdir / "options.json"
    left = (workdir / "backup").exists() or (workdir / "best.keras").exists()
    if left and recorded.exists():
        before = json.loads(recorded.read_text())
        shown = {True: "on", False: "off"}
        differ = [f"{_RUN_OPTIONS.get(k, k)} {shown.get(before.get(k), before.get(k))} then, "
                  f"{shown.get(v, v)} now" for k, v in options.items() if before.get(k) != v]
        if differ:
            raise CommandError(
                f"the backup in {workdir} belongs to a run with other options ("
                f"{'; '.join(differ)}): give the same options to resume it, another "
                f"--workdir, or delete {workdir} to start again")
    if not left:  # a fresh run: an earlier run's log would mix with this one's
        (workdir / "history.csv").unlink(missing_ok=True)
    from keras_unet.images import write_atomically

    text = json.dumps(options, indent=1, sort_keys=True) + "\n"
    write_atomically(recorded, lambda file: file.write(text.encode()))
    return left


def _best_so_far(workdir, monitor):
    """The lowest ``monitor`` logged in ``workdir/history.csv`` (a resumed run must beat
    it to replace the best model), or None."""
    import csv
    import math

    try:
        with open(workdir / "history.csv") as file:
            values = [float(row[monitor]) for row in csv.DictReader(file) if row.get(monitor)]
    except (OSError, ValueError):
        return None
    values = [v for v in values if math.isfinite(v)]
    return min(values) if values else None


def _finite_model(path):
    """The model saved at ``path`` (uncompiled) if every weight is finite, else None."""
    import keras
    import numpy as np

    model = keras.models.load_model(path, compile=False)
    return model if all(np.isfinite(w).all() for w in model.get_weights()) else None


def _nan_callback():
    """A callback that stops training at the first batch with a NaN or infinite loss and
    records the epoch in its ``epoch`` (None while the loss is finite)."""
    import keras
    import numpy as np

    class StopOnNaN(keras.callbacks.Callback):
        epoch = None

        def on_epoch_begin(self, epoch, logs=None):
            self.current = epoch

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not np.isfinite(float(loss)):
                self.epoch = self.current
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):  # weights gone NaN in the last step
            if any(not np.isfinite(float((logs or {}).get(key, 0.0)))
                   for key in ("loss", "val_loss")):
                self.epoch = epoch
                self.model.stop_training = True

    return StopOnNaN()


def train(images, masks, output, *, n_classes, tile=256, depth=4, filters=32, padding="same",
          batch_size=4, epochs=25, steps_per_epoch=50, budget=None, loss="dice_ce",
          learning_rate=1e-3, augment=True, validation_split=0.2, seed=0, workdir=None,
          verbose=None):
    """Train a U-Net on lists of images and masks; the ``keras-unet train`` command.

    Holds out ``validation_split`` of the images, trains on random ``tile`` windows
    with augmentation, keeps the best model by validation loss, stops on NaN or when
    the ``budget`` (minutes) is spent, logs to ``workdir/history.csv`` and backs up
    every epoch to ``workdir/backup`` so that running it again after an interruption
    resumes. The best model is written to ``output`` at the end, atomically; then the
    backups and the best model's copy in ``workdir`` are deleted (Keras deletes the
    backups itself), so that only ``history.csv`` is left there.

    A ``tile`` that does not fit the network is refused, naming the nearest sizes that
    do (``keras_unet.model.valid_input_sizes``, the rule of ``keras-unet predict``); one
    larger than the smallest image is made smaller, aloud. The run's options are
    recorded in ``workdir/options.json``: a backup of a run with other options is not
    resumed (an error names them), and the best model of a run that finished training
    but could not be written is written, not trained again. A NaN loss stops the run
    with a :class:`CommandError`: the best model of the epochs before it, if any, is
    written to ``output`` and the message says so.

    Returns:
        the Keras History of this run (None if the model was already trained).
    """
    import keras
    import numpy as np

    from keras_unet.data import make_dataset
    from keras_unet.model import build_unet, receptive_border, valid_input_sizes
    from keras_unet.training import compile_unet

    output = Path(output)
    workdir = Path(workdir) if workdir else output.with_name(f"{output.stem}_training")
    if tile is None:  # not given: 256, or the nearest size below it that fits
        tile = valid_input_sizes(256, depth, padding)[0]
    fits = valid_input_sizes(tile, depth, padding)
    if fits != [tile]:  # given, and it does not fit: refused, as keras-unet predict does
        rule = f" (a multiple of 2**depth = {2**depth})" if padding == "same" else ""
        raise CommandError(f"--tile {tile} does not fit a depth-{depth} U-Net with --padding "
                           f"{padding}{rule}; nearest sizes that fit: "
                           f"{', '.join(map(str, fits))}")
    workdir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    order = np.random.default_rng(seed).permutation(len(images))
    n_val = 0  # at least one image each for validation and training, if asked and possible
    if validation_split > 0 and len(images) > 1:
        n_val = min(max(1, round(len(images) * validation_split)), len(images) - 1)
    val, fit = order[:n_val], order[n_val:]
    crop = receptive_border(depth) if padding == "valid" else 0
    smallest = min(min(image.shape[:2]) for image in images) + 2 * crop
    if tile > smallest:
        fitting = valid_input_sizes(smallest, depth, padding)
        if fitting[0] > smallest:
            raise CommandError(f"the smallest image, {smallest - 2 * crop} px, is too small for "
                               f"a depth-{depth} U-Net: use a smaller --depth")
        print(f"tile {tile} is larger than the smallest image: using tile {fitting[0]}")
        tile = fitting[0]
    channels = images[0].shape[-1] if images[0].ndim == 3 else 1
    _discard_unreadable_backup(workdir / "backup")
    options = dict(images=len(images), channels=int(channels), n_classes=int(n_classes),
                   tile=int(tile), depth=depth, filters=filters, padding=padding,
                   batch_size=batch_size, steps_per_epoch=steps_per_epoch, loss=loss,
                   learning_rate=float(learning_rate), augment=bool(augment),
                   validation_split=float(validation_split), seed=seed)
    resumed = _check_restart(workdir, options)
    best = workdir / "best.keras"
    if best.exists() and not (workdir / "backup").exists():
        # the run finished training, but its model was not written (the output failed)
        _save_atomically(keras.models.load_model(best, compile=False), output)
        best.unlink()
        (workdir / "options.json").unlink()
        print(f"the run in {workdir} had finished training: its best model is saved to "
              f"{output} (not trained again); the log of every epoch is in "
              f"{workdir / 'history.csv'}")
        return None
    model = build_unet((None, None, channels), n_classes, depth=depth, filters=filters,
                       padding=padding, batch_norm=True)
    compile_unet(model, loss=loss, learning_rate=learning_rate)
    options = dict(batch_size=batch_size, tile=tile, output_crop=crop)
    train_data = make_dataset([images[i] for i in fit], [masks[i] for i in fit],
                              augment=augment, seed=seed, **options)
    monitor, validation = "loss", None
    if n_val:
        repeats = max(1, 32 // n_val)  # a fixed set of about 32 validation tiles
        validation = make_dataset([images[i] for i in val] * repeats, [masks[i] for i in val] * repeats,
                                  augment=False, shuffle=False, repeat=False, seed=seed + 1, **options)
        monitor = "val_loss"
    stop_on_nan = _nan_callback()
    beat = _best_so_far(workdir, monitor) if resumed else None
    callbacks = [
        stop_on_nan,
        # double_checkpoint: a crash while writing a backup falls back to the one before
        keras.callbacks.BackupAndRestore(str(workdir / "backup"), double_checkpoint=True),
        # a resumed run replaces the best model only with a better one
        keras.callbacks.ModelCheckpoint(
            str(best), monitor=monitor, save_best_only=True,
            # inf, not None: an epoch whose loss is NaN is never saved as the best
            initial_value_threshold=float("inf") if beat is None else beat),
        keras.callbacks.CSVLogger(str(workdir / "history.csv"), append=True),
    ]
    if budget:
        callbacks.append(_budget_callback(budget))
    print(f"training on {len(fit)} images, validating on {n_val}; tiles {tile}x{tile}, "
          f"{n_classes} output channel(s), {model.count_params():,} parameters; "
          f"log and backups in {workdir}")
    history = model.fit(train_data, validation_data=validation, epochs=epochs, shuffle=False,
                        steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                        verbose=verbose if verbose is not None else (1 if sys.stdout.isatty() else 2))
    good = _finite_model(best) if best.exists() else None
    if good is None and stop_on_nan.epoch is None:  # NaN weights after a finite loss
        stop_on_nan.epoch = history.epoch[-1] if history.epoch else 0
    if stop_on_nan.epoch is not None:
        if good is not None:
            _save_atomically(good, output)
            kept = f"the best model of the epochs before it is saved to {output}"
        else:
            kept = "no model was saved" + (f" ({output} is left as it was)"
                                           if output.exists() else "")
        best.unlink(missing_ok=True)
        (workdir / "options.json").unlink(missing_ok=True)
        raise CommandError(f"the loss became NaN in epoch {stop_on_nan.epoch + 1} and training "
                           f"stopped; {kept}. Try a lower --learning-rate (this run's: "
                           f"{learning_rate:g})")
    # Saved uncompiled: architecture and weights, all built-in Keras layers, so that
    # keras.models.load_model(output) works anywhere, without this package.
    try:
        _save_atomically(good, output)
    except OSError as error:
        reason = error.strerror or error
        raise CommandError(f"the model could not be written to {output} ({reason}); it is "
                           f"kept in {best}: run the same command again, with "
                           f"another --output if need be, to write it without training "
                           f"again") from None
    best.unlink()  # a full copy of the model: not kept once the run is over
    (workdir / "options.json").unlink()
    print(f"model saved to {output}; the log of every epoch is in {workdir / 'history.csv'}")
    return history


def cmd_train(args):
    if args.output.exists() and not args.output.is_file():
        raise CommandError(f"--output {args.output} is a folder; give a file name like unet.keras")
    if args.output.suffix != ".keras":
        raise CommandError(f"--output must end with .keras; got {args.output}")
    _check_writable(args.output, "--output")  # before training, not after it
    if args.workdir:
        _check_writable(args.workdir, "--workdir", folder=True)
    if args.dataset not in (None, "synthetic"):
        _start_keras(args)  # a download shows Keras's progress bar
    images, masks = _load_data(args)
    masks, n_classes = _classes(masks, args)
    from keras_unet.images import check_not_empty

    empty = check_not_empty(masks, args.ignore_index)
    if empty:
        print(f"keras-unet train: warning: {in_option_names(empty, 'train')}", file=sys.stderr)
    _start_keras(args)
    epochs, steps = args.epochs, args.steps_per_epoch
    if FAST:
        epochs, steps = min(epochs, 2), min(steps, 3)
    train(images, masks, args.output, n_classes=n_classes, tile=args.tile, depth=args.depth,
          filters=args.filters, padding=args.padding, batch_size=args.batch_size, epochs=epochs,
          steps_per_epoch=steps, budget=args.budget, loss=args.loss,
          learning_rate=args.learning_rate, augment=not args.no_augment,
          validation_split=args.validation_split, seed=args.seed, workdir=args.workdir)
    return 0


# ---------------------------------------------------------------------- predict


def _load_model(path):
    path = Path(path)
    if not path.is_file():
        raise CommandError(f"model {path} does not exist")
    import keras

    import keras_unet.losses  # noqa: F401  (registers the package's losses and metrics)
    import keras_unet.metrics  # noqa: F401

    try:
        return keras.models.load_model(path)
    except Exception as error:  # Keras raises many kinds for a file that is not a model
        raise CommandError(f"{path} is not a Keras model file (.keras): "
                           f"{str(error).splitlines()[0][:200]}") from None


def cmd_predict(args):
    if not args.model.is_file():
        raise CommandError(f"model {args.model} does not exist")
    if not args.input.exists():
        raise CommandError(f"input {args.input} is neither an image file nor a folder")
    _start_keras(args)
    from keras_unet.images import image_files
    from keras_unet.inference import check_output_dir, predict_file, predict_folder

    options = dict(threshold=args.threshold, probabilities=args.probabilities, tile=args.tile,
                   overlap=args.overlap, tta=args.tta, batch_size=args.batch_size,
                   overwrite=args.overwrite)
    # the output folder before the model is loaded, the tile before any image is read;
    # a ValueError is worded in the command's options by main()
    names = list(image_files(args.input, "input_dir")) if args.input.is_dir() else [args.input]
    check_output_dir(args.output, names, probabilities=args.probabilities,
                     overwrite=args.overwrite)
    model = _load_model(args.model)
    if args.input.is_dir():
        written = predict_folder(model, args.input, args.output, **options)
    else:
        written = [predict_file(model, args.input, args.output, **options)]
    also = f", their probabilities to {args.output / 'probabilities'}" if args.probabilities else ""
    print(f"{len(written)} mask(s) written to {args.output}{also}")
    return 0


# --------------------------------------------------------------------- evaluate


def _read_masks(pairs):
    """``(path, prediction, truth)`` of each pair of mask files; a folder holding class
    indices anywhere reads its 0/1 masks as the classes 0 and 1 too."""
    import numpy as np

    from keras_unet.images import MaskValuesError, read_mask

    try:
        loaded = [[p, read_mask(p), read_mask(t)] for p, t in pairs]
    except MaskValuesError as error:
        raise CommandError(_mask_advice(error, "evaluate")) from None
    for side in (1, 2):  # predictions, truths
        if any(row[side].dtype != np.float32 for row in loaded):
            for row in loaded:
                row[side] = row[side].astype(np.int64)
    return loaded


def evaluate_folders(predictions_dir, truths_dir, *, classes=None):
    """Score predicted mask files against true ones, matched by file stem: a list of
    rows ``{"name", "dice", "iou", "pixel_error"[, "V_rand"]}``, one per image, and their
    mean ``{"name": "mean", ...}``. A binary prediction against class-index truths (or
    the reverse) is refused (``evaluation.check_same_kind``), and so are class values at
    or above ``classes``; an empty true mask scores V_rand 1.0 if nothing is predicted,
    else 0.0."""
    import numpy as np

    from keras_unet import evaluation
    from keras_unet.images import mask_classes, pair_files

    pairs = pair_files(predictions_dir, truths_dir, names=("predictions", "truths"),
                       unmatched=("predictions without a true mask", "true masks without a prediction"))
    loaded = _read_masks(pairs)
    for (path, pred, truth), (_, truth_path) in zip(loaded, pairs):
        if pred.shape != truth.shape:
            raise CommandError(f"{path.name}: the prediction is {pred.shape[:2]} but the true "
                               f"mask is {truth.shape[:2]}")
        try:
            evaluation.check_same_kind(truth, pred)
        except ValueError as error:
            raise CommandError(f"{path} against {truth_path}: the {error}") from None
    binary = all(pred.dtype == np.float32 and truth.dtype == np.float32 for _, pred, truth in loaded)
    n_classes = None
    if not binary:
        masks = [m for _, pred, truth in loaded for m in (pred, truth)]
        names = [str(p) for pair in pairs for p in pair]
        try:
            n_classes = (mask_classes(masks, names=names, n_classes=classes) if classes else
                         max(int(max(pred.max(), truth.max())) for _, pred, truth in loaded) + 1)
        except ValueError as error:  # the command has no unlabelled pixels to offer
            raise CommandError(re.sub(r", or ignore_index=\d+ if \d+ marks unlabelled pixels",
                                      "", str(error))) from None
    rows = []
    for path, pred, truth in loaded:
        row = {"name": path.name}
        if binary:
            row["dice"] = evaluation.dice(truth, pred)
            row["iou"] = evaluation.iou(truth, pred)
            row["pixel_error"] = evaluation.pixel_error(truth, pred)
            row["V_rand"] = evaluation.isbi_scores(pred[..., 0], truth[..., 0],
                                                   thresholds=[0.5])["V_rand"]
        else:
            row["dice"] = evaluation.dice(truth, pred, n_classes=n_classes)["mean"]
            row["iou"] = evaluation.iou(truth, pred, n_classes=n_classes)["mean"]
            row["pixel_error"] = evaluation.pixel_error(truth, pred, n_classes=n_classes)
        rows.append(row)
    mean = {"name": "mean"}
    for key in rows[0]:
        if key != "name":
            mean[key] = float(np.mean([row[key] for row in rows]))
    return rows, mean


def _write_csv(path, rows):
    """``rows`` (dicts with the same keys) as the CSV file ``path``, atomically."""
    import csv
    import io

    from keras_unet.images import write_atomically

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, lambda file: file.write(text.getvalue().encode()))


def cmd_evaluate(args):
    """Print the scores; ``--csv scores.csv`` also writes one row per image to
    ``scores.csv`` and their mean, one row, to ``scores_mean.csv`` beside it."""
    rows, mean = evaluate_folders(args.predictions, args.truths, classes=args.classes)
    keys = [k for k in mean if k != "name"]
    width = max(len(row["name"]) for row in rows + [mean])
    lines = [f"{'image':<{width}}  " + "  ".join(f"{k:>11}" for k in keys)]
    for row in rows + [mean]:
        lines.append(f"{row['name']:<{width}}  " + "  ".join(f"{row[k]:>11.4f}" for k in keys))
    print("\n".join(lines[:-1] + ["-" * len(lines[0]), lines[-1]]))
    if args.csv:
        means = args.csv.with_name(f"{args.csv.stem}_mean{args.csv.suffix or '.csv'}")
        _write_csv(args.csv, rows)
        _write_csv(means, [{"images": len(rows), **{k: mean[k] for k in keys}}])
        print(f"scores per image written to {args.csv}, their mean to {means}")
    return 0


# ------------------------------------------------------------------------- demo


def cmd_demo(args):
    """Synthetic cells: train, predict held-out images, score, draw."""
    _start_keras(args)
    import numpy as np

    from keras_unet import evaluation, viz
    from keras_unet.datasets import synthetic_cells
    from keras_unet.inference import predict_tiled

    output = args.output
    output.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    images, masks, _ = synthetic_cells(16 if FAST else 64, size=256, seed=0)
    print(f"1/4  data: {len(images)} synthetic EM-like images of 256x256 "
          f"(cells 1, membranes 0)")
    print("2/4  training a U-Net (depth 3, 16 filters) on random 128x128 tiles")
    history = train(list(images), list(masks), output / "unet.keras", n_classes=1, tile=128,
                    depth=3, filters=16, batch_size=8, epochs=2 if FAST else args.epochs,
                    steps_per_epoch=3 if FAST else 30, seed=0, workdir=output / "training")
    model = _load_model(output / "unet.keras")
    test_images, test_masks, _ = synthetic_cells(2 if FAST else 4, size=256, seed=1)
    print(f"3/4  segmenting {len(test_images)} new images with overlap-tile prediction")
    predictions = np.stack([predict_tiled(model, image, tile=128, progress=False)
                            for image in test_images])
    scores = {"dice": evaluation.dice(test_masks[..., 0], predictions),
              "pixel_error": evaluation.pixel_error(test_masks[..., 0], predictions),
              "V_rand": evaluation.isbi_scores(predictions, test_masks[..., 0])["V_rand"]}
    print("4/4  held-out scores: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    figure = viz.show_predictions(test_images, test_masks, predictions, n=len(test_images),
                                  class_names=["membrane", "cell"])
    figure.suptitle(f"keras-unet demo: Dice {scores['dice']:.3f}, V_rand {scores['V_rand']:.3f}")
    picture = viz.save_figure(figure, output / "demo.png")
    if history is not None:  # None: the model was trained by an earlier run
        viz.save_figure(viz.plot_history(history), output / "history.png")
    print(f"done in {(time.monotonic() - started) / 60:.1f} min. Figure: {picture.resolve()}")
    return 0


# ----------------------------------------------------------------------- parser


def make_parser():
    parser = _Parser(
        prog="keras-unet",
        description="U-Net (Ronneberger, Fischer, Brox 2015) for Keras 3: train, predict, "
        "evaluate. Start with `keras-unet demo`.",
    )
    parser.add_argument("--version", action="version", version=f"keras-unet {__version__}")
    verbose = dict(action="store_true", help="also show TensorFlow's start-up log lines "
                   "(hidden by default)")
    parser.add_argument("--verbose", **verbose)
    # also accepted after the command; SUPPRESS keeps a --verbose given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", **verbose, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train_parser = sub.add_parser(
        "train", parents=[common],
        help="train a U-Net on a folder of images and masks, or a dataset",
        description="Train a U-Net and save it as a .keras file. Binary or multi-class is "
        "read from the masks (0/255 or 0/1: binary; small integers: classes) unless "
        "--mask-mode says. The defaults "
        "give a good model on a 2-core CPU in well under an hour: 256x256 tiles with "
        "augmentation (elastic deformation included), batch normalisation, Dice + "
        "cross-entropy, the best epoch by validation loss kept. Run the same command "
        "again after an interruption to resume (the --workdir records the run's options: "
        "a backup of a run with other options is not resumed, and a model trained but not "
        "written is written, not trained again); a NaN loss stops the run (exit 2), "
        "keeping the best model before it. When the run is over, only history.csv, "
        "the log of every epoch, is left in the --workdir.",
        epilog="example: keras-unet train --images data/images --masks data/masks "
        "--output unet.keras --budget 30")
    source = train_parser.add_argument_group("data (one of)")
    source.add_argument("--images", type=Path, help="folder of images (PNG, JPEG, TIFF)")
    source.add_argument("--masks", type=Path, help="folder of masks with the same file names")
    source.add_argument("--dataset", choices=DATASETS, help="a known dataset instead")
    source.add_argument("--data-dir", type=Path, help="local copy of --dataset (else downloaded)")
    train_parser.add_argument(
        "--mask-mode", default="auto", choices=("auto", "binary", "multiclass"),
        type=lambda text: "multiclass" if text == "classes" else text,
        help="binary: masks 0/255 or 0/1, one sigmoid output; multiclass: pixel values are "
        "class indices 0, 1, 2, ... (masks of only 0 and 255 become the classes 0 and 1), "
        "softmax outputs; auto (default): binary if every mask is 0/255 "
        "or 0/1, else multiclass. 'classes' is accepted for multiclass")
    train_parser.add_argument(
        "--mask-threshold", type=_non_negative_number, metavar="T",
        help="read the masks as binary: the pixels above T (in the files' own scale, e.g. "
        "127 for 8-bit) are 1, the rest 0; for JPEG masks or masks with smoothed edges")
    train_parser.add_argument(
        "--palette", type=_palette, metavar="R,G,B=CLASS;...",
        help="colour-coded masks: each colour's class index, e.g. '0,0,0=0;255,0,0=1;0,255,0=2' "
        "(a gray level V=CLASS stands for V,V,V=CLASS), or a file holding the same pairs, one "
        "a line; a colour not listed is an error naming the mask")
    train_parser.add_argument(
        "--ignore-index", type=_non_negative_int, metavar="N",
        help="the mask value of unlabelled pixels (e.g. 255): no class, left out of the loss "
        "and the metrics; the masks are read as class indices")
    train_parser.add_argument("--classes", type=_positive_int,
                              help="number of classes (multiclass; default: the largest "
                              "class index + 1); for classes the masks do not all use, e.g. "
                              "21 of which they show 0 and 15; every mask value must be below "
                              "it (or be --ignore-index)")
    train_parser.add_argument("--output", type=Path, default=Path("unet.keras"),
                              help="model file to write (default: unet.keras)")
    train_parser.add_argument("--workdir", type=Path,
                              help="history.csv, and while training the backups and the best "
                              "model so far (default: <output>_training)")
    model_options = train_parser.add_argument_group("model and training")
    model_options.add_argument("--tile", type=_positive_int,
                               help="training tile side (default 256, or the nearest size "
                               "below it that fits --padding valid); it must fit the network, "
                               "as for predict: a multiple of 2**depth with --padding same (a "
                               "size that does not fit is refused, naming the nearest that do)")
    model_options.add_argument("--depth", type=_positive_int, default=4, help="poolings (4, the paper)")
    model_options.add_argument("--filters", type=_positive_int, default=32,
                               help="filters of the first level (32; the paper 64)")
    model_options.add_argument("--padding", choices=("same", "valid"), default="same",
                               help="convolution padding (same; valid is the paper's)")
    model_options.add_argument("--batch-size", type=_positive_int, default=4, help="tiles per step (4)")
    model_options.add_argument("--epochs", type=_positive_int, default=25,
                               help="at most this many (25: about 20 min on a 2-core CPU)")
    model_options.add_argument("--steps-per-epoch", type=_positive_int, default=50, help="(50)")
    model_options.add_argument("--budget", type=_positive_number, metavar="MINUTES",
                               help="stop after this many minutes")
    model_options.add_argument("--loss", default="dice_ce",
                               choices=("dice_ce", "dice", "jaccard", "tversky", "focal_tversky",
                                        "focal", "cross_entropy"), help="(dice_ce)")
    model_options.add_argument("--learning-rate", type=_positive_number, default=1e-3,
                               help="(0.001)")
    model_options.add_argument("--no-augment", action="store_true", help="no augmentation")
    model_options.add_argument("--validation-split", type=_fraction, default=0.2,
                               help="fraction of images held out (0.2)")
    model_options.add_argument("--seed", type=int, default=0, help="for a reproducible run (0)")
    train_parser.set_defaults(func=cmd_train)

    predict_parser = sub.add_parser(
        "predict", parents=[common], help="segment images of any size with a trained model",
        description="Segment an image file or every image of a folder with the paper's "
        "overlap-tile strategy and write mask PNGs with the same file names: 0/255 for a "
        "binary model, class indices for a multi-class one.",
        epilog="example: keras-unet predict unet.keras scans/ masks/")
    predict_parser.add_argument("model", type=Path, help="a .keras model file")
    predict_parser.add_argument("input", type=Path, help="an image file or a folder of images")
    predict_parser.add_argument("output", type=Path, help="folder for the masks")
    predict_parser.add_argument("--probabilities", action="store_true",
                                help="also write the scores as float32 TIFFs "
                                "<output>/probabilities/<name>.tif (a subfolder: the output "
                                "folder holds masks only, ready for keras-unet evaluate)")
    predict_parser.add_argument("--overwrite", action="store_true",
                                help="replace files in the output folder that this run would "
                                "write (without it, the run stops before predicting if any "
                                "exists: so a run again into the same folder needs it)")
    predict_parser.add_argument("--threshold", type=_probability, default=0.5,
                                help="binary models: foreground above this, in [0, 1] (0.5)")
    predict_parser.add_argument("--tile", type=_positive_int,
                                help="input tile side, a size that fits the model (default: "
                                "automatic)")
    predict_parser.add_argument("--overlap", type=_fraction, default=0.25, help="(0.25)")
    predict_parser.add_argument("--tta", choices=("flips", "d4"),
                                help="average over flips (4) or flips and rotations (8)")
    predict_parser.add_argument("--batch-size", type=_positive_int, default=8, help="tiles per call (8)")
    predict_parser.set_defaults(func=cmd_predict)

    evaluate_parser = sub.add_parser(
        "evaluate", parents=[common], help="score predicted masks against true masks",
        description="Compare mask files matched by name: Dice, IoU and pixel error per image "
        "and their mean; V_rand (ISBI 2012) too for binary masks.",
        epilog="example: keras-unet evaluate masks/ truth/ --csv scores.csv")
    evaluate_parser.add_argument("predictions", type=Path, help="folder of predicted masks")
    evaluate_parser.add_argument("truths", type=Path, help="folder of true masks")
    evaluate_parser.add_argument("--classes", type=_positive_int,
                                 help="number of classes (multiclass masks; default: the "
                                 "largest class index + 1); every mask value must be below it")
    evaluate_parser.add_argument("--csv", type=Path, metavar="FILE.csv",
                                 help="also write the scores per image (one row each, no mean "
                                 "row) to FILE.csv and their mean to FILE_mean.csv, one row "
                                 "with the number of images")
    evaluate_parser.set_defaults(func=cmd_evaluate)

    demo_parser = sub.add_parser(
        "demo", parents=[common], help="synthetic cells end to end: train, predict, score, draw",
        description="Train a small U-Net on synthetic EM-like cells (no download), segment "
        "new images, print their scores and write a figure. A few minutes on a CPU.")
    demo_parser.add_argument("--output", type=Path, default=Path("keras-unet-demo"),
                             help="folder for the model and figures (keras-unet-demo)")
    demo_parser.add_argument("--epochs", type=_positive_int, default=12, help="(12)")
    demo_parser.set_defaults(func=cmd_demo)

    info = sub.add_parser("info", parents=[common],
                          help="versions, Keras backend and visible devices")
    info.set_defaults(func=cmd_info)

    summary = sub.add_parser(
        "summary", parents=[common], help="build a U-Net and print its layers",
        description="Build a U-Net and print its layer table. The defaults are the 2015 "
        "paper's network: 572x572x1 in, 388x388x2 out, 31,030,658 parameters.")
    summary.add_argument("--input-shape", type=_shape, default=(572, 572, 1),
                         metavar="H,W,C", help="input shape (default: 572,572,1)")
    summary.add_argument("--n-classes", type=_positive_int, default=2, help="output classes (default: 2)")
    summary.add_argument("--depth", type=_positive_int, default=4, help="number of poolings (default: 4)")
    summary.add_argument("--filters", type=_positive_int, default=64,
                         help="filters of the first level (default: 64)")
    summary.add_argument("--padding", choices=("valid", "same"), default="valid",
                         help="convolution padding (default: valid, as in the paper)")
    summary.add_argument("--upsampling", choices=("transpose", "bilinear"), default="transpose",
                         help="up-sampling of the expanding path (default: transpose)")
    summary.add_argument("--batch-norm", action="store_true",
                         help="batch normalisation after each convolution")
    summary.set_defaults(func=cmd_summary)
    return parser


def main(argv=None):
    """Run ``keras-unet`` with the arguments ``argv`` (default: the command line);
    return the exit status: 0, or 2 for a mistake, told in one line on stderr."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (CommandError, ValueError, OSError) as error:  # OSError: files, downloads
        message = " ".join(in_option_names(str(error), args.command).split())
        print(f"keras-unet {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = "; run the same command again to resume" if args.command == "train" else ""
        print(f"keras-unet {args.command}: interrupted{again}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
