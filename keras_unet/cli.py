"""The ``keras-unet`` command (train, predict, evaluate, demo, info, summary): parsing and
printing. A mistake: one line on stderr in the command's options, exit status 2, nothing
half-written. TensorFlow's start-up log lines are hidden unless ``--verbose`` is given."""

import argparse
import contextlib
import csv
import importlib
import importlib.metadata
import io
import os
import platform
import re
import sys
import time
from pathlib import Path

from keras_unet import __version__, training
from keras_unet.datasets import LOADERS
from keras_unet.images import MASK_MODES, WINDOWS

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
_shape = _argument_type(lambda text: tuple(None if p.strip().lower() in ("", "none") else int(p)
                                           for p in text.split(",")), lambda v: True,
                        "HEIGHT,WIDTH,CHANNELS or DEPTH,HEIGHT,WIDTH,CHANNELS (integers; "
                        "'none' for any size)")
_sides = _argument_type(lambda text: int(text) if "," not in text else tuple(
    int(p) for p in text.split(",")), lambda v: min(v if isinstance(v, tuple) else [v]) >= 1 and
    (not isinstance(v, tuple) or len(v) == 3), "a positive integer, or D,H,W for volumes")
_pools = _argument_type(lambda text: [_sides(p) for p in text.split(";")] if ";" in text
                        else _sides(text), lambda v: True, "N, D,H,W, or D,H,W;D,H,W;... per level")


def _intensity(text):
    """``--intensity``: a name (auto, zscore, none, a CT window's) or LOW,HIGH in HU."""
    if text in ("auto", "zscore", "none", *WINDOWS):
        return text
    with contextlib.suppress(ValueError):
        low, high = map(float, text.split(","))
        if low < high:
            return (low, high)
    raise argparse.ArgumentTypeError(f"expected auto, zscore, none, {', '.join(WINDOWS)} or a "
                                     f"window LOW,HIGH (low < high); got {text!r}")


_EXAMPLE = "e.g. '0,0,0=0;255,0,0=1'"
_VERBOSE = "also show TensorFlow's start-up log lines"
_CLASSES = "number of classes (None: the largest mask value + 1), each value below it"
_FIXES = {"threshold": "Give --mask-threshold {0:g} to read the pixels above {0:g} as 1",
          "ignore_index": "If {0} marks unlabelled pixels, give --ignore-index {0}",
          "mask_mode": "Give --mask-mode {0}", "palette": "If each value is a class, give "
          "--palette '{1}'"}


