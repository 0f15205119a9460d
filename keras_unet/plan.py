"""The dataset fingerprint (nnU-Net's, Isensee et al. 2021): what a set of images and masks
holds, measured once: sizes and voxel spacings, channels, intensities, contrast, class
frequencies and object sizes; :func:`save_fingerprint` keeps it as JSON beside a model.

>>> image, mask = np.zeros((8, 8, 1)), np.zeros((8, 8, 1), np.int32)
>>> image[2:4, 2:4], mask[2:4, 2:4] = 1.0, 1
>>> fingerprint([image], [mask])["contrast"]
{'bright-on-dark': 1, 'dark-on-bright': 0, 'no foreground': 0}
"""

import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from keras_unet.checks import count
from keras_unet.images import CT_AIR, write_atomically

#: the intensity percentiles kept (nnU-Net clips CT at 0.5 and 99.5)
PERCENTILES = (0.5, 50.0, 99.5)
#: pixels of an image that the percentiles sample, at most (every k-th pixel)
SAMPLE = 100_000


def _spread(values):  # median, min and max of numbers or of equal-length tuples
    values = np.asarray(values, float)
    return {key: np.round(f(values, axis=0), 4).tolist()
            for key, f in (("median", np.median), ("min", np.min), ("max", np.max))}


def _classes(mask, ignore_index):  # {class: bool map}: labels (multilabel), or class indices
    if mask.shape[-1] > 1:  # each label its own 0/1 channel, numbered from 0
        return {k: mask[..., k] > 0 for k in range(mask.shape[-1])}
    labels = mask[..., 0]
    counted = labels != (-1 if ignore_index is None else ignore_index)
    return {c: (labels == c) & counted for c in range(max(1, int(labels[counted].max(
        initial=0))) + 1)}


