"""Segment images of any size by the paper's overlap-tile strategy (:func:`predict_tiled`): the
image mirrored at its edges, tiles on the ``2**depth`` pooling grid that keep their outputs beyond
the reach of zero padding (valid ones abut, same ones blend), so tiled is whole-image prediction."""

import contextlib
import os
from pathlib import Path

import keras
import numpy as np
import tifffile
from PIL import Image

from keras_unet.checks import check_choice, check_int, check_number, fail
from keras_unet.images import (as_image, as_prediction, image_files, locked, read_image,
                               writable_folder, write_atomically)
from keras_unet.model import output_size, padding_reach, unet_config, valid_input_sizes

BLENDS = ("gaussian", "uniform")
TTAS = {None: 1, "flips": 4, "d4": 8}
DEFAULT_TILE = {"valid": 572, "same": 512}  # the paper's tile; a round size
#: The file in an output folder that a run holds locked while it writes there.
LOCK_NAME = ".keras-unet.lock"


class TilePlan:
    """How :func:`predict_tiled` cuts an image (its arguments checked), per axis: the input
    ``tile``, each tile's ``keep``-t outputs, the ``step`` between tiles, where the image
    ``start``-s mirrored; the tile at corner ``(r, c)`` keeps pixels ``(r, c) + offset`` on."""

    def __init__(self, model, tile=None, overlap=0.25, image_size=None, *, blend="gaussian",
                 tta=None, batch_size=1):
        check_number(overlap, "overlap", 0, 1, open_high=True)
        check_choice(blend, BLENDS, "blend")
        check_choice(tta, tuple(TTAS), "tta")
        check_int(batch_size, "batch_size")
        channels, fixed = model.input_shape[-1], model.input_shape[1:3]
        config = dict(depth=None, padding=None, multilabel=False)  # another model: measured
        with contextlib.suppress(ValueError):
            config = unet_config(model)
        depth, padding, self.multilabel = config["depth"], config["padding"], config["multilabel"]
        self.channels, self.classes = channels, model.output_shape[-1]
        self.align = 2 ** (depth or 0)
        explicit = tile is not None
        if fixed[0] is not None or fixed[1] is not None:
            if explicit and (tile, tile) != tuple(fixed):
                raise ValueError(
                    f"tile {tile} differs from the model's fixed input {fixed}: leave tile=None, "
                    f"or build the model with input shape (None, None, {channels})")
            if fixed[0] != fixed[1]:
                raise ValueError(f"the model's input {fixed} is not square; tiles are square")
            tile, explicit = fixed[0], False
        elif tile is None:  # one tile size for every image: a model is traced once
            tile = DEFAULT_TILE[padding or "same"]
            tile = valid_input_sizes(tile, depth, padding)[-1] if depth else tile
        check_int(tile, "tile")
        if depth:
            try:
                out = output_size(tile, depth, padding)
            except ValueError as error:
                raise ValueError(f"tile {tile} does not fit the model: {error}") from None
        else:
            out = np.shape(model.predict_on_batch(np.zeros((1, tile, tile, channels))))[1]
            padding = "valid" if out < tile else "same"
        self.tile, self.valid, reach = tile, padding == "valid", 0
        with contextlib.suppress(ValueError):  # a layer it cannot follow: trust every output
            reach = padding_reach(model)  # bilinear up-sampling reaches in under valid padding
        kept = out - 2 * reach
        if kept < self.align:
            raise ValueError(f"tile {tile} is too small for this model: its zero padding reaches "
                             f"{reach} px into each side; use a tile >= "
                             f"{tile - kept + 4 * self.align}" if reach else f"tile {tile} is "
                             f"too small: its output {out} is less than 2**depth = {self.align} px")
        self.step = (kept - kept % self.align if self.valid  # valid tiles abut
                     else max(self.align, int(kept * (1 - overlap)) // self.align * self.align))
        self.keep = (reach, reach + self.step if self.valid else out - reach)
        lead = -(-reach // self.align) * self.align  # >= reach, on the pooling grid
        self.start, self.offset = (tile - out) // 2 + lead, reach - lead
        kept = self.keep[1] - self.keep[0]
        if explicit and image_size is not None and max(image_size) < kept:
            fits = valid_input_sizes(max(image_size) + tile - kept, depth, padding) if depth else []
            smaller = next((f" (e.g. {t})" for t in fits if t < tile), "")
            raise ValueError(
                f"the image, {image_size[0]}x{image_size[1]}, is smaller than the {kept}x{kept} "
                f"outputs of tile {tile}: use a smaller tile{smaller} or tile=None (the default "
                f"tile, the image mirrored to fill it)")

    def axis(self, size):
        """(number of tiles, padding after the image) along an axis of ``size`` pixels."""
        n = max(1, -(-(size - self.offset - self.keep[1] + self.keep[0]) // self.step) + 1)
        return n, (n - 1) * self.step + self.tile - size - self.start

    def corners(self, height, width):
        """The tiles' top-left corners in the mirrored image, in the order of prediction."""
        rows, cols = range(self.axis(height)[0]), range(self.axis(width)[0])
        return [(r * self.step, c * self.step) for r in rows for c in cols]


def _weights(plan, blend):
    """A tile's blending weights: uniform, or nnU-Net's Gaussian (sigma: 1/8 of the tile)."""
    side = plan.keep[1] - plan.keep[0]
    if plan.valid or blend == "uniform":
        return np.ones((side, side), np.float32)
    g = np.exp(-((np.arange(side) - (side - 1) / 2) ** 2) / (2 * (side / 8) ** 2))
    return np.maximum(np.outer(g, g), 1e-3).astype(np.float32)


def tile_grid(model, image_shape, *, tile=None, overlap=0.25):
    """Where :func:`predict_tiled` puts each tile's kept outputs in an image of ``image_shape``,
    as int64 boxes ``(top, left, bottom, right)`` (bottom, right exclusive; clipped) in the
    order of prediction: valid-padding boxes abut, same-padding ones overlap by ``overlap``.

    Example:
        >>> from keras_unet import build_unet
        >>> model = build_unet((None, None, 1), 2, depth=2, filters=4, padding="valid")
        >>> boxes = tile_grid(model, (300, 200), tile=124)  # 124 in, 84 out
        >>> len(boxes), boxes[:3].tolist(), boxes[-1].tolist()
        (12, [[0, 0, 84, 84], [0, 84, 84, 168], [0, 168, 84, 200]], [252, 168, 300, 200])
    """
    if not isinstance(image_shape, (tuple, list)) or len(image_shape) not in (2, 3) or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1
            for n in image_shape):
        fail("image_shape", "(H, W) or (H, W, C) of positive integers", image_shape)
    height, width = int(image_shape[0]), int(image_shape[1])
    plan = TilePlan(model, tile, overlap, (height, width))
    starts = np.array(plan.corners(height, width), np.int64) + plan.offset
    boxes = np.hstack([np.maximum(starts, 0), np.minimum(starts + plan.keep[1] - plan.keep[0],
                                                         (height, width))])
    return boxes[(boxes[:, 0] < boxes[:, 2]) & (boxes[:, 1] < boxes[:, 3])]


def _tta_transforms(tta):
    """(forward, inverse) pairs on (N, H, W, C) batches: flips, and for d4 transposes."""
    pairs = [(lambda x, a=a: np.flip(x, a) if a else x,) * 2 for a in ((), (1,), (2,), (1, 2))]
    if tta == "d4":
        pairs += [(lambda x, f=f: np.swapaxes(f(x), 1, 2), lambda y, f=f: f(np.swapaxes(y, 1, 2)))
                  for f, _ in pairs]
    return pairs if tta else pairs[:1]


def predict_tiled(model, image, *, tile=None, overlap=0.25, blend="gaussian", tta=None,
                  batch_size=8, progress=True):
    """Float32 scores for an image of any size, tile by tile: ``(H, W)`` for one output
    channel, else ``(H, W, classes)``; a ValueError names a bad argument, or what fits.

    Args:
        model: a :func:`keras_unet.build_unet` U-Net, or any Keras model from images to scores.
        image: ``(H, W)`` or ``(H, W, C)``, as :func:`keras_unet.images.as_image` takes it.
        tile: the input side; ``None``: the model's fixed size, else 572 (valid) or 512 (same
            padding, whose tiles keep their outputs beyond ``padding_reach``: 94 px at depth 4).
        overlap: for same padding, the fraction by which neighbouring interiors overlap.
        blend: ``"gaussian"`` (centre pixels weigh most) or ``"uniform"``.
        tta: ``None``, ``"flips"`` (4 flips averaged) or ``"d4"`` (the square's 8 symmetries).
        batch_size: tiles per model call; ``progress``: a progress bar over the tiles.

    Example:
        >>> from keras_unet import build_unet
        >>> model = build_unet((None, None, 1), 2, depth=2, filters=4, padding="valid")
        >>> predict_tiled(model, np.zeros((300, 200)), tile=124, progress=False).shape
        (300, 200, 2)
    """
    image = as_image(image, "image")
    height, width, channels = image.shape
    plan = TilePlan(model, tile, overlap, (height, width), blend=blend, tta=tta,
                    batch_size=batch_size)
    if channels != plan.channels:
        hint = (" (gray: image[..., :1]; RGB: np.repeat(image, 3, -1))"
                if plan.channels in (1, 3) else "")
        raise ValueError(f"the image has {channels} channels but the model takes "
                         f"{plan.channels}{hint}")
    pads = [(plan.start, plan.axis(height)[1]), (plan.start, plan.axis(width)[1]), (0, 0)]
    padded = np.pad(image, pads, mode="reflect")
    (low, high), corners, o = plan.keep, plan.corners(height, width), -plan.offset
    extent = np.max(corners, axis=0) + high - low  # tile (r, c)'s kept outputs: from (r, c)
    scores = np.zeros((*extent, plan.classes), np.float32)
    total = np.zeros((*extent, 1), np.float32)
    weights, transforms = _weights(plan, blend)[..., None], _tta_transforms(tta)
    bar = keras.utils.Progbar(len(corners), verbose=int(progress), unit_name="tile")
    for first in range(0, len(corners), batch_size):
        batch = corners[first:first + batch_size]
        tiles = np.stack([padded[r:r + plan.tile, c:c + plan.tile] for r, c in batch])
        outputs = sum(inverse(np.asarray(model.predict_on_batch(forward(tiles)), np.float32))
                      for forward, inverse in transforms)
        for (r, c), output in zip(batch, outputs[:, low:high, low:high] / len(transforms)):
            scores[r:r + high - low, c:c + high - low] += output * weights
            total[r:r + high - low, c:c + high - low] += weights
        bar.update(min(first + batch_size, len(corners)))
    scores = np.divide(scores, total, out=scores)[o:o + height, o:o + width]  # all in a tile
    return scores[..., 0] if plan.classes == 1 else scores


def mask_from_scores(scores, threshold=0.5, *, multilabel=False):
    """A mask image from :func:`predict_tiled`'s scores (by :func:`~keras_unet.images.
    as_prediction`): 0/255 for one channel (``scores > threshold``), the class indices for
    several, or with ``multilabel=True`` one 0/255 channel per label.

    Example:
        >>> mask_from_scores(np.array([[0.2, 0.7]])).tolist(), mask_from_scores([[[.1, .9]]])
        ([[0, 255]], array([[1]], dtype=uint8))
    """
    scores = np.asarray(scores)
    labels = as_prediction(scores, "scores", threshold=threshold,
                           mode="multilabel" if multilabel else None).labels
    if labels.dtype.kind == "f":  # 0/1: binary, or multilabel
        return (labels if multilabel else labels[..., 0]).astype(np.uint8) * np.uint8(255)
    return labels[..., 0].astype(np.uint8 if scores.shape[-1] <= 256 else np.uint16)


def _lock(stack, output_dir, remove=False):
    """Hold ``output_dir``'s lock in ``stack``; a ValueError if another run holds it."""
    try:
        stack.enter_context(locked(output_dir / LOCK_NAME, wait=False, remove=remove))
    except BlockingIOError:
        raise ValueError(f"another prediction is writing to output_dir {output_dir} (it holds "
                         f"{output_dir / LOCK_NAME}): wait until it is done, or choose another "
                         f"output_dir") from None


def _refuse_existing(output_dir, stems, probabilities, suffix):
    existing = [f"{stem}{suffix}" for stem in stems] + (
        [f"probabilities/{stem}.tif" for stem in stems] if probabilities else [])
    existing = [name for name in existing if os.path.lexists(output_dir / name)]
    if existing:
        names = ", ".join(existing[:3])
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        raise ValueError(
            f"output_dir {output_dir} already holds files this run would write ({names}{more}): "
            f"pass overwrite=True to replace them (a run again into the same folder needs it "
            f"too), or choose another output_dir")


def check_output_dir(output_dir, names=(), *, probabilities=False, overwrite=False,
                     suffix=".png"):
    """Check, changing nothing, that a prediction run can write to ``output_dir`` (a folder,
    or a path where one can be made), that no other run writes there, and unless
    ``overwrite=True``, that none of the files it would write for the images ``names``
    exist (``<stem>.png``, ``probabilities/<stem>.tif``). A ValueError names the fix.

    Example:
        >>> import tempfile
        >>> check_output_dir(Path(tempfile.mkdtemp()) / "masks", ["a.tif"])
    """
    output_dir = Path(output_dir)
    try:
        writable_folder(output_dir)
    except NotADirectoryError as error:
        existing = Path(error.filename)
        what = "is a file" if existing.is_file() else "is not a folder"
        where = what if existing == output_dir else f"cannot be made: {existing} {what}"
        raise ValueError(f"output_dir {output_dir} {where}: give a folder for the masks") from None
    except OSError as error:
        raise ValueError(
            f"cannot write to output_dir {output_dir}: {error.filename} takes no new files "
            f"({error.strerror}); give a folder where you can write") from None
    folder = output_dir / "probabilities"
    if probabilities and os.path.lexists(folder) and not folder.is_dir():
        raise ValueError(f"output_dir {output_dir} holds a file named probabilities where the "
                         f"probabilities' folder goes: move it, or choose another output_dir")
    if (output_dir / LOCK_NAME).is_file():
        with contextlib.ExitStack() as stack:
            _lock(stack, output_dir)
    if not overwrite:
        _refuse_existing(output_dir, [Path(n).stem for n in names], probabilities, suffix)


def predict_folder(model, input_dir, output_dir, *, threshold=0.5, probabilities=False,
                   tile=None, overlap=0.25, blend="gaussian", tta=None, batch_size=8,
                   overwrite=False, progress=True):
    """Segment the images of a folder (or a list of image files) with :func:`predict_tiled`
    into ``output_dir``, under each image's name: ``<name>.png`` (0/255 for a binary model,
    class indices for a multi-class one; ``<name>.tif`` of one 0/255 channel per label for a
    multilabel one), and with ``probabilities=True`` the float32 ``probabilities/<name>.tif``.

    All is checked before an image is read (:func:`check_output_dir`); files are written
    whole or not at all, replaced only with ``overwrite=True``, under ``LOCK_NAME``'s lock.
    Returns the masks' paths; a ValueError names the problem (and the masks written before).

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> from keras_unet import build_unet
        >>> folder = Path(tempfile.mkdtemp())
        >>> Image.fromarray(np.zeros((50, 70), np.uint8)).save(folder / "cells.png")
        >>> model = build_unet((None, None, 1), 1, depth=2, filters=4)
        >>> [p.name for p in predict_folder(model, folder, folder / "out", progress=False)]
        ['cells.png']
    """
    paths = ([Path(p) for p in input_dir] if isinstance(input_dir, (list, tuple))
             else list(image_files(input_dir, "input_dir").values()))
    tiled = dict(tile=tile, overlap=overlap, blend=blend, tta=tta, batch_size=batch_size)
    multilabel = TilePlan(model, **tiled).multilabel
    check_number(threshold, "threshold", 0, 1)
    output_dir = Path(output_dir)
    stems, suffix = [path.stem for path in paths], ".tif" if multilabel else ".png"
    check_output_dir(output_dir, stems, probabilities=probabilities, overwrite=overwrite,
                     suffix=suffix)
    made = [f for f in (output_dir, *output_dir.parents) if not os.path.lexists(f)]
    written = []
    try:
        with contextlib.ExitStack() as stack:
            _lock(stack, output_dir, remove=True)  # the folder made, if need be
            if not overwrite:  # again, now that no other run can write there
                _refuse_existing(output_dir, stems, probabilities, suffix)
            for number, path in enumerate(paths, start=1):
                if progress and len(paths) > 1:
                    print(f"[{number}/{len(paths)}] {path.name}")
                try:
                    scores = predict_tiled(model, read_image(path), progress=progress, **tiled)
                    mask = mask_from_scores(scores, threshold, multilabel=multilabel)
                    written.append(write_atomically(
                        output_dir / f"{path.stem}{suffix}",
                        (lambda file: tifffile.imwrite(file, mask)) if multilabel
                        else lambda file: Image.fromarray(mask).save(file, format="PNG")))
                    if probabilities:
                        write_atomically(output_dir / "probabilities" / f"{path.stem}.tif",
                                         lambda file: tifffile.imwrite(file, scores))
                except (ValueError, OSError) as error:
                    message = str(error) if str(path) in str(error) else f"{path}: {error}"
                    if len(paths) > 1:
                        message += (f". Stopped at {path.name}: {len(written)} of {len(paths)} "
                                    f"masks were written to output_dir {output_dir}, the rest "
                                    f"not predicted")
                    raise (ValueError if isinstance(error, ValueError) else OSError)(
                        message) from None
    finally:
        for folder in made:  # deepest first; only empty ones go
            with contextlib.suppress(OSError):
                folder.rmdir()
    return written


def predict_file(model, path, output_dir, **options):
    """Segment one image file into ``output_dir`` as :func:`predict_folder` does (its keyword
    options and checks); returns the mask's path."""
    return predict_folder(model, [path], output_dir, **options)[0]
