"""Liver CT (MSD Task03 slices), split by patient: the Dice of each test patient.

    python benchmarks/liver.py --data-dir ../shared/data/liver_ct     # 6 min on 2 CPU cores
    python benchmarks/liver.py --data-dir ../shared/data/liver_ct --size 256 --filters 32 \\
        --epochs 100 --steps-per-epoch 60    # on a GPU

Trains on the 493 slices of the 98 training patients and scores the 130 slices of the 24
test patients that ``splits.csv`` names (whole patients on one side: a patient's slices
are near-twins, so a split by slice would flatter the score). The recipe is notebook 07's:
the slices (grey = the voxel value clipped to 0-255) averaged down to ``--size`` pixels a
side, a same-padding U-Net (depth 4, batch norm), the whole slices with small rotations,
scalings, shifts and intensity changes but no flips (the liver is on the patient's right),
cross-entropy + Dice, Adam with a cosine-decayed learning rate; the predicted probabilities
are resized back to 256x256 (bilinear) and cut at 0.5.

Reported: the Dice of each test patient (all its slices pooled), their mean, median and
worst, and the Dice of all test pixels pooled. Target: mean per-patient Dice >= 0.95
(nnU-Net's liver Dice on LiTS is about 0.96).

Prints Markdown tables with the machine and the date; ``--json`` keeps every figure.
"""

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from drive import fit_logged, positive, write_json  # noqa: E402  (benchmarks/drive.py)

from keras_unet import build_unet, datasets, evaluation  # noqa: E402
from keras_unet.augment import Augmentation  # noqa: E402
from keras_unet.data import make_dataset  # noqa: E402
from keras_unet.training import compile_unet  # noqa: E402
from keras_unet.tutorial import dataset_dir, machine  # noqa: E402

TARGET = 0.95  # mean per-patient Dice


def shrink(images, factor):
    """``(N, H, W, 1)`` averaged over ``factor`` x ``factor`` blocks."""
    n, h, w, c = images.shape
    return images.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path,
                        help="the liver_ct folder (default: $KERAS_UNET_DATA_DIR/liver_ct)")
    parser.add_argument("--size", type=positive(int), default=128,
                        help="train and predict at this side, 256 divided by 1, 2, 4, ... (128)")
    parser.add_argument("--filters", type=positive(int), default=8, help="(8)")
    parser.add_argument("--depth", type=positive(int), default=4, help="(4)")
    parser.add_argument("--batch-size", type=positive(int), default=16, help="(16)")
    parser.add_argument("--epochs", type=positive(int), default=30, help="(30)")
    parser.add_argument("--steps-per-epoch", type=positive(int), default=31, help="(31)")
    parser.add_argument("--learning-rate", type=positive(float), default=2e-3, help="(0.002)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    factor = 256 // args.size
    if factor * args.size != 256 or factor & (factor - 1) or args.size % 2 ** args.depth:
        parser.error(f"--size {args.size}: 256 divided by a power of 2, a multiple of "
                     f"2**depth ({2 ** args.depth})")

    started = datetime.datetime.now()
    folder = args.data_dir or dataset_dir("liver_ct")
    train, test = datasets.load_liver_ct(folder)
    owner = datasets.patients(folder)
    keras.utils.set_random_seed(args.seed)
    augment = Augmentation(flip_horizontal=False, flip_vertical=False, rotate90=False,
                           rotation=10.0, elastic=False)
    dataset = make_dataset(shrink(train.images, factor), shrink(train.masks, factor) >= 0.5,
                           augment=augment, batch_size=args.batch_size, seed=args.seed)
    model = build_unet((None, None, 1), n_classes=1, depth=args.depth, filters=args.filters,
                       batch_norm=True)
    schedule = keras.optimizers.schedules.CosineDecay(
        args.learning_rate, decay_steps=args.epochs * args.steps_per_epoch, alpha=0.05)
    compile_unet(model, loss="dice_ce", optimizer=keras.optimizers.Adam(schedule))
    patients_train = sorted({owner[s] for s in train.names})
    patients_test = sorted({owner[s] for s in test.names})
    print(f"training on {len(train.names)} slices of {len(patients_train)} patients, "
          f"{model.count_params():,} weights ...", file=sys.stderr, flush=True)
    train_minutes = fit_logged(model, dataset, args.epochs, args.steps_per_epoch)

    tick = time.perf_counter()
    small = model.predict(shrink(test.images, factor), batch_size=args.batch_size, verbose=0)
    probabilities = keras.ops.convert_to_numpy(keras.ops.image.resize(
        small, test.images.shape[1:3], interpolation="bilinear"))
    predict_seconds = time.perf_counter() - tick
    of = np.array([owner[s] for s in test.names])
    rows = []
    for patient in patients_test:
        mine = of == patient
        rows.append(dict(patient=patient, slices=int(mine.sum()),
                         liver_pixels=int(test.masks[mine].sum()),
                         dice=float(evaluation.dice(test.masks[mine], probabilities[mine]))))
    scores = np.array([row["dice"] for row in rows])
    worst = rows[int(np.argmin(scores))]
    summary = dict(mean=float(scores.mean()), median=float(np.median(scores)),
                   worst=float(scores.min()), worst_patient=worst["patient"],
                   pooled=float(evaluation.dice(test.masks, probabilities)),
                   target_met=bool(scores.mean() >= TARGET))

    command = "python benchmarks/liver.py " + " ".join(sys.argv[1:])
    print(f"Liver CT (MSD Task03 slices), split by patient (train {len(patients_train)} patients "
          f"/ {len(train.names)} slices, test {len(patients_test)} / {len(test.names)}): "
          f"{args.size}x{args.size} input, depth {args.depth}, filters {args.filters}, same "
          f"padding, batch norm, batch {args.batch_size}, {args.epochs} epochs of "
          f"{args.steps_per_epoch} steps, cross-entropy + Dice, Adam {args.learning_rate:g} "
          f"cosine-decayed, no flips; training {train_minutes:.1f} min, prediction of the "
          f"{len(test.names)} test slices {predict_seconds:.0f} s\n")
    print(f"machine: {machine()} · date: {started:%Y-%m-%d} · command: `{command.strip()}`\n")
    print("| test patient | slices | liver pixels | Dice |")
    print("| --- | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['patient']} | {row['slices']} | {row['liver_pixels']:,} | "
              f"{row['dice']:.4f} |")
    print()
    print("| per-patient Dice | value |")
    print("| --- | ---: |")
    print(f"| **mean** of {len(rows)} patients | **{summary['mean']:.4f}** |")
    print(f"| median | {summary['median']:.4f} |")
    print(f"| worst (patient {worst['patient']}) | {summary['worst']:.4f} |")
    print(f"| all test pixels pooled | {summary['pooled']:.4f} |")
    print(f"| target: mean >= {TARGET} | {'met' if summary['target_met'] else 'missed'} |")
    write_json(args, started, train_minutes=train_minutes, predict_seconds=predict_seconds,
               train_patients=patients_train, test_patients=patients_test, summary=summary,
               patients=rows)


if __name__ == "__main__":
    main()