def fingerprint(images, masks, *, spacing=None, names=None, ignore_index=None):
    """The fingerprint of ``images`` (float32 ``(H, W, C)`` or ``(D, H, W, C)``, any value
    range: volumes as stored) and their ``masks`` (as :func:`~keras_unet.images.as_mask`
    gives them) as a dict that ``json`` writes: see docs/fingerprint.md. ``spacing``: mm per
    axis of each volume; ``names``: each image's (default ``image 0``, ...)."""
    images, masks = list(images), list(masks)
    names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
    if not images or not len(images) == len(masks) == len(names):
        raise ValueError(f"fingerprint needs images with one mask (and name) each; got "
                         f"{count(images, 'image')}, {count(masks, 'mask')}, "
                         f"{count(names, 'name')}")
    rank, channels = images[0].ndim - 1, images[0].shape[-1]
    found, total, squares, samples, rows, objects = [], 0.0, 0.0, [], [], {}
    contrast = dict.fromkeys(("bright-on-dark", "dark-on-bright", "no foreground"), 0)
    for image, mask, name in zip(images, masks, names):
        image, mask = np.asarray(image, np.float64), np.asarray(mask)
        if image.ndim != rank + 1 or image.shape[-1] != channels or mask.shape[:-1] != \
                image.shape[:-1]:
            raise ValueError(f"{name}: image {image.shape} and mask {mask.shape} do not match "
                             f"the first image's {rank}D grid with {channels} channel(s)")
        maps = _classes(mask, ignore_index)
        flat = image.reshape(-1, channels)
        total, squares = total + flat.sum(0), squares + (flat**2).sum(0)
        samples.append(flat[::max(1, len(flat) // SAMPLE)])
        found.append([int(m.sum()) for m in maps.values()])
        things = {k: m for k, m in maps.items() if k or mask.shape[-1] > 1}  # not background
        foreground, gray = np.any(list(things.values()), axis=0), image.mean(-1)
        kind = "no foreground" if not foreground.any() or foreground.all() else (
            "bright-on-dark" if gray[foreground].mean() > gray[~foreground].mean()
            else "dark-on-bright")
        contrast[kind] += 1
        for k, m in things.items():  # connected objects (corners touching: one object)
            labels, _ = ndimage.label(m, np.ones((3,) * rank))
            objects.setdefault(k, []).extend(np.bincount(labels.ravel())[1:].tolist())
        rows.append({"name": str(name), "size": list(image.shape[:-1]),
                     "range": [round(float(flat.min()), 4), round(float(flat.max()), 4)],
                     "mean": np.round(flat.mean(0), 4).tolist(),
                     "std": np.round(flat.std(0), 4).tolist(), "contrast": kind})
    n = sum(int(np.prod(r["size"])) for r in rows)
    mean = total / n
    sample = np.concatenate(samples)
    sizes, n_classes = [r["size"] for r in rows], max(map(len, found))
    pixels = np.array([f + [0] * (n_classes - len(f)) for f in found])  # (images, classes)
    counts = pixels.sum(0).tolist()
    return {
        "images": len(images), "spatial_dims": rank, "channels": int(channels),
        "size": {**_spread(sizes), "distinct": len({tuple(s) for s in sizes})},
        "spacing": None if spacing is None else _spread(spacing),
        "intensity": {"percentiles": {f"{p:g}": np.round(np.percentile(sample, p, axis=0), 4)
                                      .tolist() for p in PERCENTILES},
                      "mean": np.round(mean, 4).tolist(),
                      "std": np.round(np.sqrt(np.maximum(squares / n - mean**2, 0)), 4).tolist(),
                      "ct_like": sum(rank == 3 and r["range"][0] <= CT_AIR for r in rows)},
        "contrast": contrast,
        "classes": {"mode": "multilabel" if masks[0].shape[-1] > 1 else (
                        "binary" if masks[0].dtype.kind == "f" else "multiclass"),
                    "pixels": counts, "pixel_share": [round(c / max(1, sum(counts)), 6)
                                                      for c in counts],
                    "image_share": np.round((pixels > 0).mean(0), 4).tolist()},
        "objects": {str(k): {"count": len(s), **({"median": float(np.median(s)), "p5": float(
            np.percentile(s, 5)), "p95": float(np.percentile(s, 95)), "min": min(s),
            "max": max(s)} if s else {})} for k, s in sorted(objects.items())},
        "per_image": rows}


def _sides(values):
    return "x".join(f"{v:g}" for v in values)


def describe(fp):
    """A fingerprint as lines of text, as ``keras-unet fingerprint`` prints it."""
    axes, unit = ("D, H, W", "voxels") if fp["spatial_dims"] == 3 else ("H, W", "pixels")
    size, intensity, spacing = fp["size"], fp["intensity"], fp["spacing"]
    lines = [f"{count(fp['images'], 'image')}, {fp['spatial_dims']}D, "
             f"{count(fp['channels'], 'channel')}",
             f"size ({axes}): median {_sides(size['median'])}, from {_sides(size['min'])} to "
             f"{_sides(size['max'])}, {count(size['distinct'], 'distinct size')}"]
    lines += [f"spacing (mm, {axes}): median {_sides(spacing['median'])}, from "
              f"{_sides(spacing['min'])} to {_sides(spacing['max'])}"] if spacing else []
    lines += [f"intensity per channel: mean {intensity['mean']}, sd {intensity['std']}, "
              + ", ".join(f"p{p} {v}" for p, v in intensity["percentiles"].items())
              + (f"; {intensity['ct_like']} of {fp['images']} CT-like (air at -1000)"
                 if intensity["ct_like"] else ""),
              "contrast: " + ", ".join(f"{n} {kind}" for kind, n in fp["contrast"].items() if n),
              f"classes ({fp['classes']['mode']}): share of the {unit} "
              + ", ".join(f"{k}: {s:.4%}" for k, s in enumerate(fp["classes"]["pixel_share"]))
              + "; of the images holding them "
              + ", ".join(f"{k}: {s:.0%}" for k, s in enumerate(fp["classes"]["image_share"]))]
    lines += [f"objects of class {k}: {o['count']:,}" + (
        f", {o['min']:,} to {o['max']:,} {unit} (median {o['median']:g}, 5th-95th percentile "
        f"{o['p5']:g}-{o['p95']:g})" if o["count"] else "") for k, o in fp["objects"].items()]
    return lines


def save_fingerprint(fp, path):
    """Write a fingerprint as JSON to ``path``, whole or not at all; returns ``path``."""
    text = json.dumps(fp, indent=1) + "\n"
    return write_atomically(path, lambda file: file.write(text.encode()))


def load_fingerprint(path):
    """The fingerprint saved at ``path``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
