"""The ``keras-unet`` command.

    keras-unet --version
    keras-unet info        versions, Keras backend and the devices it sees
    keras-unet summary     build a U-Net and print its layers (default: the 2015 paper's)
"""

import argparse
import importlib.metadata
import os
import platform
import sys

from keras_unet import __version__

DISTRIBUTION = "keras-unet-paper"


def _version(module):
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return None


def cmd_info(args):
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
    from keras_unet.model import build_unet

    try:
        model = build_unet(
            args.input_shape, args.n_classes, depth=args.depth, filters=args.filters,
            padding=args.padding, batch_norm=args.batch_norm, upsampling=args.upsampling,
        )
    except ValueError as err:
        print(f"keras-unet summary: error: {err}", file=sys.stderr)
        return 2
    model.summary(line_length=96)
    return 0


def make_parser():
    parser = argparse.ArgumentParser(
        prog="keras-unet",
        description="U-Net (Ronneberger, Fischer, Brox 2015) for Keras 3.",
    )
    parser.add_argument("--version", action="version", version=f"keras-unet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser("info", help="versions, Keras backend and visible devices")
    info.set_defaults(func=cmd_info)

    summary = sub.add_parser(
        "summary",
        help="build a U-Net and print its layers",
        description="Build a U-Net and print its layer table. The defaults are the 2015 "
        "paper's network: 572x572x1 in, 388x388x2 out, 31,030,658 parameters.",
    )
    summary.add_argument("--input-shape", type=_shape, default=(572, 572, 1),
                         metavar="H,W,C", help="input shape (default: 572,572,1)")
    summary.add_argument("--n-classes", type=int, default=2, help="output classes (default: 2)")
    summary.add_argument("--depth", type=int, default=4, help="number of poolings (default: 4)")
    summary.add_argument("--filters", type=int, default=64,
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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
