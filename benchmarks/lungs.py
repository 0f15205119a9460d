"""Lungs and cardiomediastinum in chest X-rays (42 images, 35 patients): held-out patients.

    python benchmarks/lungs.py --data-dir ../shared/data/lung_cxr    # about 12 min on 2 CPU cores
    python benchmarks/lungs.py --data-dir ../shared/data/lung_cxr --size 512 --filters 32 \\
        --steps 3000    # on a GPU

Trains on the X-rays of 28 patients and scores the held-out 7 (``load_lung_cxr``'s split:
20 % of the patients drawn with a fixed seed; a patient's X-rays stay on one side). The
recipe is notebook 06's: every X-ray resized whole to ``--size`` a side (bilinear with
antialiasing; masks nearest), a same-padding U-Net (depth 4, batch norm, softmax over
background, the patient's left lung, right lung and cardiomediastinum), Dice + cross-entropy,
small rotations, scalings, shifts and intensity changes but no flips (a flip would swap left
and right), Adam with a cosine-decayed learning rate. The probabilities are resized back to
each X-ray's own size, where the arg-max is scored. With ``--multilabel`` the network has one
sigmoid per structure instead and is scored against the complete, overlapping structures of
``labels/`` (the lungs behind the heart included).

Reported: the Dice of each structure on each held-out X-ray, their means over the X-rays, and
the share of lung pixels given to the other lung. Targets: each lung >= 0.95 and the
cardiomediastinum >= 0.90 (U-Nets report about 0.98 lung F1 on the cleaner Montgomery and JSRT
sets; these 42 X-rays include figures from case reports with arrows and text burned in).

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
from drive import positive, write_json  # noqa: E402  (benchmarks/drive.py)

from keras_unet import build_unet, datasets, evaluation  # noqa: E402
from keras_unet.augment import Augmentation  # noqa: E402
from keras_unet.data import make_dataset  # noqa: E402
from keras_unet.training import compile_unet  # noqa: E402
from keras_unet.tutorial import dataset_dir, machine  # noqa: E402

STRUCTURES = datasets.LUNG_CLASSES[1:]
TARGETS = dict(left_lung=0.95, right_lung=0.95, cardiomediastinum=0.90)


def resized(x, shape, nearest=False):
    """An ``(H, W, C)`` array at ``shape``: bilinear with antialiasing in [0, 1], or nearest."""
    out = keras.ops.convert_to_numpy(keras.ops.image.resize(
        np.asarray(x, np.float32), shape, antialias=not nearest,
        interpolation="nearest" if nearest else "bilinear"))
    return out if nearest else np.clip(out, 0, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="the lung_cxr folder "
                        "(default: $KERAS_UNET_DATA_DIR/lung_cxr)")
    parser.add_argument("--multilabel", action="store_true",
                        help="one sigmoid per structure, scored against labels/")
    parser.add_argument("--size", type=positive(int), default=192, help="(192)")
    parser.add_argument("--filters", type=positive(int), default=16, help="(16)")
    parser.add_argument("--depth", type=positive(int), default=4, help="(4)")
    parser.add_argument("--batch-size", type=positive(int), default=8, help="(8)")
    parser.add_argument("--steps", type=positive(int), default=800, help="(800)")
    parser.add_argument("--learning-rate", type=positive(float), default=2e-3, help="(0.002)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    if args.size % 2 ** args.depth:
        parser.error(f"--size {args.size}: a multiple of 2**depth ({2 ** args.depth})")

    started, tick = datetime.datetime.now(), time.perf_counter()
    folder = args.data_dir or dataset_dir("lung_cxr")
    train, test = datasets.load_lung_cxr(folder, multilabel=args.multilabel)
    side = (args.size, args.size)
    x = np.stack([resized(image, side) for image in train.images])
    y = np.stack([resized(mask, side, nearest=True) for mask in train.masks])
    keras.utils.set_random_seed(args.seed)
    augment = Augmentation(flip_horizontal=False, flip_vertical=False, rotate90=False,
                           rotation=10.0, elastic=False)
    data = make_dataset(x, y if args.multilabel else y.astype(np.int32), augment=augment,
                        batch_size=args.batch_size, seed=args.seed)
    model = build_unet((None, None, 1), 3 if args.multilabel else 4, depth=args.depth,
                       filters=args.filters, batch_norm=True, multilabel=args.multilabel)
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate,
                                                      decay_steps=args.steps, alpha=0.05)
    compile_unet(model, loss="dice_ce", optimizer=keras.optimizers.Adam(schedule))
    print(f"training on {len(train.names)} X-rays for {args.steps} steps ...", file=sys.stderr)
    model.fit(data, epochs=1, steps_per_epoch=args.steps, verbose=0)
    trained = time.perf_counter() - tick

    rows = []
    for name, image, truth in zip(test.names, test.images, test.masks):
        scores = resized(model.predict(resized(image, side)[None], verbose=0)[0], image.shape[:2])
        if args.multilabel:
            dice, lungs = evaluation.dice(truth, scores, mode="multilabel")["per_label"], None
        else:
            labels = scores.argmax(-1)[..., None].astype(np.int32)
            dice = evaluation.dice(truth, labels, n_classes=4)["per_class"][1:]
            inside = np.isin(truth, (1, 2))  # lung pixels called the other lung
            lungs = float(np.mean(labels[inside] == 3 - truth[inside]))
        rows.append(dict(name=name, width=image.shape[1], height=image.shape[0],
                         **{s: float(d) for s, d in zip(STRUCTURES, dice)}, other_lung=lungs))
    mean = {s: float(np.mean([r[s] for r in rows])) for s in STRUCTURES}
    minutes = (time.perf_counter() - tick) / 60

    command = "python benchmarks/lungs.py " + " ".join(sys.argv[1:])
    kind = ("one sigmoid per structure, scored against the complete structures (labels/)"
            if args.multilabel else "softmax over 4 classes (the cardiomediastinum wins where "
            "it overlaps a lung)")
    print(f"Chest X-ray lungs ({len(train.names)} training X-rays, {len(test.names)} held-out "
          f"of {len({datasets.patients(folder)[n] for n in test.names})} patients): resized to "
          f"{args.size}x{args.size}, scored at each X-ray's size; depth {args.depth}, filters "
          f"{args.filters} ({model.count_params():,} weights), batch norm, {kind}; Dice + "
          f"cross-entropy, batch {args.batch_size}, {args.steps} steps, Adam "
          f"{args.learning_rate:g} cosine-decayed, no flips, seed {args.seed}; trained in "
          f"{trained / 60:.1f} min, {minutes:.1f} min in all\n")
    print(f"machine: {machine()} · date: {started:%Y-%m-%d} · command: `{command.strip()}`\n")
    extra = "" if args.multilabel else " other lung |"
    print("| held-out X-ray | size | " + " | ".join(STRUCTURES) + " |" + extra)
    print("| --- | ---: | " + " | ".join("---:" for _ in STRUCTURES) + " |"
          + ("" if args.multilabel else " ---: |"))
    for r in rows:
        other = "" if args.multilabel else f" {r['other_lung']:.2%} |"
        print(f"| {r['name']} | {r['width']}x{r['height']} | "
              + " | ".join(f"{r[s]:.4f}" for s in STRUCTURES) + " |" + other)
    other = "" if args.multilabel else \
        f" {np.mean([r['other_lung'] for r in rows]):.2%} |"
    print("| **mean** | | " + " | ".join(f"**{mean[s]:.4f}**" for s in STRUCTURES) + " |" + other)
    print("| target | | " + " | ".join(
        f">= {TARGETS[s]:.2f}: {'met' if mean[s] >= TARGETS[s] else 'missed'}"
        for s in STRUCTURES) + " |" + ("" if args.multilabel else " |"))
    write_json(args, started, minutes=minutes, trained_minutes=trained / 60, mean=mean,
               targets=TARGETS, parameters=model.count_params(), images=rows)


if __name__ == "__main__":
    main()