def _palette(text):
    """``--palette "R,G,B=CLASS;..."`` (V=CLASS: a gray), or a file of them: {(r, g, b): class}."""
    text, palette = Path(text).read_text() if Path(text).is_file() else text, {}
    for pair in filter(None, (p.strip() for p in re.split(r"[;\n]", text))):
        with contextlib.suppress(ValueError):
            colour, index = pair.split("=")
            colour, index = tuple(int(v) for v in colour.split(",")), int(index)
            if len(colour) in (1, 3) and all(0 <= v <= 255 for v in colour) and index >= 0:
                palette[colour * (3 // len(colour))] = index  # V: (V, V, V)
                continue
        raise argparse.ArgumentTypeError(
            f"{pair!r} is not R,G,B=CLASS (0..255 each, a class index >= 0), {_EXAMPLE}"
            if "=" in text else f"{text!r} is neither a file nor R,G,B=CLASS pairs, {_EXAMPLE}")
    return palette or _palette(f"={text}")  # no pair: refused as not pairs


# The library's messages name its Python arguments; the command's name its options.
_OPTIONS = {}  # command: {its argument's dest: its option ("--batch-size")}, by make_parser
_DESTS = {"images_dir": "images", "masks_dir": "masks", "input_dir": "input", "n_classes":
          "classes", "output_dir": "output", "threshold": "mask_threshold"}  # where there is one
_NO_PALETTE = re.compile(r"pass mask_mode='palette' and palette=\{.*?\}")
# Each command's own words, applied first: (pattern, replacement) for re.sub. predict has
# no Python (image[..., :1], padding='same') and its output is an argument, not an option.
_WORDS_OF = {
    "train": [(_NO_PALETTE, "give --palette R,G,B=CLASS;... (each colour's class index)"),
              (r"\btrain again, with", "run the same command again, with")],
    "predict": [
        (r"\btile (\d+)", r"--tile \1"), (r"\buse a tile >= (\d+)", r"use --tile \1 or larger"),
        (r"with padding='(\w+)'", r"with \1 padding"),
        (r"build the model with input shape \(None, None, \d+\)",
         "use a model of any input size (keras-unet train makes those)"),
        (r"takes (\d+) \(gray: image\[\.\.\., :1\]; RGB: np\.repeat\(image, 3, -1\)\)",
         lambda m: f"takes {m[1]} (save the images as {'gray' if m[1] == '1' else 'RGB'} ones)"),
    ],
}


def in_option_names(message, command=None):
    """``message`` of a library error in the options of ``keras-unet command`` (None: any).

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
    options = {k: v for c, table in (_OPTIONS or make_parser() and _OPTIONS).items()
               if c == command or command not in _OPTIONS for k, v in table.items()}
    for name in dict.fromkeys([*options, *_DESTS]):
        if (option := options.get(_DESTS.get(name)) or options.get(name)) is None:
            continue
        # name=None / name='a' or 'b' / name=value (True: a flag) / name= / a bare name_like_this
        message = re.sub(rf"(?:leave )?\b{name}=None\b", f"leave out {option}", message)
        message = re.sub(rf"\b{name}=(?:'([^']*)'(?: or '([^']*)')?|([\w.-]*))", lambda m: " or "
                         .join(f"{option} {v}" for v in m.groups() if v not in (None, "True", ""))
                         or option, message)
        message = re.sub(rf"\b(a smaller|another|not in) {name}\b", rf"\1 {option}", message)
        message = re.sub(rf"\b{name}\b", option, message) if "_" in name else message
    return message


def _start_keras(args):
    """Import Keras and start its backend with file descriptor 2 on /dev/null: TensorFlow
    logs its start-up (absl, oneDNN, CUDA) there before any setting can hide it."""
    if args.verbose or "keras" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        import keras

        if keras.backend.backend() == "tensorflow":  # CUDA's probing (cuInit) logs here
            importlib.import_module("tensorflow").config.list_logical_devices()
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
    with contextlib.suppress(ImportError):
        importlib.import_module("absl.logging").set_verbosity("error")


def cmd_info(args):
    """``info``: versions and devices; ``summary``: a U-Net's layers."""
    _start_keras(args)
    import keras

    from keras_unet.model import build_unet

    if args.command == "summary":
        build_unet(args.input_shape, args.n_classes, depth=args.depth, filters=args.filters,
                   padding=args.padding, batch_norm=args.batch_norm, pool_size=args.pool_size,
                   upsampling=args.upsampling).summary(line_length=96)
        return 0
    versions = {str(d.metadata["Name"]).lower(): d.version
                for d in importlib.metadata.distributions()}
    rows = [("keras_unet", f"{__version__} (distribution keras-unet-paper)"),
            ("python", platform.python_version()), ("keras", keras.__version__),
            ("backend", f"{keras.backend.backend()} (set KERAS_BACKEND to change)"),
            *((n, versions.get(n, "not installed")) for n in "tensorflow jax torch numpy".split()),
            ("devices", ", ".join(training.available_devices()))]
    print("\n".join(f"{key:<11} {value}" for key, value in rows))
    return 0


def _read_folders(args, intensity="auto"):
    """The Split of --images/--masks, read as --mask-mode, --palette and the rest say (volumes
    as --intensity, or ``intensity=None``: their stored values)."""
    from keras_unet.images import MaskValuesError, from_folder

    if not (args.images and args.masks):
        raise CommandError("give --images DIR and --masks DIR" + (" (or --dataset NAME)" if
                           args.command == "train" else ", or a FOLDER holding images/, masks/"))
    if args.palette and args.mask_mode != "auto":
        raise CommandError(f"--palette reads colour-coded masks as classes; it does not go "
                           f"with --mask-mode {args.mask_mode}")
    read = dict(palette=args.palette, threshold=args.mask_threshold, ignore_index=args.ignore_index,
                n_classes=args.classes if args.classes and args.classes > 1 else None,
                intensity=intensity and args.intensity)
    try:
        split = from_folder(args.images, args.masks, mask_mode=args.mask_mode, **read)
    except MaskValuesError as error:  # multiclass: masks of 0 and 255 are the classes 0, 1
        if args.mask_mode != "multiclass" or error.fix != {"mask_mode": "binary"}:
            raise
        split = from_folder(args.images, args.masks, mask_mode="binary",
                            intensity=read["intensity"])
    return split._replace(images=list(split.images), masks=list(split.masks))


def _fingerprint(args, split=None):
    """The fingerprint of the folders (read as ``split``; volumes again, as stored), printed."""
    from keras_unet.plan import describe, fingerprint

    raw = _read_folders(args, intensity=None) if split is None or split.spacing else split
    fp = fingerprint(raw.images, raw.masks, spacing=raw.spacing, names=raw.names,
                     ignore_index=args.ignore_index)
    print("\n".join(["fingerprint of the data:", *(f"  {line}" for line in describe(fp))]))
    return fp


def cmd_fingerprint(args):
    """Print a folder's fingerprint; --output: also save it as JSON."""
    from keras_unet.plan import save_fingerprint

    if args.folder:
        args.images, args.masks = args.images or args.folder / "images", args.masks or (
            args.folder / "masks")
    fp = _fingerprint(args)
    if args.output:
        print(f"saved to {save_fingerprint(fp, args.output)}")
    return 0


def cmd_train(args):
    from keras_unet.datasets import DownloadError
    from keras_unet.images import MaskValuesError, check_not_empty, writable_folder

    if args.output.suffix != ".keras" or args.output.is_dir():
        raise CommandError(f"--output must end with .keras (a file, not a folder): {args.output}")
    for option, folder in (("--output", args.output.parent), ("--workdir", args.workdir)):
        try:  # before training, not after it
            folder and writable_folder(folder)
        except OSError as error:
            why = ("is a file" if isinstance(error, NotADirectoryError)
                   else f"takes no new file ({error.strerror or error})")
            raise CommandError(f"{option} {getattr(args, option[2:])} cannot be written: "
                               f"{error.filename} {why}; give a path in a folder you can "
                               "write to") from None
    if args.dataset and (args.images or args.masks or args.mask_threshold is not None
                         or args.palette or args.ignore_index is not None):
        raise CommandError("give either --dataset or --images and --masks (and their "
                           "--mask-threshold, --palette, --ignore-index), not both")
    classes, ignore = args.classes, args.ignore_index
    if args.palette and not classes:  # the classes the palette names, used or not
        classes = max(2, 1 + max((c for c in args.palette.values() if c != ignore), default=1))
    same = ("data_dir tile depth filters padding pool_size foreground batch_size epochs "
            "steps_per_epoch budget loss learning_rate validation_split seed workdir").split()
    try:
        split = None if args.dataset else _read_folders(args)
        images, masks = (args.dataset, None) if args.dataset else split[:2]
        if split:  # what the data holds, kept beside the model
            from keras_unet.plan import save_fingerprint

            path = save_fingerprint(_fingerprint(args, split), fingerprint_path(args.output))
            print(f"  saved to {path}")
        if empty := masks and check_not_empty(masks, ignore):
            print(f"keras-unet train: warning: {in_option_names(empty, 'train')}", file=sys.stderr)
        _start_keras(args)  # (a download shows Keras's progress bar)
        training.train(images, masks, args.output, n_classes=classes, ignore_index=ignore,
                       mask_mode=None if args.mask_mode == "auto" else args.mask_mode,
                       augment=not args.no_augment, distribution="auto" if args.distribute
                       else None, **{k: getattr(args, k) for k in same})
    except MaskValuesError as error:  # its fix (the last sentence) in the options
        if not error.fix:
            raise
        ((key, value),) = error.fix.items()
        pairs = key == "palette" and ";".join(f"{r}={c}" if r == g == b else f"{r},{g},{b}={c}"
                                              for (r, g, b), c in value.items())
        raise CommandError(f"{str(error).rsplit('. ', 1)[0]}. "
                           f"{_FIXES[key].format(value, pairs)}") from None
    except DownloadError as error:
        raise CommandError(f"{error}. Without a network, download it on another machine and "
                           f"give its folder with --data-dir") from None
    return 0


def fingerprint_path(model_path):
    """Where ``keras-unet train`` keeps the data's fingerprint: unet.fingerprint.json beside
    unet.keras."""
    return Path(model_path).with_suffix(".fingerprint.json")


def cmd_predict(args):
    """Segment a file or a folder; a ValueError is worded in the options by main()."""
    _start_keras(args)
    import keras

    from keras_unet import losses, metrics  # noqa: F401  (registers their Keras objects)
    from keras_unet.inference import predict_folder

    if not args.model.is_file():
        raise CommandError(f"model {args.model} does not exist")
    try:
        model = keras.models.load_model(args.model)
    except Exception as error:  # Keras raises many kinds for a file that is not a model
        raise CommandError(f"{args.model} is not a Keras model file (.keras): "
                           f"{str(error).splitlines()[0][:200]}") from None
    written = predict_folder(
        model, [args.input] if args.input.is_file() else args.input,
        args.output, threshold=args.threshold, probabilities=args.probabilities, tile=args.tile,
        overlap=args.overlap, tta=args.tta, batch_size=args.batch_size, overwrite=args.overwrite,
        intensity=args.intensity)
    also = f", their probabilities to {args.output / 'probabilities'}" if args.probabilities else ""
    print(f"{len(written)} mask(s) written to {args.output}{also}")
    return 0


def cmd_evaluate(args):
    """Print the scores; ``--csv s.csv``: also per image to s.csv, their mean to s_mean.csv."""
    from keras_unet.evaluation import evaluate_folders
    from keras_unet.images import MaskValuesError, write_atomically

    try:
        rows, mean = evaluate_folders(args.predictions, args.truths, classes=args.classes,
                                      tolerance=args.tolerance)
    except MaskValuesError as error:  # evaluate reads mask files as they are
        raise CommandError(f"{str(error).rsplit('. ', 1)[0] if error.fix else error}. keras-unet "
                           f"evaluate reads masks of 0/255 or 0/1 and masks of class indices 0, "
                           f"1, 2, ...: save them so (as PNG, not JPEG)") from None
    mean.pop("name")
    keys = list(mean)
    width = max(len(row["name"]) for row in rows + [{"name": "mean"}])
    lines = [f"{name:<{width}}  " + "  ".join(f"{row[k]:>11.4f}" for k in keys)
             for name, row in [*((row["name"], row) for row in rows), ("mean", mean)]]
    head = f"{'image':<{width}}  " + "  ".join(f"{k:>11}" for k in keys)
    print("\n".join([head, *lines[:-1], "-" * len(head), lines[-1]]))
    if args.csv:
        means = args.csv.with_name(f"{args.csv.stem}_mean{args.csv.suffix or '.csv'}")
        for path, table in ((args.csv, rows), (means, [{"images": len(rows), **mean}])):
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=list(table[0]), lineterminator="\n")
            writer.writerows([dict(zip(table[0], table[0])), *table])  # the header, the rows
            write_atomically(path, lambda file: file.write(text.getvalue().encode()))
        print(f"scores per image written to {args.csv}, their mean to {means}")
    return 0


def cmd_demo(args):
    """Synthetic cells: train, predict held-out images, score, draw."""
    _start_keras(args)
    import keras
    import numpy as np

    from keras_unet import datasets, evaluation, inference, tutorial, viz

    output, started = args.output, time.monotonic()
    images, masks = training.load_dataset("synthetic")
    print(f"1/4  data: {len(images)} synthetic EM-like images of 256x256 (cells 1, membranes 0)"
          "\n2/4  training a U-Net (depth 3, 16 filters) on random 128x128 tiles")
    history = training.train(images, masks, output / "unet.keras", tile=128, depth=3,
                             filters=16, batch_size=8, epochs=args.epochs, steps_per_epoch=30,
                             workdir=output / "training")
    model = keras.models.load_model(output / "unet.keras")  # as saved: uncompiled
    test_images, truths, _ = datasets.synthetic_cells(4 // (1 + tutorial.fast_mode()), size=256,
                                                      seed=1)
    print(f"3/4  segmenting {len(test_images)} new images with overlap-tile prediction")
    predictions = np.stack([inference.predict_tiled(model, image, tile=128, progress=False)
                            for image in test_images])
    scores = {"dice": evaluation.dice(truths[..., 0], predictions),
              "pixel_error": evaluation.pixel_error(truths[..., 0], predictions),
              "V_rand": evaluation.isbi_scores(predictions, truths[..., 0])["V_rand"]}
    print("4/4  held-out scores: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    figure = viz.show_predictions(test_images, truths, predictions, n=len(test_images),
                                  class_names=["membrane", "cell"])
    figure.suptitle(f"keras-unet demo: Dice {scores['dice']:.3f}, V_rand {scores['V_rand']:.3f}")
    picture = viz.save_figure(figure, output / "demo.png")
    if history is not None:  # None: the model was trained by an earlier run
        viz.save_figure(viz.plot_history(history), output / "history.png")
    print(f"done in {(time.monotonic() - started) / 60:.1f} min. Figure: {picture.resolve()}")
    return 0


def _command(sub, name, func, help, example=None, description=None):
    """``add_argument`` of a new command's parser, recording each option in _OPTIONS."""
    parser = sub.add_parser(name, help=help, description=description or help,
                            epilog=example and f"example: keras-unet {name} {example}",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.set_defaults(func=func)

    def add(*names, **options):
        action = parser.add_argument(*names, **options)
        _OPTIONS.setdefault(name, {})[action.dest] = names[0]

    add("--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE)  # also after it
    return add


def _folder_options(add):
    """The options of train and fingerprint that say where the images and masks are and how
    to read the masks."""
    add("--images", type=Path, help="folder of images (PNG, JPEG, TIFF) or volumes (NIfTI, NRRD)")
    add("--masks", type=Path, help="folder of masks with the same file names")
    add("--mask-mode", default="auto", choices=("auto", *sorted(set(MASK_MODES) - {"multilabel"})),
        type=lambda text: "multiclass" if text == "classes" else text, help="binary: masks 0/255 "
        "or 0/1; multiclass (or classes): class indices 0, 1, ... (0/255: the classes 0 and 1); "
        "auto: binary if every mask is, else multiclass")
    add("--mask-threshold", type=_non_negative_number, metavar="T", help="pixels above T are 1")
    add("--palette", type=_palette, metavar="R,G,B=CLASS;...", help="colour-coded masks: each "
        f"colour's class, {_EXAMPLE} (V=CLASS: gray), or a file of such lines")
    add("--ignore-index", type=_non_negative_int, metavar="N", help="unlabelled pixels' value")
    add("--classes", type=_positive_int, help=_CLASSES)


def make_parser():
    parser = _Parser(prog="keras-unet", description="U-Net (Ronneberger, Fischer, Brox 2015) "
                     "for Keras 3: train, predict, evaluate. Start with `keras-unet demo`.")
    parser.add_argument("--version", action="version", version=f"keras-unet {__version__}")
    parser.add_argument("--verbose", action="store_true", help=_VERBOSE)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add = _command(sub, "train", cmd_train, "train a U-Net on image and mask folders, or a dataset",
        "--images data/images --masks data/masks --output unet.keras --budget 30",
        "Train a U-Net (keras_unet.training.train), save it as a .keras file; the same command "
        "again resumes an interrupted run. The defaults: a good model on 2 CPU cores in < 1 h.")
    _folder_options(add)
    add("--dataset", choices=LOADERS, help="a known dataset instead of --images, --masks")
    add("--data-dir", type=Path, help="local copy of --dataset (None: downloaded)")
    add("--output", type=Path, default=Path("unet.keras"), help="model file")
    add("--workdir", type=Path, help="for history.csv and backups (None: <output>_training)")
    add("--tile", type=_sides, metavar="N or D,H,W", help="training tile side, or sides for "
        "volumes (None: 256, or 32,128,128, or the nearest fit)")
    add("--pool-size", type=_pools, default=2, metavar="N or D,H,W[;...]", help="pooling per "
        "axis (e.g. 1,2,2 for thick slices), or per level")
    add("--foreground", type=_probability, metavar="F", help="share of tiles centred on the "
        "foreground (None: 1/3 for volumes, 0 for images)")
    add("--intensity", type=_intensity, default="auto", metavar="NAME or LOW,HIGH", help="of "
        "volumes: auto (CT window if air is there, else z-score), zscore, a CT window")
    add("--depth", type=_positive_int, default=4, help="poolings (the paper: 4)")
    add("--filters", type=_positive_int, default=32, help="first level's (the paper: 64)")
    add("--padding", choices=("same", "valid"), default="same", help="(the paper: valid)")
    add("--batch-size", type=_positive_int, default=4, help="tiles per step")
    add("--epochs", type=_positive_int, default=25, help="at most (25: ~20 min on 2 CPU cores)")
    add("--steps-per-epoch", type=_positive_int, default=50, help="steps of an epoch")
    add("--budget", type=_positive_number, metavar="MINUTES", help="stop after this long")
    add("--loss", default="dice_ce", choices=training.LOSSES, help="loss")
    add("--learning-rate", type=_positive_number, default=1e-3, help="Adam's")
    add("--no-augment", action="store_true", help="no augmentation")
    add("--validation-split", type=_fraction, default=0.2, help="images held out")
    add("--seed", type=int, default=0, help="for a reproducible run")
    add("--distribute", action="store_true", help="data parallel on every device (and host: "
        "KERAS_DISTRIBUTION_* on JAX); --batch-size is the global batch")
    add = _command(sub, "fingerprint", cmd_fingerprint, "measure a folder of images and masks: "
                   "sizes, spacings, intensities, contrast, classes, objects", "data/ --output "
                   "fingerprint.json", "Print the dataset fingerprint (keras_unet.plan) of "
                   "FOLDER/images and FOLDER/masks, or of --images and --masks.")
    add("folder", type=Path, nargs="?", help="a folder holding images/ and masks/ (or give "
        "--images and --masks)")
    _folder_options(add)
    add("--output", type=Path, metavar="FILE.json", help="save the fingerprint here")
    add = _command(sub, "predict", cmd_predict, "segment images of any size (overlap-tile) "
                   "into masks: 0/255 or class indices", "unet.keras scans/ masks/")
    add("model", type=Path, help="a .keras model file")
    add("input", type=Path, help="an image file or a folder of images")
    add("output", type=Path, help="folder for the masks (PNGs of the images' names)")
    add("--probabilities", action="store_true", help="also float32 TIFFs in output/probabilities")
    add("--overwrite", action="store_true", help="replace the output files this run writes")
    add("--threshold", type=_probability, default=0.5, help="binary: foreground above")
    add("--tile", type=_sides, metavar="N or D,H,W", help="input tile side(s) that fit the "
        "model (None: auto)")
    add("--intensity", type=_intensity, default="auto", metavar="NAME or LOW,HIGH", help="of "
        "volumes, as in training")
    add("--overlap", type=_fraction, default=0.25, help="of neighbouring tiles")
    add("--tta", choices=("flips", "d4"), help="average over flips (4) or flips and turns (8)")
    add("--batch-size", type=_positive_int, default=8, help="tiles per call")
    add = _command(sub, "evaluate", cmd_evaluate, "score mask files against true ones of the "
                   "same names: Dice, IoU, pixel error, V_rand (volumes: Dice, IoU, HD95, "
                   "surface Dice)", "masks/ truth/ --csv s.csv")
    add("predictions", type=Path, help="folder of predicted masks")
    add("truths", type=Path, help="folder of true masks")
    add("--classes", type=_positive_int, help=_CLASSES)
    add("--tolerance", type=_positive_number, default=1.0, metavar="MM", help="of the "
        "surface Dice (volumes)")
    add("--csv", type=Path, metavar="FILE.csv", help="scores per image (their mean: FILE_mean.csv)")
    add = _command(sub, "demo", cmd_demo, "synthetic cells end to end: train, predict, score, "
                   "draw (a few minutes on a CPU)")
    add("--output", type=Path, default=Path("keras-unet-demo"), help="folder for the results")
    add("--epochs", type=_positive_int, default=12, help="epochs")
    _command(sub, "info", cmd_info, "versions, Keras backend and visible devices")
    add = _command(sub, "summary", cmd_info, "build a U-Net and print its layers (the "
                   "defaults: the 2015 paper's, 31,030,658 parameters)")
    add("--input-shape", type=_shape, default=(572, 572, 1), metavar="H,W,C", help="input")
    add("--n-classes", type=_positive_int, default=2, help="output classes")
    add("--depth", type=_positive_int, default=4, help="number of poolings")
    add("--filters", type=_positive_int, default=64, help="filters of the first level")
    add("--padding", choices=("valid", "same"), default="valid", help="(the paper: valid)")
    add("--upsampling", choices=("transpose", "bilinear"), default="transpose", help="kind")
    add("--batch-norm", action="store_true", help="batch normalisation after each convolution")
    add("--pool-size", type=_pools, default=2, metavar="N or D,H,W[;...]", help="per axis/level")
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
    except (CommandError, ValueError, OSError, ImportError) as error:  # OSError: files
        message = " ".join(in_option_names(str(error), args.command).split())
        print(f"keras-unet {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = "; run the same command again to resume" if args.command == "train" else ""
        print(f"keras-unet {args.command}: interrupted{again}", file=sys.stderr)
        return 130
