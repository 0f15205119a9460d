"""Segment images and volumes of any size by the paper's overlap-tile strategy
(:func:`predict_tiled`): the input mirrored at its edges, tiles on the model's pooling grid
(per axis) that keep their outputs beyond the reach of zero padding (valid ones abut, same
ones blend), so tiled is whole-image prediction, in 2D and 3D alike."""

import contextlib
import functools
import itertools
import os
from pathlib import Path

import keras
import numpy as np
import tifffile
from PIL import Image

from keras_unet.checks import check_choice, check_int, check_number, fail
from keras_unet.images import (as_image, as_prediction, file_stem, image_files, is_volume, locked,
                               normalize_intensity, read_image, read_volume, writable_folder,
                               write_atomically, write_volume)
from keras_unet.model import output_size, padding_reach, unet_config, valid_input_sizes

BLENDS = ("gaussian", "uniform")
TTAS = {None: 1, "flips": 4, "d4": 8}  # passes in 2D; in 3D 1, 8 (flips on every axis) and 16
DEFAULT_TILE = {"valid": 572, "same": 512}  # the paper's tile; a round size
#: A volume's default tile (valid: Çiçek et al. 2016's), per axis the nearest size that fits,
#: raised where zero padding would leave under half of it, cut to what covers the volume.
DEFAULT_TILE_3D = {"valid": (116, 132, 132), "same": (64, 128, 128)}
AXES = {2: "(H, W)", 3: "(D, H, W)"}
#: The file in an output folder that a run holds locked while it writes there.
LOCK_NAME = ".keras-unet.lock"


def _text(sizes):
    """An int where every axis agrees (``84``), else the tuple (``(20, 84, 84)``)."""
    return str(int(sizes[0])) if len(set(sizes)) == 1 else str(tuple(map(int, sizes)))


