"""The ``keras-unet`` command: parsing and printing; the work is the library's.

    keras-unet train     images + masks (or a dataset) -> a trained .keras model
    keras-unet predict   a model + images of any size -> mask PNGs (overlap-tile)
    keras-unet evaluate  predicted vs true masks -> Dice, IoU, pixel error (V_rand)
    keras-unet demo      synthetic cells end to end in a few minutes on a CPU
    keras-unet info      versions, Keras backend and the devices it sees
    keras-unet summary   build a U-Net and print its layers (default: the 2015 paper's)

A mistake is one line on stderr in the command's options, exit status 2, with nothing
half-written. TensorFlow's start-up log lines are hidden unless ``--verbose`` is given.
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

from keras_unet import __version__, training
from keras_unet.datasets import LOADERS
from keras_unet.images import MASK_MODES

DISTRIBUTION = "keras-unet-paper"


class CommandError(Exception):
    """A problem the user can fix: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # a mistake in the command line: one line
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _argument_type(convert, ok, expected):
    """An argparse type: ``convert(text)`` where ``ok`` takes it (NaN fails every test)."""
    def parse(text):
        with contextlib.suppress(ValueError):
            if ok(value := convert(text)):
                return value
        raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")

    return parse


_positive_int = _argument_type(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _argument_type(int, lambda v: v >= 0, "an integer >= 0")
_positive_number = _argument_type(float, lambda v: 0 < v < float("inf"), "a positive number")
_non_negative_number = _argument_type(float, lambda v: 0 <= v < float("inf"), "a number >= 0")
_fraction = _argument_type(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
_probability = _argument_type(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def _palette(text):
    """``--palette``: ``"R,G,B=CLASS;..."`` (``V=CLASS``: a gray level), inline or in a
    file (pairs one a line or ``;``-separated), as a ``{(r, g, b): class}`` dict."""
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
                         "ignore_index": "--ignore-index", "palette": "--palette",
                         "steps_per_epoch": "--steps-per-epoch", "seed": "--seed",
                         "validation_split": "--validation-split"},
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
        (r"\b(another |^)(output|workdir)\b", r"\1--\2"),
        (r"\ba smaller depth\b", "a smaller --depth"),
        (r"\btrain again, with", "run the same command again, with"),
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
    """``message`` of a library error in the options of ``keras-unet command``.

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


def _start_keras(args):
    """Import Keras and start its backend once, with file descriptor 2 on /dev/null:
    TensorFlow writes its start-up log lines (absl, oneDNN, CUDA) there before any setting
    can hide them. Each command calls it once it has checked what it can without Keras."""
    if args.verbose or "keras" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_logical_devices()  # CUDA's probing (cuInit) logs here
    except ImportError as error:
        raise CommandError(f"cannot start Keras: {error} (--verbose shows its log)") from None
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
    with contextlib.suppress(ImportError):
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)


def cmd_info(args):
    _start_keras(args)
    import keras

    def version(name):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(name)
        return "not installed"

    rows = [("keras_unet", f"{__version__} (distribution {DISTRIBUTION})"),
            ("python", platform.python_version()), ("keras", keras.__version__),
            ("backend", f"{keras.backend.backend()} (set KERAS_BACKEND to change)"),
            *((name, version(name)) for name in ("tensorflow", "jax", "torch", "numpy")),
            ("devices", ", ".join(training.available_devices()))]
    print("\n".join(f"{key:<11} {value}" for key, value in rows))
    return 0


def _shape(text):
    try:
        return tuple(None if p.strip().lower() in ("", "none") else int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HEIGHT,WIDTH,CHANNELS (integers; "
                                         f"'none' for any size)") from None


def cmd_summary(args):
    _start_keras(args)
    from keras_unet.model import build_unet

    build_unet(args.input_shape, args.n_classes, depth=args.depth, filters=args.filters,
               padding=args.padding, batch_norm=args.batch_norm,
               upsampling=args.upsampling).summary(line_length=96)
    return 0


def _mask_advice(error, command="train"):
    """A :class:`~keras_unet.images.MaskValuesError`'s message with its fix (the last
    sentence) in the options of ``keras-unet command``."""
    facts = str(error).rsplit(". ", 1)[0] if error.fix else str(error)
    if command != "train":  # evaluate reads mask files as they are
        return (f"{facts}. keras-unet {command} reads masks of 0/255 or 0/1 and masks of "
                f"class indices 0, 1, 2, ...: save them so (as PNG, not JPEG)")
    if not error.fix:
        return str(error)
    ((key, value),) = error.fix.items()
    if key == "palette":
        pairs = ";".join(f"{r}={c}" if r == g == b else f"{r},{g},{b}={c}"
                         for (r, g, b), c in value.items())
        return f"{facts}. If each value is a class, give --palette '{pairs}'"
    if key == "threshold":
        return f"{facts}. Give --mask-threshold {value:g} to read the pixels above {value:g} as 1"
    if key == "ignore_index":
        return f"{facts}. If {value} marks unlabelled pixels, give --ignore-index {value}"
    return f"{facts}. Give --mask-mode {value}"


def _read_folders(args):
    """(images, masks) of --images/--masks, read as --mask-mode, --palette and the rest say."""
    from keras_unet.images import MaskValuesError, from_folder

    if not (args.images and args.masks):
        raise CommandError("give --images DIR and --masks DIR (or --dataset NAME)")
    mode = "palette" if args.palette else args.mask_mode
    if args.palette and args.mask_mode != "auto":
        raise CommandError(f"--palette reads colour-coded masks as classes; it does not go "
                           f"with --mask-mode {args.mask_mode}")
    read = dict(palette=args.palette, threshold=args.mask_threshold, ignore_index=args.ignore_index,
                n_classes=args.classes if args.classes and args.classes > 1 else None)
    try:
        split = from_folder(args.images, args.masks, mask_mode=mode, **read)
    except MaskValuesError as error:
        if mode != "multiclass" or error.fix != {"mask_mode": "binary"}:
            raise
        # --mask-mode multiclass: masks of only 0 and 255 are the classes 0 and 1
        split = from_folder(args.images, args.masks, mask_mode="binary")
    return list(split.images), list(split.masks)


def _refuse_unwritable(path, option, folder=False):
    """Refuse, before any training, a ``path`` whose nearest existing folder takes no new
    file (:func:`keras_unet.images.writable_folder`)."""
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


def cmd_train(args):
    from keras_unet.datasets import DownloadError
    from keras_unet.images import MaskValuesError, check_not_empty

    if args.output.exists() and not args.output.is_file():
        raise CommandError(f"--output {args.output} is a folder; give a file name like unet.keras")
    if args.output.suffix != ".keras":
        raise CommandError(f"--output must end with .keras; got {args.output}")
    _refuse_unwritable(args.output, "--output")  # before training, not after it
    if args.workdir:
        _refuse_unwritable(args.workdir, "--workdir", folder=True)
    if args.dataset and (args.images or args.masks or args.mask_threshold is not None
                         or args.palette or args.ignore_index is not None):
        raise CommandError("give either --dataset or --images and --masks (and their "
                           "--mask-threshold, --palette, --ignore-index), not both")
    classes, ignore = args.classes, args.ignore_index
    if args.palette and not classes:  # the classes the palette names, used or not
        classes = max(2, 1 + max((c for c in args.palette.values() if c != ignore), default=1))
    try:
        images, masks = (args.dataset, None) if args.dataset else _read_folders(args)
        empty = masks and check_not_empty(masks, ignore)
        if empty:
            print(f"keras-unet train: warning: {in_option_names(empty, 'train')}",
                  file=sys.stderr)
        _start_keras(args)  # (a download shows Keras's progress bar)
        same = ("data_dir", "tile", "depth", "filters", "padding", "batch_size", "epochs",
                "steps_per_epoch", "budget", "loss", "learning_rate", "validation_split",
                "seed", "workdir")
        training.train(images, masks, args.output, n_classes=classes, ignore_index=ignore,
                       mask_mode=None if args.mask_mode == "auto" else args.mask_mode,
                       augment=not args.no_augment, **{k: getattr(args, k) for k in same})
    except MaskValuesError as error:
        raise CommandError(_mask_advice(error)) from None
    except DownloadError as error:
        raise CommandError(f"{error}. Without a network, download it on another machine and "
                           f"give its folder with --data-dir") from None
    return 0


def _load_model(path):
    """The model saved at ``path`` (an existing file), with this package's losses and metrics."""
    import keras

    from keras_unet import losses, metrics  # noqa: F401  (registers their Keras objects)

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
    """Print the scores; ``--csv s.csv`` also writes them per image to s.csv, their mean to
    s_mean.csv."""
    from keras_unet.evaluation import evaluate_folders
    from keras_unet.images import MaskValuesError

    try:
        rows, mean = evaluate_folders(args.predictions, args.truths, classes=args.classes)
    except MaskValuesError as error:
        raise CommandError(_mask_advice(error, "evaluate")) from None
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


def cmd_demo(args):
    """Synthetic cells: train, predict held-out images, score, draw."""
    _start_keras(args)
    import numpy as np

    from keras_unet import evaluation, viz
    from keras_unet.datasets import synthetic_cells
    from keras_unet.inference import predict_tiled
    from keras_unet.tutorial import fast_mode

    output = args.output
    output.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    images, masks = training.load_dataset("synthetic")
    print(f"1/4  data: {len(images)} synthetic EM-like images of 256x256 "
          f"(cells 1, membranes 0)")
    print("2/4  training a U-Net (depth 3, 16 filters) on random 128x128 tiles")
    history = training.train(images, masks, output / "unet.keras", tile=128, depth=3,
                             filters=16, batch_size=8, epochs=args.epochs, steps_per_epoch=30,
                             workdir=output / "training")
    model = _load_model(output / "unet.keras")
    test_images, test_masks, _ = synthetic_cells(2 if fast_mode() else 4, size=256, seed=1)
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


def _train_parser(sub, common):
    train = sub.add_parser(
        "train", parents=[common], help="train a U-Net on folders of images and masks, or a "
        "dataset", description="Train a U-Net (keras_unet.training.train) and save it as a "
        ".keras file. Binary or multi-class is read from the masks (0/255 or 0/1: binary; "
        "small integers: classes) unless --mask-mode says. The defaults give a good model on "
        "a 2-core CPU in well under an hour: 256x256 tiles, augmentation (elastic included), "
        "batch normalisation, Dice + cross-entropy, the best epoch by validation loss. Run "
        "the same command again after an interruption to resume (a backup of a run with "
        "other options is not resumed); a NaN loss stops the run (exit 2), keeping the best "
        "model before it. Once the run is over, only history.csv is left in the --workdir.",
        epilog="example: keras-unet train --images data/images --masks data/masks "
        "--output unet.keras --budget 30")
    source = train.add_argument_group("data (one of)").add_argument
    source("--images", type=Path, help="folder of images (PNG, JPEG, TIFF)")
    source("--masks", type=Path, help="folder of masks with the same file names")
    source("--dataset", choices=LOADERS, help="a known dataset instead")
    source("--data-dir", type=Path, help="local copy of --dataset (else downloaded)")
    add = train.add_argument
    # the modes a mask file is read in (multilabel: no file form; palette: --palette)
    add("--mask-mode", default="auto", choices=[m for m in dict.fromkeys(("auto", *MASK_MODES))
                                                if m not in ("multilabel", "palette")],
        type=lambda text: "multiclass" if text == "classes" else text,
        help="binary: masks 0/255 or 0/1, one sigmoid output; multiclass (or 'classes'): pixel "
        "values are class indices 0, 1, 2, ... (0/255 masks: the classes 0 and 1), softmax "
        "outputs; auto (default): binary if every mask is 0/255 or 0/1, else multiclass")
    add("--mask-threshold", type=_non_negative_number, metavar="T",
        help="binary masks: the pixels above T (in the files' scale, e.g. 127 for 8-bit) are "
        "1, the rest 0; for JPEG masks or masks with smoothed edges")
    add("--palette", type=_palette, metavar="R,G,B=CLASS;...",
        help="colour-coded masks: each colour's class, e.g. '0,0,0=0;255,0,0=1' (V=CLASS for "
        "V,V,V=CLASS), or a file of such pairs, one a line; other colours are an error")
    add("--ignore-index", type=_non_negative_int, metavar="N",
        help="the mask value of unlabelled pixels (e.g. 255), left out of the loss and metrics")
    add("--classes", type=_positive_int, help="number of classes (default: the largest class "
        "index + 1), e.g. 21 for masks that show 0 and 15; every value must be below it")
    add("--output", type=Path, default=Path("unet.keras"), help="model file (unet.keras)")
    add("--workdir", type=Path, help="history.csv, and while training the backups and the "
        "best model so far (default: <output>_training)")
    add = train.add_argument_group("model and training").add_argument
    add("--tile", type=_positive_int, help="training tile side (default 256, or the nearest "
        "size below it that fits); it must fit the network, as for predict")
    add("--depth", type=_positive_int, default=4, help="poolings (4, the paper)")
    add("--filters", type=_positive_int, default=32, help="first level's (32; the paper 64)")
    add("--padding", choices=("same", "valid"), default="same", help="(same; the paper valid)")
    add("--batch-size", type=_positive_int, default=4, help="tiles per step (4)")
    add("--epochs", type=_positive_int, default=25, help="at most (25: ~20 min on 2 CPU cores)")
    add("--steps-per-epoch", type=_positive_int, default=50, help="(50)")
    add("--budget", type=_positive_number, metavar="MINUTES", help="stop after this long")
    add("--loss", default="dice_ce", choices=training.LOSSES, help="(dice_ce)")
    add("--learning-rate", type=_positive_number, default=1e-3, help="(0.001)")
    add("--no-augment", action="store_true", help="no augmentation")
    add("--validation-split", type=_fraction, default=0.2, help="images held out (0.2)")
    add("--seed", type=int, default=0, help="for a reproducible run (0)")
    train.set_defaults(func=cmd_train)


def make_parser():
    parser = _Parser(prog="keras-unet", description="U-Net (Ronneberger, Fischer, Brox 2015) "
                     "for Keras 3: train, predict, evaluate. Start with `keras-unet demo`.")
    parser.add_argument("--version", action="version", version=f"keras-unet {__version__}")
    verbose = dict(action="store_true", help="also show TensorFlow's start-up log lines")
    parser.add_argument("--verbose", **verbose)
    # also accepted after the command; SUPPRESS keeps a --verbose given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", **verbose, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _train_parser(sub, common)

    predict = sub.add_parser(
        "predict", parents=[common], help="segment images of any size with a trained model",
        description="Segment an image file or every image of a folder (overlap-tile) and "
        "write mask PNGs of the same names: 0/255 (binary model) or class indices.",
        epilog="example: keras-unet predict unet.keras scans/ masks/")
    add = predict.add_argument
    add("model", type=Path, help="a .keras model file")
    add("input", type=Path, help="an image file or a folder of images")
    add("output", type=Path, help="folder for the masks")
    add("--probabilities", action="store_true", help="also write the scores as float32 TIFFs "
        "in <output>/probabilities/ (the output folder holds masks only)")
    add("--overwrite", action="store_true", help="replace the files of the output folder that "
        "this run writes (without it, the run stops before predicting if any exists)")
    add("--threshold", type=_probability, default=0.5, help="binary: foreground above (0.5)")
    add("--tile", type=_positive_int, help="input tile side that fits the model (automatic)")
    add("--overlap", type=_fraction, default=0.25, help="(0.25)")
    add("--tta", choices=("flips", "d4"), help="average over flips (4) or flips and turns (8)")
    add("--batch-size", type=_positive_int, default=8, help="tiles per call (8)")
    predict.set_defaults(func=cmd_predict)

    evaluate = sub.add_parser(
        "evaluate", parents=[common], help="score predicted masks against true masks",
        description="Compare mask files matched by name: Dice, IoU and pixel error per image "
        "and their mean; V_rand (ISBI 2012) too for binary masks.",
        epilog="example: keras-unet evaluate masks/ truth/ --csv scores.csv")
    add = evaluate.add_argument
    add("predictions", type=Path, help="folder of predicted masks")
    add("truths", type=Path, help="folder of true masks")
    add("--classes", type=_positive_int, help="number of classes (default: the largest class "
        "index + 1); every mask value must be below it")
    add("--csv", type=Path, metavar="FILE.csv", help="also write the scores per image to "
        "FILE.csv and their mean (with the number of images) to FILE_mean.csv")
    evaluate.set_defaults(func=cmd_evaluate)

    demo = sub.add_parser(
        "demo", parents=[common], help="synthetic cells end to end: train, predict, score, draw",
        description="Train a small U-Net on synthetic EM-like cells (no download), segment "
        "new images, print their scores and write a figure. A few minutes on a CPU.")
    demo.add_argument("--output", type=Path, default=Path("keras-unet-demo"),
                      help="folder for the model and figures (keras-unet-demo)")
    demo.add_argument("--epochs", type=_positive_int, default=12, help="(12)")
    demo.set_defaults(func=cmd_demo)
    sub.add_parser("info", parents=[common], help="versions, Keras backend and visible "
                   "devices").set_defaults(func=cmd_info)

    summary = sub.add_parser(
        "summary", parents=[common], help="build a U-Net and print its layers",
        description="Build a U-Net and print its layer table. The defaults are the 2015 "
        "paper's network: 572x572x1 in, 388x388x2 out, 31,030,658 parameters.")
    add = summary.add_argument
    add("--input-shape", type=_shape, default=(572, 572, 1), metavar="H,W,C", help="(572,572,1)")
    add("--n-classes", type=_positive_int, default=2, help="output classes (2)")
    add("--depth", type=_positive_int, default=4, help="number of poolings (4)")
    add("--filters", type=_positive_int, default=64, help="filters of the first level (64)")
    add("--padding", choices=("valid", "same"), default="valid", help="(valid: the paper's)")
    add("--upsampling", choices=("transpose", "bilinear"), default="transpose", help="(transpose)")
    add("--batch-norm", action="store_true", help="batch normalisation after each convolution")
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
