"""DRIVE retinal vessels, the official split: F1 and ROC AUC inside the field of view.

    python benchmarks/drive.py --data-dir ../shared/data/drive              # 6 min on 2 CPU cores
    python benchmarks/drive.py --data-dir ../shared/data/drive --filters 32 --epochs 100   # on a GPU

Trains on the 20 training images (21-40) and scores the 20 test images (01-20) against
the first observer's masks, counting only the pixels inside each image's field-of-view
(FOV) mask, as the literature does. The recipe is notebook 04's: a same-padding U-Net
(depth 4, batch norm) on the three colour channels, random 128x128 tiles with the
default augmentation, cross-entropy + Dice, Adam with a cosine-decayed learning rate,
and overlap-tile prediction of each whole test image averaged over flips.

Reported: F1 (= Dice) at the threshold 0.5 and ROC AUC, both pooled over every FOV
pixel of the test set (the usual convention), and the mean of the per-image figures.
Targets: F1 >= 0.815, AUC >= 0.975 (the original U-Net as reported in the vessel
literature: F1 0.814, AUC 0.976).

Prints Markdown tables with the machine and the date; ``--json`` keeps every figure.
"""

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_unet import build_unet, datasets, evaluation, inference  # noqa: E402
from keras_unet.data import make_dataset  # noqa: E402
from keras_unet.training import compile_unet  # noqa: E402
from keras_unet.tutorial import dataset_dir, machine  # noqa: E402

TARGETS = {"f1": 0.815, "auc": 0.975}


def fit_logged(model, dataset, epochs, steps_per_epoch):
    """``model.fit`` with a line per epoch (loss, Dice) on stderr; the minutes it took."""
    tick = time.perf_counter()
    log = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: print(
        f"  epoch {epoch + 1}/{epochs}: loss {logs['loss']:.4f}, dice {logs['dice']:.4f}",
        file=sys.stderr, flush=True))
    model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch,
              shuffle=False, callbacks=[log], verbose=0)  # make_dataset shuffles
    return (time.perf_counter() - tick) / 60


def write_json(args, started, **figures):
    """With ``--json``: the settings (paths as text), the machine, the date and ``figures``."""
    if args.json:
        args.json.write_text(json.dumps(
            {"settings": vars(args) | {"data_dir": str(args.data_dir), "json": str(args.json)},
             "machine": machine(), "date": f"{started:%Y-%m-%d}", **figures}, indent=1))


def positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0; got {text}")
        return value
    return parse


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path,
                        help="the DRIVE folder (default: $KERAS_UNET_DATA_DIR/drive, else the cache)")
    parser.add_argument("--filters", type=positive(int), default=16, help="(16)")
    parser.add_argument("--depth", type=positive(int), default=4, help="(4)")
    parser.add_argument("--tile", type=positive(int), default=128, help="(128)")
    parser.add_argument("--batch-size", type=positive(int), default=8, help="(8)")
    parser.add_argument("--epochs", type=positive(int), default=50, help="(50)")
    parser.add_argument("--steps-per-epoch", type=positive(int), default=40, help="(40)")
    parser.add_argument("--learning-rate", type=positive(float), default=1e-3, help="(0.001)")
    parser.add_argument("--tta", choices=("none", "flips", "d4"), default="flips",
                        help="test-time augmentation (flips)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()

    started = datetime.datetime.now()
    train, test = datasets.load_drive(args.data_dir or dataset_dir("drive"))
    if test.masks is None:
        sys.exit("this copy of DRIVE has no test masks (1st_manual); they are needed to score")
    keras.utils.set_random_seed(args.seed)
    dataset = make_dataset(train.images, train.masks, tile=args.tile, augment=True,
                           batch_size=args.batch_size, seed=args.seed)
    model = build_unet((None, None, 3), n_classes=1, depth=args.depth, filters=args.filters,
                       batch_norm=True)
    schedule = keras.optimizers.schedules.CosineDecay(
        args.learning_rate, decay_steps=args.epochs * args.steps_per_epoch, alpha=0.05)
    compile_unet(model, loss="dice_ce", optimizer=keras.optimizers.Adam(schedule))
    print(f"training on {len(train.images)} images, {model.count_params():,} weights ...",
          file=sys.stderr, flush=True)
    train_minutes = fit_logged(model, dataset, args.epochs, args.steps_per_epoch)

    tick = time.perf_counter()
    tta = None if args.tta == "none" else args.tta
    probabilities = []
    for name, image in zip(test.names, test.images):
        print(f"  predicting test image {name}", file=sys.stderr, flush=True)
        probabilities.append(inference.predict_tiled(model, image, tta=tta, progress=False))
    probabilities = np.stack(probabilities)
    predict_seconds = time.perf_counter() - tick
    rows = []
    for name, truth, probability, fov in zip(test.names, test.masks, probabilities, test.fov):
        scores = evaluation.precision_recall_f1(truth, probability, mask=fov)
        scores["auc"] = evaluation.roc_auc(truth, probability, mask=fov)
        rows.append(dict(name=name, **{k: float(v) for k, v in scores.items()}))
    pooled = evaluation.precision_recall_f1(test.masks, probabilities, mask=test.fov)
    pooled["auc"] = evaluation.roc_auc(test.masks, probabilities, mask=test.fov)
    pooled = {k: float(v) for k, v in pooled.items()}
    mean = {k: float(np.mean([row[k] for row in rows])) for k in ("precision", "recall", "f1", "auc")}

    command = "python benchmarks/drive.py " + " ".join(sys.argv[1:])
    print(f"DRIVE, official split (train 21-40, test 01-20), scored inside the FOV: depth "
          f"{args.depth}, filters {args.filters}, same padding, batch norm, tiles {args.tile}, "
          f"batch {args.batch_size}, {args.epochs} epochs of {args.steps_per_epoch} steps, "
          f"cross-entropy + Dice, Adam {args.learning_rate:g} cosine-decayed, TTA {args.tta}; "
          f"training {train_minutes:.1f} min, prediction of the 20 test images "
          f"{predict_seconds:.0f} s\n")
    print(f"machine: {machine()} · date: {started:%Y-%m-%d} · command: `{command.strip()}`\n")
    print("| test image | precision | recall | F1 | ROC AUC |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['name']} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} "
              f"| {row['auc']:.4f} |")
    print(f"| mean of the images | {mean['precision']:.4f} | {mean['recall']:.4f} "
          f"| {mean['f1']:.4f} | {mean['auc']:.4f} |")
    print(f"| **pooled** (every FOV pixel) | {pooled['precision']:.4f} | {pooled['recall']:.4f} "
          f"| **{pooled['f1']:.4f}** | **{pooled['auc']:.4f}** |")
    verdict = lambda key: "met" if pooled[key] >= TARGETS[key] else "missed"  # noqa: E731
    print(f"| target | | | >= {TARGETS['f1']}: {verdict('f1')} | >= {TARGETS['auc']}: "
          f"{verdict('auc')} |")
    write_json(args, started, train_minutes=train_minutes, predict_seconds=predict_seconds,
               pooled=pooled, mean=mean, images=rows)


if __name__ == "__main__":
    main()