class TilePlan:
    """How :func:`predict_tiled` cuts an image or volume (its arguments checked), per axis: the
    input ``tile``, its ``out``-put, of which it keeps ``keep[0]:keep[1]`` (``span`` pixels),
    the ``step`` between tiles, where the image ``start``-s mirrored, the pooling grid
    ``align`` (the product of the pool sizes along the axis), zero padding's ``reach``; the
    tile at corner ``c`` keeps the pixels from ``c + offset`` on."""

    def __init__(self, model, tile=None, overlap=0.25, image_size=None, *, blend="gaussian",
                 tta=None, batch_size=1):
        check_number(overlap, "overlap", 0, 1, open_high=True)
        check_choice(blend, BLENDS, "blend")
        check_choice(tta, tuple(TTAS), "tta")
        check_int(batch_size, "batch_size")
        self.rank = rank = len(model.input_shape) - 2
        channels, fixed = model.input_shape[-1], tuple(model.input_shape[1:-1])
        config = dict(depth=None, padding=None, multilabel=False)  # another model: measured
        with contextlib.suppress(ValueError):
            config = unet_config(model)
        self.model, self.overlap, self.channels = model, overlap, channels
        self.depth, self.padding, self.multilabel = map(config.get, ("depth", "padding",
                                                                     "multilabel"))
        self.pool, self.classes = config.get("pool_size", 2), model.output_shape[-1]
        self.align = tuple(map(int, np.prod(np.broadcast_to(self.pool, (self.depth or 0, rank)),
                                            axis=0)))
        self.reach = (0,) * rank
        with contextlib.suppress(ValueError):  # (bilinear up-sampling reaches in under valid
            self.reach = padding_reach(model, per_axis=True)  # padding too)
        explicit = tile is not None  # a layer padding_reach cannot follow: trust every output
        given = tile if explicit else (DEFAULT_TILE_3D if rank == 3 else DEFAULT_TILE)[
            self.padding or "same"]
        tile = tuple(given) if isinstance(given, (tuple, list)) else (given,) * rank
        if len(tile) != rank:
            fail("tile", f"an int or a tuple of {rank} ints, one per axis {AXES.get(rank)} of the "
                 f"model's input", given)
        tile = tuple(check_int(t, "tile") for t in tile)
        if any(fixed):
            if explicit and any(f not in (None, t) for f, t in zip(fixed, tile)):
                raise ValueError(
                    f"tile {_text(tile)} differs from the model's fixed input {fixed}: leave "
                    f"tile=None, or build the model with input shape "
                    f"({'None, ' * rank}{channels})")
            tile, explicit = tuple(f or t for f, t in zip(fixed, tile)), False
        elif not explicit and self.depth:  # one tile for every image: a model is traced once
            tile = [fits[-1] for fits in self._sizes(valid_input_sizes, tile)]
        self._fit(tile)
        if rank == 3 and not explicit and self.depth and not any(fixed):  # a volume's default
            want = np.maximum(self.span, self.align if self.valid else np.array(tile) // 2)
            if image_size is not None:  # one tile's outputs cover a short axis
                want = np.minimum(want, np.maximum(np.subtract(image_size, self.offset),
                                                   self.align))
            self._fit([f[-1] for f in self._sizes(valid_input_sizes,
                                                  want + self.tile - np.array(self.span))])
        inner, align = np.subtract(self.out, 2 * np.array(self.reach)), np.array(self.align)
        if (inner < align).any():
            raise ValueError(
                f"tile {_text(self.tile)} is too small for this model: its zero padding reaches "
                f"{max(self.reach)} px into each side; use a tile >= "
                f"{_text(np.where(inner < align, self.tile - inner + 4 * align, self.tile))}"
                if max(self.reach) else f"tile {_text(self.tile)} is too small: its output "
                f"{_text(self.out)} is less than the {_text(self.align)} px of its pooling grid")
        if tta == "d4" and self.tile[-1] != self.tile[-2]:
            raise ValueError(f"tta='d4' turns the tiles in their last two axes, so it needs a "
                             f"tile of one size in both; got tile {self.tile}")
        if explicit and image_size is not None and np.less(image_size, self.span).all():
            need = np.subtract(image_size, self.span) + self.tile
            need = [max(need)] * rank if len(set(self.tile)) == 1 else need
            fits = self._sizes(valid_input_sizes, need) if self.depth else [[]] * rank
            smaller = _text([next((s for s in f if s < t), t) for f, t in zip(fits, self.tile)])
            noun, hint = "image" if rank == 2 else "volume", f" (e.g. {smaller})"
            raise ValueError(
                f"the {noun}, {'x'.join(map(str, image_size))}, is smaller than the "
                f"{'x'.join(map(str, self.span))} outputs of tile {_text(self.tile)}: use a "
                f"smaller tile{hint if smaller != _text(self.tile) else ''} or "
                f"tile=None (the default tile, the {noun} mirrored to fill it)")

    def _sizes(self, function, sizes):
        """``function`` (output_size, valid_input_sizes) per axis; an int where the axes agree."""
        same = len(set(sizes)) == 1 and np.ndim(self.pool) == 0
        result = function(int(sizes[0]) if same else tuple(map(int, sizes)), self.depth,
                          self.padding, pool_size=self.pool)
        return [result] * self.rank if same else list(result)

    def _fit(self, tile):
        """Lay out tiles of input size ``tile``: their outputs, those kept, steps, starts."""
        if self.depth:
            try:
                out = self._sizes(output_size, tile)
            except ValueError as error:
                raise ValueError(f"tile {_text(tile)} does not fit the model: {error}") from None
        else:  # measured
            out = np.shape(self.model.predict_on_batch(np.zeros((1, *tile, self.channels))))[1:-1]
            self.padding = "valid" if np.less(out, tile).any() else "same"
        self.tile, self.out = tuple(map(int, tile)), tuple(map(int, out))
        self.valid = self.padding == "valid"
        reach, align = np.array(self.reach), np.array(self.align)
        inner = np.subtract(out, 2 * reach)
        step = (inner - inner % align if self.valid  # valid tiles abut
                else np.maximum(align, (inner * (1 - self.overlap)).astype(int) // align * align))
        lead = -(-reach // align) * align  # >= reach, on the pooling grid
        self.step, self.offset = tuple(map(int, step)), tuple(map(int, reach - lead))
        self.keep = (tuple(map(int, reach)), tuple(map(int, reach + step if self.valid
                                                        else out - reach)))
        self.start = tuple(map(int, np.subtract(tile, out) // 2 + lead))
        self.span = tuple(high - low for low, high in zip(*self.keep))  # kept per tile

    def axis(self, size, axis=0):
        """(number of tiles, padding after the image) along ``axis``, of ``size`` pixels."""
        step = self.step[axis]
        n = max(1, -(-(size - self.offset[axis] - self.span[axis]) // step) + 1)
        return n, (n - 1) * step + self.tile[axis] - size - self.start[axis]

    def corners(self, *shape):
        """The tiles' first corners in the mirrored image, in the order of prediction."""
        return list(itertools.product(*(range(0, self.axis(n, a)[0] * s, s)
                                        for a, (n, s) in enumerate(zip(shape, self.step)))))


def _weights(plan, blend):
    """A tile's blending weights: uniform, or nnU-Net's Gaussian (sigma: 1/8 of the tile)."""
    if plan.valid or blend == "uniform":
        return np.ones(plan.span, np.float32)
    g = [np.exp(-((np.arange(s) - (s - 1) / 2) ** 2) / (2 * (s / 8) ** 2)) for s in plan.span]
    return np.maximum(functools.reduce(np.multiply.outer, g), 1e-3).astype(np.float32)


def _mirrored(size, start, length):
    """``length`` indices from ``-start`` on an axis of ``size``, mirrored as np.pad "reflect"s."""
    i, period = np.abs(np.arange(length) - start), 2 * (size - 1)
    i = i % period if period else i * 0
    return np.where(i < size, i, period - i)


def tile_grid(model, image_shape, *, tile=None, overlap=0.25):
    """Where :func:`predict_tiled` puts each tile's kept outputs in an image of ``image_shape``,
    as int64 boxes ``(top, left, bottom, right)`` (a volume's: ``(z0, y0, x0, z1, y1, x1)``;
    ends exclusive; clipped) in the order of prediction: valid-padding boxes abut, same-padding
    ones overlap by ``overlap``.

    Example:
        >>> from keras_unet import build_unet
        >>> model = build_unet((None, None, 1), 2, depth=2, filters=4, padding="valid")
        >>> boxes = tile_grid(model, (300, 200), tile=124)  # 124 in, 84 out
        >>> len(boxes), boxes[:3].tolist(), boxes[-1].tolist()
        (12, [[0, 0, 84, 84], [0, 84, 84, 168], [0, 168, 84, 200]], [252, 168, 300, 200])
    """
    rank = len(model.input_shape) - 2
    if not isinstance(image_shape, (tuple, list)) or len(image_shape) not in (rank, rank + 1) or (
            not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1
                    for n in image_shape)):
        axes = AXES.get(rank, "(H, W)")
        fail("image_shape", f"{axes} or {axes[:-1]}, C) of positive integers", image_shape)
    shape = tuple(int(n) for n in image_shape[:rank])
    plan = TilePlan(model, tile, overlap, shape)
    starts = np.array(plan.corners(*shape), np.int64) + plan.offset
    boxes = np.hstack([np.maximum(starts, 0), np.minimum(starts + plan.span, shape)])
    return boxes[(boxes[:, :rank] < boxes[:, rank:]).all(axis=1)]


def _tta_transforms(tta, rank):
    """(forward, inverse) pairs on (N, ..., C) batches: flips of each set of axes (d4: swapped)."""
    flips = [a for k in range(rank + 1) for a in itertools.combinations(range(1, rank + 1), k)]
    pairs = [(lambda x, a=a: np.flip(x, a) if a else x,) * 2 for a in flips]
    if tta == "d4":
        pairs += [(lambda x, f=f: np.swapaxes(f(x), rank - 1, rank),
                   lambda y, f=f: f(np.swapaxes(y, rank - 1, rank))) for f, _ in pairs]
    return pairs if tta else pairs[:1]


def predict_tiled(model, image, *, tile=None, overlap=0.25, blend="gaussian", tta=None,
                  batch_size=8, progress=True):
    """Float32 scores for an image or volume of any size, tile by tile: ``(H, W)`` (a volume's
    ``(D, H, W)``) for one output channel, else ``(H, W, classes)`` (``(D, H, W, classes)``);
    a ValueError names a bad argument, or what fits.

    Args:
        model: a :func:`keras_unet.build_unet` U-Net, or any Keras model from images to scores;
            a 2D one takes images, a 3D one volumes.
        image: ``(H, W[, C])``, or a volume ``(D, H, W[, C])`` for a 3D model, as
            :func:`keras_unet.images.as_image` takes it.
        tile: the input size, an int (every axis) or a tuple per axis; ``None``: the model's
            fixed size, else 572 (valid) or 512 (same padding, whose tiles keep their outputs
            beyond ``padding_reach``: 94 px at depth 4); a volume's: ``DEFAULT_TILE_3D``.
        overlap: for same padding, the fraction by which neighbouring interiors overlap.
        blend: ``"gaussian"`` (centre pixels weigh most) or ``"uniform"``.
        tta: ``None``, ``"flips"`` (flips on every set of axes averaged: 4 in 2D, 8 in 3D) or
            ``"d4"`` (those with the last two axes swapped too: the square's 8 symmetries).
        batch_size: tiles per model call; ``progress``: a progress bar over the tiles.

    Example:
        >>> from keras_unet import build_unet
        >>> model = build_unet((None, None, 1), 2, depth=2, filters=4, padding="valid")
        >>> predict_tiled(model, np.zeros((300, 200)), tile=124, progress=False).shape
        (300, 200, 2)
    """
    rank = len(model.input_shape) - 2
    if np.ndim(image) in (2, 3, 4) and np.ndim(image) not in (rank, rank + 1):
        axes = AXES.get(rank, "(H, W)")
        raise ValueError(f"image has shape {np.shape(image)} but the model is {rank}D (input "
                         f"shape {tuple(model.input_shape[1:])}): give {axes} or {axes[:-1]}, C)")
    image = as_image(image, "image", spatial_dims=rank)
    shape, channels = image.shape[:-1], image.shape[-1]
    plan = TilePlan(model, tile, overlap, shape, blend=blend, tta=tta, batch_size=batch_size)
    if channels != plan.channels:
        hint = (" (gray: image[..., :1]; RGB: np.repeat(image, 3, -1))"
                if plan.channels in (1, 3) else "")
        raise ValueError(f"the image has {channels} channels but the model takes "
                         f"{plan.channels}{hint}")
    index = [_mirrored(n, s, n + s + plan.axis(n, a)[1])  # the mirrored image's, per axis
             for a, (n, s) in enumerate(zip(shape, plan.start))]
    (low, high), corners = plan.keep, plan.corners(*shape)
    sides, kept = plan.span, (slice(None), *map(slice, low, high))
    extent = np.max(corners, axis=0) + sides  # the tile at c keeps outputs from c on
    scores = np.zeros((*extent, plan.classes), np.float32)
    total = None if plan.valid else np.zeros((*extent, 1), np.float32)  # valid tiles abut
    weights, transforms = _weights(plan, blend)[..., None], _tta_transforms(tta, rank)
    bar = keras.utils.Progbar(len(corners), verbose=int(progress), unit_name="tile")
    buffer = np.empty((min(batch_size, len(corners)), *plan.tile, channels), np.float32)
    for first in range(0, len(corners), batch_size):
        batch = corners[first:first + batch_size]
        for i, corner in enumerate(batch):  # one buffer: fresh memory costs page faults
            spans = [ix[c:c + t] for ix, c, t in zip(index, corner, plan.tile)]
            inside = all(span[-1] - span[0] == len(span) - 1 for span in spans)  # no mirror
            buffer[i] = image[tuple(slice(a[0], a[-1] + 1) for a in spans) if inside
                              else np.ix_(*spans)]
        tiles = buffer[:len(batch)]
        outputs = sum(inverse(np.asarray(model.predict_on_batch(forward(tiles)), np.float32))
                      for forward, inverse in transforms)
        for corner, output in zip(batch, outputs[kept] / len(transforms)):
            box = tuple(map(slice, corner, np.add(corner, sides)))
            if total is None:
                scores[box] = output
            else:
                scores[box] += output * weights
                total[box] += weights
        bar.update(min(first + batch_size, len(corners)))
    o = np.negative(plan.offset)  # every pixel is in a tile
    scores = (scores if total is None else np.divide(scores, total, out=scores))[
        tuple(map(slice, o, o + shape))]
    return scores[..., 0] if plan.classes == 1 else scores


def mask_from_scores(scores, threshold=0.5, *, multilabel=False, spatial_dims=2):
    """A mask from :func:`predict_tiled`'s scores (by :func:`~keras_unet.images.as_prediction`):
    0/255 for one channel (``scores > threshold``), the class indices for several, or with
    ``multilabel=True`` one 0/255 channel per label. ``spatial_dims=3``: a volume's scores
    ``(D, H, W[, C])``, binary masks and labels 0/1 (as NIfTI label maps hold them).

    Example:
        >>> mask_from_scores(np.array([[0.2, 0.7]])).tolist(), mask_from_scores([[[.1, .9]]])
        ([[0, 255]], array([[1]], dtype=uint8))
        >>> mask_from_scores(np.full((2, 1, 3), 0.7), spatial_dims=3).tolist()
        [[[1, 1, 1]], [[1, 1, 1]]]
    """
    scores = np.asarray(scores)
    labels = as_prediction(scores, "scores", threshold=threshold, spatial_dims=spatial_dims,
                           mode="multilabel" if multilabel else None).labels
    if labels.dtype.kind == "f":  # 0/1: binary, or multilabel
        binary = (labels if multilabel else labels[..., 0]).astype(np.uint8)
        return binary if spatial_dims == 3 else binary * np.uint8(255)
    return labels[..., 0].astype(np.uint8 if scores.shape[-1] <= 256 else np.uint16)


def _lock(stack, output_dir, remove=False):
    """Hold ``output_dir``'s lock in ``stack``; a ValueError if another run holds it."""
    try:
        stack.enter_context(locked(output_dir / LOCK_NAME, wait=False, remove=remove))
    except BlockingIOError:
        raise ValueError(f"another prediction is writing to output_dir {output_dir} (it holds "
                         f"{output_dir / LOCK_NAME}): wait until it is done, or choose another "
                         f"output_dir") from None


def _outputs(name, suffix):
    """The mask and the probabilities a run writes for the input file ``name``."""
    stem = file_stem(name)
    return ((f"{stem}.nii.gz", f"probabilities/{stem}.nii.gz") if is_volume(name)
            else (f"{stem}{suffix}", f"probabilities/{stem}.tif"))


def _refuse_existing(output_dir, names, probabilities, suffix):
    existing = [_outputs(n, suffix)[i] for i in range(1 + probabilities) for n in names]
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
    ``overwrite=True``, that none of the files it would write for the images or volumes
    ``names`` exist (``<stem>.png`` or ``<stem>.nii.gz``, ``probabilities/<stem>.tif`` or
    ``.nii.gz``). A ValueError names the fix.

    Example:
        >>> import tempfile
        >>> check_output_dir(Path(tempfile.mkdtemp()) / "masks", ["a.tif", "b.nii.gz"])
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
        _refuse_existing(output_dir, [Path(n).name for n in names], probabilities, suffix)


def predict_folder(model, input_dir, output_dir, *, threshold=0.5, probabilities=False,
                   tile=None, overlap=0.25, blend="gaussian", tta=None, batch_size=8,
                   overwrite=False, progress=True, intensity="auto"):
    """Segment the images of a folder (or a list of image files) with :func:`predict_tiled`
    into ``output_dir``, under each image's name: ``<name>.png`` (0/255 for a binary model,
    class indices for a multi-class one; ``<name>.tif`` of one 0/255 channel per label for a
    multilabel one), and with ``probabilities=True`` the float32 ``probabilities/<name>.tif``.
    Volume files (``.nii.gz``, ``.nii``, ``.nrrd``) for a 3D model: read by
    :func:`~keras_unet.images.read_volume`, scaled by :func:`~keras_unet.images.
    normalize_intensity` (``intensity``), written as ``<name>.nii.gz`` (0/1 or class indices,
    uint8) and ``probabilities/<name>.nii.gz`` with the input's affine and header.

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
    plan = TilePlan(model, **tiled)
    check_number(threshold, "threshold", 0, 1)
    normalize_intensity(np.linspace(0, 1, 8, dtype=np.float32).reshape(2, 2, 2), intensity)
    output_dir, names = Path(output_dir), [path.name for path in paths]
    suffix = ".tif" if plan.multilabel else ".png"
    check_output_dir(output_dir, names, probabilities=probabilities, overwrite=overwrite,
                     suffix=suffix)
    made = [f for f in (output_dir, *output_dir.parents) if not os.path.lexists(f)]
    written = []
    try:
        with contextlib.ExitStack() as stack:
            _lock(stack, output_dir, remove=True)  # the folder made, if need be
            if not overwrite:  # again, now that no other run can write there
                _refuse_existing(output_dir, names, probabilities, suffix)
            for number, path in enumerate(paths, start=1):
                if progress and len(paths) > 1:
                    print(f"[{number}/{len(paths)}] {path.name}")
                try:
                    volume = is_volume(path) and read_volume(path)
                    if bool(volume) != (plan.rank == 3):
                        raise ValueError(f"{'a volume' if volume else 'an image'}, but the model "
                                         f"is {plan.rank}D (input shape {model.input_shape[1:]})")
                    scores = predict_tiled(model, normalize_intensity(
                        volume.array, intensity, name=str(path)) if volume else read_image(path),
                        progress=progress, **tiled)
                    mask = mask_from_scores(scores, threshold, multilabel=plan.multilabel,
                                            spatial_dims=plan.rank)
                    for name, array in list(zip(_outputs(path.name, suffix), (mask, scores)))[
                            :1 + probabilities]:  # the mask, and the probabilities if asked
                        png = array is mask and not plan.multilabel
                        done = write_volume(output_dir / name, array, like=volume) if volume else (
                            write_atomically(output_dir / name, (lambda f: Image.fromarray(
                                array).save(f, format="PNG")) if png else lambda f: tifffile.
                                imwrite(f, array)))
                        written += [done] if array is mask else []
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
