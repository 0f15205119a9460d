"""What data is: image, mask and volume files read into arrays, the conventions every stage
calls (:func:`as_image`, :func:`as_mask`, :func:`as_prediction`), whole files: docs/masks.md."""

import contextlib
import errno
import gzip
import importlib.util
import os
import tempfile
import warnings
from collections import Counter, namedtuple
from pathlib import Path

import nibabel
import numpy as np
import tifffile
from PIL import Image

from keras_unet.checks import check_array, check_choice, check_int, check_number, count, fail

try:
    import fcntl
except ImportError:  # Windows: no lock between processes
    fcntl = None
nrrd = importlib.import_module("nrrd") if importlib.util.find_spec("nrrd") else None  # pynrrd

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
AUTO_MAX_CLASSES = 64  # mask_mode="auto" reads masks with all values below it as classes
MASK_MODES = ("binary", "multiclass", "multilabel")
READ_MODES = ("auto", "binary", "multiclass", "palette")  # of mask files ("classes": multiclass)
NEAR_BINARY = 0.9  # this share of pixels near the ends of the range: a noisy binary mask
FULL_SCALE = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}  # others: 1
AUTO = f" (0/255 or 0/1) or class indices below {AUTO_MAX_CLASSES}"
EXPECTED = {"binary": "expected binary values (0/255 or 0/1)", "auto": f"expected binary values"
            f"{AUTO}", "multiclass": "expected class indices", "folder": f"with mask_mode='auto' "
            f"masks must all be binary{AUTO}"}  # what a mask file's values must be, by mode
VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd")  # and multi-page .tif/.tiff for read_volume
WINDOWS = {"abdomen": (-160, 240), "liver": (-100, 200), "lung": (-1350, 150),  # CT windows,
           "brain": (0, 80), "bone": (-500, 1300)}  # (low, high) HU; soft tissue: "abdomen"
ZSCORE_CLIP = 5  # normalize_intensity "zscore": standard deviations mapped onto [0, 1]
CT_AIR = -500  # a scan with values this low holds air in HU (-1000): CT ("auto", fingerprints)
# a split: images, masks (arrays, or lists of sizes that differ; None if none), stems, fov, spacing
Split = namedtuple("Split", "images masks names fov spacing", defaults=[None, None])
Volume = namedtuple("Volume", "array affine spacing header", defaults=[None])  # docs/masks.md
# a model's output: labels as as_mask gives them, float32 (H, W, C) scores if it was soft
Prediction = namedtuple("Prediction", "labels scores", defaults=[None])


def writable_folder(path):
    """The nearest existing folder at or above ``path`` that takes new entries, else an OSError."""
    existing = next(f for f in (Path(path), *Path(path).parents) if os.path.lexists(f))
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(existing))
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".keras-unet-probe-", dir=existing))
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(existing)) from None
    return existing


def write_atomically(path, write):
    """Call ``write(file)`` on a new file beside ``path``, moved into place: whole or untouched."""
    (path := Path(path)).parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.urandom(8).hex()}.part")
    try:  # "x": a new file (mkstemp's would be 0o600); named: some writers read file.name
        with open(temporary, "xb") as file:
            write(file)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def locked(path, *, wait=True, remove=False):
    """An exclusive ``flock`` on the file ``path`` for the block (docs/masks.md)."""
    (path := Path(path)).parent.mkdir(parents=True, exist_ok=True)
    while True:
        with open(path, "a") as handle:  # closing releases the lock
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            stale = remove  # the file at path is not the one locked: its holder removed it
            with contextlib.suppress(FileNotFoundError):
                stale = remove and not os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
            if not stale:
                try:
                    yield
                finally:
                    if remove:  # while locked: no later process locks a removed file
                        path.unlink(missing_ok=True)
                return


def _open(path):  # (pixels, colours): a one-image file's pixels, a palette image's RGB(A) colours
    path, frames, axes, array, colours = Path(path), 1, "YX", None, None
    if is_volume(path):
        raise ValueError(f"{path} is a volume: read it with read_volume")
    if path.suffix.lower() in (".tif", ".tiff"):  # tifffile: any depth; PIL: LZW and JPEG
        with contextlib.suppress(OSError, ValueError, IndexError, KeyError):
            with tifffile.TiffFile(path) as file:
                frames, axes, array = len(file.pages), file.series[0].axes, file.series[0].asarray()
    try:
        with Image.open(path) if array is None else contextlib.nullcontext() as image:
            frames, mode = getattr(image, "n_frames", frames), getattr(image, "mode", "")
            if mode == "P":
                colours = np.asarray(image.convert("RGB" + "A" * ("transparency" in image.info)))
            elif mode and mode not in ("L", "LA", "RGB", "RGBA", "I", "F") and mode[:4] != "I;16":
                image = image.convert({"1": "L", "PA": "RGBA", "La": "RGBA",
                                       "RGBa": "RGBA"}.get(mode, "RGB"))  # CMYK, LAB, ...
            array = np.asarray(image) if mode else array
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ValueError(f"cannot read the image {path}: {error}") from error
    if frames > 1:
        raise ValueError(f"{path} has {frames} frames (animated or multi-page); save one image"
                         + ("; a volume: read it with read_volume" if axes != "YX" else ""))
    if axes not in ("YX", "YXS", "SYX"):
        raise ValueError(f"{path} has TIFF axes {axes!r}; expected YX or YXS")
    if mode[:1] == "I" and array.size and 0 <= array.min() and array.max() <= 65535:
        array = array.astype(np.uint16)  # 16-bit PNGs open as 32-bit "I"
    return (np.moveaxis(array, 0, -1) if axes == "SYX" else array), colours


def as_image(array, name="image", *, stretch=False, spatial_dims=2):
    """An image as float32 ``(H, W, C)`` in [0, 1], C 1 or 3; ``stretch``: for display;
    ``spatial_dims=3``: a volume ``(D, H, W[, C])`` as float32 ``(D, H, W, C)``, any C."""
    array, what = np.asarray(array), "voxels" if spatial_dims == 3 else "pixels"
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError(f"{name} has NaN {what} ({np.isnan(array).sum()} of them)")
    array = check_array(array, name)
    array = array[..., None] if array.ndim == check_choice(spatial_dims, (2, 3),
                                                           "spatial_dims") else array
    if array.ndim != spatial_dims + 1 or spatial_dims == 2 and array.shape[-1] > 4:
        raise ValueError(f"{name} has shape {array.shape}; expected " + (
            "(H, W) or (H, W, C) with C 1 (gray) or 3 (RGB), or either with an opaque alpha "
            "channel" if spatial_dims == 2 else "a volume (D, H, W) or (D, H, W, C)"))
    if spatial_dims == 2 and array.shape[-1] in (2, 4):
        transparent = np.count_nonzero(array[..., -1] != FULL_SCALE.get(array.dtype, 1))
        if transparent and not stretch:
            raise ValueError(f"{name} has an alpha channel with {transparent} transparent pixels;"
                             f" only fully opaque images are read (remove the alpha channel first)")
        array = array[..., :-1]
    if array.dtype in (np.uint8, np.uint16, bool):
        return array.astype(np.float32) / FULL_SCALE.get(array.dtype, 1)
    low, high = float(array.min()), float(array.max())
    if array.dtype.kind == "f" and 0 <= low and high <= 1:
        return array.astype(np.float32)
    if stretch:
        return ((array.astype(np.float64) - low) / (high - low or 1)).astype(np.float32)
    fix = "scale them so" if spatial_dims == 2 else (
        "normalize_intensity maps a scan's values onto [0, 1]: a CT window, 'zscore'")
    raise ValueError(f"{name} has {array.dtype} {what} in [{low:.8g}, {high:.8g}]; expected 8-bit, "
                     f"16-bit or float {what} in [0, 1] ({fix})")


def read_image(path):
    """An image file (PNG, JPEG, TIFF, BMP, GIF; any depth and colour mode) as :func:`as_image`."""
    array, colours = _open(path)
    if colours is not None:
        gray = not np.ptp(colours[..., :3], axis=-1).any()
        array = colours[..., [0, 3] if colours.shape[-1] == 4 else [0]] if gray else colours
    return as_image(array, path)


class MaskValuesError(ValueError):
    """Mask values that do not read as meant: ``values``, ``files`` at fault, ``fix`` advised."""

    def __init__(self, message, *, values, files, fix=None):
        super().__init__(message)
        self.values, self.files, self.fix = list(values), list(files), dict(fix or {})


def values_text(values, limit=10):
    """Up to ``limit`` of the sorted ``values`` as text, and how many there are."""
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def _whole(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0


def _too_sparse(values):  # as many indices unused below the largest as used, or more
    return bool(values) and int(values[-1]) >= 2 and int(values[-1]) + 1 >= 2 * len(values)


def _value_counts(arrays):
    pairs = (np.unique(a, return_counts=True) for a in arrays)
    return sum((Counter(dict(zip(v.tolist(), n.tolist()))) for v, n in pairs), Counter())


def _values_error(files, counts, reason, advice=None):
    shown = ", ".join(map(str, files[:3])) + (f" and {len(files) - 3} more" if files[3:] else "")
    where = f"the mask {shown} has" if len(files) == 1 else f"the masks {shown} have"
    values = sorted(counts)
    message = f"{where} the values {values_text(values)}{reason}"
    if advice is not None:
        raise ValueError(message + advice)
    low, high, integral = values[0], values[-1], all(_whole(v) for v in values)
    ends = sum(n for v, n in counts.items() if min(v - low, high - v) <= (high - low) / 4)
    middle = int(low + high) // 2 if integral else (low + high) / 2
    palette = {(int(v),) * 3: i for i, v in enumerate(values)} if integral else {}
    look = (f"binary masks of {low:g} and {high:g}" if len(values) == 2 else
            "binary masks with in-between values at the edges (JPEG, smoothing)")
    advice, fix = next((a, f) for wrong, a, f in [  # the first rule that holds
        (integral and not _too_sparse(values),
         "Pass mask_mode='multiclass' to take them as class indices", {"mask_mode": "multiclass"}),
        (integral and len(values) >= 3 and not _too_sparse(values[:-1]),
         f"If {high} marks unlabelled pixels, pass ignore_index={high}", {"ignore_index": high}),
        (set(values) in ({0, 255}, {0, 65535}),
         "They are binary masks: pass mask_mode='binary'", {"mask_mode": "binary"}),
        (ends >= NEAR_BINARY * sum(counts.values()), f"They look like {look}: pass threshold="
         f"{middle:g} to read the pixels above {middle:g} as 1", {"threshold": middle}),
        (integral and len(values) <= 8,
         f"If each value is a class, number them with palette={palette}", {"palette": palette}),
        (True, "Renumber the classes 0, 1, 2, ... in the files", {})] if wrong)
    raise MaskValuesError(message + advice, values=values, files=files, fix=fix)


def as_mask(array, name="mask", mode=None, *, n_classes=None, ignore_index=None, batch=False,
            spatial_dims=2):
    """A mask in the package convention, ``mode`` one of MASK_MODES or None (docs/masks.md);
    ``spatial_dims=3``: a volume's, ``(D, H, W[, K])``."""
    array = check_array(array, name)
    check_ignore_index(ignore_index)
    if n_classes is not None:
        check_int(n_classes, "n_classes", 2)
    rank = check_choice(spatial_dims, (2, 3), "spatial_dims") + batch  # axes before channels
    array = array[..., None] if array.ndim == rank else array
    kind = "b" if array.dtype == bool else array.dtype.kind
    axes = ", ".join("N" * batch + "D" * (spatial_dims == 3) + "HW")
    if mode is None and array.ndim == rank + 1:
        mode = "multiclass" if kind in "iu" or ignore_index is not None else (
            "binary" if array.shape[-1] == 1 else "multilabel")
    check_choice(mode, (None, *MASK_MODES) if array.ndim != rank + 1 else MASK_MODES, "mode")
    if array.ndim != rank + 1 or mode != "multilabel" and array.shape[-1] != 1:
        raise ValueError(f"{name} must have the shape ({axes}) or ({axes}, 1), or ({axes}, "
                         f"labels) of 0/1 floats or bools for a multilabel mask; got "
                         f"{array.shape} ({array.dtype})")
    values = np.unique(array).tolist()
    top, text, reason, fix = values[-1], values_text(values), None, None
    above = [v for v in values if v >= (n_classes or np.inf) and v != ignore_index]
    if kind in "iu" and values in ([0, 255], [0, 65535]):
        reason = f"holds 0 and {top} only: a binary mask stored as 0/{top}; pass (mask > 0)"
    elif mode != "multiclass" and not set(values) <= {0, 1}:
        hint = "; class indices are integers" if kind == "f" else ""
        reason = f"must hold 0 and 1 only (a {mode} mask{hint}); got the values {text}"
    elif mode == "multiclass" and not all(float(v).is_integer() and v >= 0 for v in values):
        reason = f"must hold class indices (integers >= 0); got the values {text}"
    elif mode == "multiclass" and ignore_index is None and values == [0, 1, 255] and (
            n_classes or 0) <= 255:  # 255 as void; dense labels 0..255 are 256 classes
        reason, fix = (f"has the values {text}, which as class indices make 256 classes, 253 of "
                       f"them never used. If 255 marks unlabelled pixels, pass ignore_index=255"
                       ), {"ignore_index": 255}
    elif mode == "multiclass" and above:
        ignored = "" if ignore_index is None else f" (or be ignore_index={ignore_index})"
        reason = (f"must hold class indices below n_classes={n_classes}{ignored}; got "
                  f"{values_text(above)}")
    if reason:
        raise MaskValuesError(f"{name} {reason}", values=values, files=[name], fix=fix)
    return array.astype(np.int32 if mode == "multiclass" else np.float32)


def as_prediction(array, name="prediction", *, threshold=0.5, mode=None, spatial_dims=2):
    """A model's output (or a mask) as a :class:`Prediction`: thresholded or arg-maxed;
    ``spatial_dims=3``: a volume's, ``(D, H, W[, C])``."""
    array = check_array(array, name)
    check_number(threshold, "threshold", 0, 1)
    if array.dtype.kind != "f":
        return Prediction(as_mask(array, name, mode, spatial_dims=spatial_dims))
    check_choice(mode, (None, *MASK_MODES), "mode")
    array = array[..., None] if array.ndim == check_choice(spatial_dims, (2, 3),
                                                           "spatial_dims") else array
    if array.ndim != spatial_dims + 1:
        axes = "D, H, W" if spatial_dims == 3 else "H, W"
        raise ValueError(f"{name} must have the shape ({axes}) or ({axes}, C); got {array.shape}")
    exact, soft = array.astype(np.float64), 0 <= array.min() and array.max() <= 1
    sigmoid = array.shape[-1] == 1 or mode == "multilabel"
    if sigmoid and not soft:
        raise ValueError(f"{name} must hold probabilities in [0, 1] (after a sigmoid); got "
                         f"values in [{array.min():g}, {array.max():g}]")
    labels = exact > threshold if sigmoid else exact[..., 1:] > threshold if (
        array.shape[-1] == 2 and soft) else np.argmax(array, axis=-1)[..., None]
    kind = np.float32 if sigmoid and mode != "multiclass" else np.int32
    return Prediction(labels.astype(kind), array.astype(np.float32))


def _mask_pixels(path, palette=None):  # gray (None: coloured; a palette's indices), or classes
    array, colours = _open(path)
    if colours is None and array.ndim == 3 and array.shape[-1] > 2:
        array, colours = None, array  # RGB(A)
    if colours is None:
        array = array[..., 0] if array.ndim == 3 else array  # LA: its gray
        if array.ndim != 2:
            raise ValueError(f"the mask {path} has shape {array.shape}; expected one channel")
        array = check_array(array, f"the mask {path}")
    else:
        colours = colours[..., :3]  # a transparent palette entry is a colour like any
        array = array if np.ptp(colours, axis=-1).any() else colours[..., 0]
    if palette is None:
        return array
    colours = np.repeat(array[..., None], 3, axis=-1) if colours is None else colours
    found, inverse = np.unique(colours.reshape(-1, 3), axis=0, return_inverse=True)
    missing = [str(tuple(c)) for c in found.tolist() if tuple(c) not in palette]
    if missing:
        raise ValueError(f"the mask {path} has colours that are not in palette: "
                         f"{', '.join(missing[:10])}")
    classes = np.array([palette[tuple(c)] for c in found.tolist()])
    return classes[inverse.ravel()].reshape(colours.shape[:2])


def _read_masks(paths, mode, palette=None, threshold=None, ignore_index=None, folder=False):
    mode = check_choice({"classes": "multiclass"}.get(mode, mode), READ_MODES, "mask_mode")
    mode = "palette" if mode == "auto" and palette is not None else mode
    if mode == "palette" and palette is None:
        raise ValueError("mask_mode='palette' needs palette={(r, g, b): class, ...}")
    entries = palette.items() if isinstance(palette, dict) and palette else [(None, None)]
    if palette is not None and not all(isinstance(c, tuple) and len(c) == 3 and all(
            _whole(v) and v <= 255 for v in c) and _whole(i) for c, i in entries):
        fail("palette", "a dict of (r, g, b) tuples of 0..255 to class indices >= 0", palette)
    check_ignore_index(ignore_index)
    if threshold is not None:
        check_number(threshold, "threshold", 0)
    other = "ignore_index=" if ignore_index is not None else (
        "palette=" if palette is not None else f"mask_mode={mode!r}")
    if threshold is not None and (ignore_index is not None or mode in ("multiclass", "palette")):
        raise ValueError(f"threshold= reads binary masks; it does not go with {other}")
    if ignore_index is not None and mode == "binary":
        raise ValueError("ignore_index= keeps unlabelled pixels in class-index masks; it does "
                         "not go with mask_mode='binary': use mask_mode='multiclass'")
    mode = "binary" if threshold is not None else (
        "multiclass" if ignore_index is not None and mode == "auto" else mode)
    files = dict(paths) if isinstance(paths, dict) else {  # a dict: {path: values} (volumes)
        path: _mask_pixels(path, palette if mode == "palette" else None) for path in paths}
    held = {p: set(np.unique(g).tolist()) for p, g in files.items() if g is not None}
    binary = {p for p, v in held.items()
              if v <= {0, 1} or v <= {0, FULL_SCALE.get(files[p].dtype, 1)}}
    odd = [p for p, v in held.items() if not all(
        float(x).is_integer() and 0 <= x < AUTO_MAX_CLASSES for x in v)]
    if mode == "auto" and len(held) == len(files) and len(binary) < len(files) and odd:
        counts = _value_counts(files.values())  # one mode for all: 0/1, 0..3 are classes
        _values_error(odd, counts, f"; {EXPECTED['folder' if folder else 'auto']}. ")
    if mode == "auto":
        mode = "binary" if len(held) < len(files) or len(binary) == len(files) else "multiclass"
    masks = []
    for path, gray in files.items():
        if gray is None:
            raise ValueError(f"the mask {path} is colour-coded; pass mask_mode='palette' and "
                             f"palette={{(r, g, b): class, ...}}")
        top = np.iinfo(gray.dtype).max if gray.dtype.kind in "iu" else np.inf
        if threshold is not None and (threshold >= top or threshold >= 1 and held[path] == {0, 1}):
            raise ValueError(f"threshold={threshold:g} reads every pixel of the mask {path} as 0 "
                             f"(it holds {values_text(sorted(held[path]))}): leave it out for 0/1 "
                             f"masks, else give one below {top} (e.g. 127 for 8 bits)")
        full = gray.dtype.kind in "iu" and held.get(path) in ({0, 255}, {0, 65535})
        if mode == "binary" and threshold is None and path not in binary or (
                mode == "multiclass" and full):
            _values_error([path], _value_counts([gray]), f"; {EXPECTED[mode]}. ")
        try:
            masks.append(as_mask(gray > (threshold or 0) if mode == "binary" else gray,
                                 f"the mask {path}", "binary" if mode == "binary" else
                                 "multiclass", ignore_index=ignore_index, spatial_dims=gray.ndim))
        except MaskValuesError as error:
            error.files = [path]
            raise
    full = [p.name for p in held if max(held[p]) > 1]  # all binary here: 0/255, 0/65535
    ones = [p.name for p in held if p.name not in full and 1 in held[p]]
    if mode == "binary" and threshold is None and ones and full:
        warnings.warn(f"{[*files][0].parent} mixes {count(ones, 'mask')} of 0/1 ("
                      f"{', '.join(ones[:3])}) and {len(full)} of 0/255 ({', '.join(full[:3])}): "
                      f"all read as 0/1", stacklevel=3)
    return masks, mode


def read_mask(path, mode="auto", palette=None, *, threshold=None, ignore_index=None):
    """A mask file as :func:`as_mask` gives it, ``mode`` one of READ_MODES (docs/masks.md)."""
    return _read_masks([Path(path)], mode, palette, threshold, ignore_index)[0][0]


def check_ignore_index(ignore_index):
    """Refuse an ``ignore_index`` (the value of unlabelled pixels) not None or an int >= 0."""
    if ignore_index is not None and not _whole(ignore_index):
        fail("ignore_index", "an integer >= 0, the value of unlabelled pixels (e.g. 255)",
             ignore_index)


def mask_classes(masks, ignore_index=None, *, names=None, n_classes=None):
    """The number of classes (>= 2) of class-index masks, checked as a whole (docs/masks.md)."""
    names = [f"masks[{i}]" for i in range(len(masks))] if names is None else list(names)
    if n_classes is not None:
        check_int(n_classes, "n_classes", 2)
    held = {}
    for name, mask in zip(names, map(np.asarray, masks)):
        if not (mask.dtype == bool or mask.dtype.kind in "iu"):
            raise ValueError(f"{name} has {mask.dtype} values; class indices are integers (a "
                             f"float mask is binary: read it with mask_mode='binary')")
        held[name] = _value_counts([mask])
        if held[name] and min(held[name]) < 0:
            raise ValueError(f"{name}: class indices must be >= 0; found {min(held[name])}")
        held[name].pop(ignore_index, None)
    counts = sum(held.values(), Counter())
    if not counts:
        raise ValueError(f"every pixel of the masks is ignore_index={ignore_index}: no class")
    values = sorted(counts)
    top = n_classes - 1 if n_classes else values[-1]
    if ignore_index is not None and ignore_index <= top:
        raise ValueError(f"ignore_index={ignore_index} is not above the classes 0 to {top}: the "
                         f"ignored value must be above every class (e.g. ignore_index=255)")
    above = [v for v in values if v >= (len(values) if n_classes is None else n_classes)]
    if n_classes is None and not _too_sparse(values):
        return max(int(values[-1]) + 1, 2)
    if not above:
        return int(n_classes)
    files = [name for name, own in held.items() if set(own) & set(above)]
    if n_classes is None:
        n = int(values[-1]) + 1
        _values_error(files, counts, f", which as class indices make {n} classes, "
                                     f"{n - len(values)} of them never used. ")
    share = 100 * sum(counts[v] for v in above) / sum(counts.values())
    void = "" if ignore_index is not None or len(above) > 1 else (
        f", or ignore_index={above[0]} if {above[0]} marks unlabelled pixels")
    _values_error(files, counts, f", but n_classes={n_classes} makes the classes 0 "
                  f"{'and' if n_classes == 2 else 'to'} {n_classes - 1}: the pixels of "
                  f"{values_text(above)} ({share:.3g}% of them) would be left out of training "
                  f"and scores. ", f"Pass n_classes={above[-1] + 1}{void}")


def check_not_empty(masks, ignore_index=None):
    """A warning (text) if every mask is all background (nothing above 0 but ignore_index)."""
    if not any(np.any((m > 0) & (m != ignore_index)) for m in map(np.asarray, masks)):
        ignored = "" if ignore_index is None else f" but ignore_index={ignore_index}"
        return (f"every mask is all background ({count(masks, 'mask')}, no pixel above 0{ignored}"
                f"): a model trained on them learns to predict nothing; check the masks and "
                f"mask_mode")


def stack_or_list(arrays):
    """One ``(n, ...)`` array if all have one shape, else the list."""
    return np.stack(arrays) if len({a.shape for a in arrays}) == 1 else list(arrays)


def pad_to(array, shape):
    """``array`` zero-padded at the far end of its first ``len(shape)`` axes to ``shape`` at least
    (a volume narrower than a training patch; nnU-Net pads so too); other axes as they are.
    >>> pad_to(np.ones((21, 120, 45, 1)), (16, 64, 64)).shape
    (21, 120, 64, 1)
    """
    return np.pad(array, [(0, max(0, n - s)) for n, s in zip(shape, np.shape(array))] +
                  [(0, 0)] * (np.ndim(array) - len(shape)))


def image_files(folder, argument="folder"):
    """The image (or volume) files of ``folder`` as ``{file_stem: path}``, sorted, not hidden."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{argument} {folder} is not a folder")
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")]
    others = [p.name for p in files if p.suffix.lower() not in IMAGE_SUFFIXES and not is_volume(p)]
    stems = Counter(map(file_stem, files))
    twins = [p.name for p in files if stems[file_stem(p)] > 1]
    wrong = (f"holds files that are not images: {', '.join(others[:10])} (image suffixes: "
             f"{' '.join(IMAGE_SUFFIXES + VOLUME_SUFFIXES)})" if others else "holds no images"
             if not files else f"holds images of one stem: {', '.join(twins[:10])}; rename them"
             if twins else None)
    if wrong:
        raise ValueError(f"{argument} {folder} {wrong}")
    return {file_stem(p): p for p in files}


def pair_files(images_dir, masks_dir, *, names=("images_dir", "masks_dir"),
               unmatched=("images without a mask", "masks without an image")):
    """``[(image, mask)]`` paths matched by file stem (or ``<stem>_mask``); none unmatched."""
    images, masks = image_files(images_dir, names[0]), image_files(masks_dir, names[1])
    found = {images[s]: [masks.pop(m) for m in (s, f"{s}_mask") if m in masks] for s in images}
    for image, twins in found.items():
        if len(twins) > 1:
            raise ValueError(f"the image {image.name} has two masks: {twins[0].name} and "
                             f"{twins[1].name}")
    lonely = [[i.name for i, f in found.items() if not f], [p.name for p in masks.values()]]
    parts = [f"{text} in {where}: {', '.join(files[:10])}" for text, where, files in
             zip(unmatched, (masks_dir, images_dir), lonely) if files]
    if parts:
        raise ValueError("; ".join(parts) + " (pairs are matched by file stem, or <stem>_mask)")
    return [(image, twins[0]) for image, twins in found.items()]


def check_same_size(image, mask, image_path, mask_path):
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(f"the image {image_path} is {image.shape[1]}x{image.shape[0]} but its "
                         f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} (width x height)")


def from_folder(images_dir, masks_dir, *, mask_mode="auto", palette=None, threshold=None,
                ignore_index=None, n_classes=None, intensity="auto"):
    """Images and masks paired by file stem as a :class:`Split`, read as :func:`read_mask`;
    volume files as float32 ``(D, H, W, C)`` by ``normalize_intensity(..., intensity)`` (None:
    the stored values)."""
    pairs = pair_files(images_dir, masks_dir)
    paths = [mask_path for _, mask_path in pairs]
    volumes, flat = ([p for pair in pairs for p in pair if is_volume(p) == v] for v in (1, 0))
    if volumes and (flat or palette is not None):
        raise ValueError(f"the folders mix volumes and 2D images: {volumes[0]} is a volume, "
                         f"{flat[0]} a 2D image; keep one kind" if flat else "palette= reads "
                         "colour-coded mask images; volume masks hold values")
    scans = [(read_volume(image), read_volume(mask)) for image, mask in pairs] if volumes else []
    for (image, mask), (image_path, mask_path) in zip(scans, pairs):  # one grid a pair
        shape, far = image.array.shape[:3], np.abs(image.affine - mask.affine).max()
        if mask.array.shape != shape or far > 1e-3:
            raise ValueError(f"the mask {mask_path} is not on the grid of its image {image_path} ("
                             + (f"shape {mask.array.shape}, not {shape})" if mask.array.shape !=
                                shape else f"its affine differs from the image's by {far:.3g})"))
    masks, mode = _read_masks({p: mask.array for p, (_, mask) in zip(paths, scans)} if volumes
                              else paths, mask_mode, palette, threshold, ignore_index, True)
    images = [as_image(normalize_intensity(image.array, intensity, name=str(path)), str(path),
                       spatial_dims=3) if intensity else image.array.reshape(
        *image.array.shape[:3], -1).astype(np.float32) for (image, _), (path, _) in zip(
            scans, pairs)] if volumes else [read_image(image_path) for image_path, _ in pairs]
    for image, mask, (image_path, mask_path) in zip(images, masks, pairs) if flat else ():
        check_same_size(image, mask, image_path, mask_path)
    if mode == "multiclass" or (mode == "palette" and n_classes is not None):
        mask_classes(masks, ignore_index, names=paths, n_classes=n_classes)
    if len({image.shape[-1] for image in images}) > 1 and not volumes:
        images = [np.repeat(i, 3, axis=-1) if i.shape[-1] == 1 else i for i in images]
    return Split(stack_or_list(images), stack_or_list(masks), [file_stem(p) for p, _ in pairs],
                 spacing=[image.spacing for image, _ in scans] if volumes else None)


def is_volume(path):
    """True for a volume file's name (VOLUME_SUFFIXES): ``is_volume("ct.nii.gz")``."""
    return str(path).lower().endswith(VOLUME_SUFFIXES)


def file_stem(path):
    """A file's name without its suffix, both of ``.nii.gz``: ``"lung1.nii.gz"`` -> ``"lung1"``."""
    return next((Path(path).name[:-len(s)] for s in VOLUME_SUFFIXES
                 if Path(path).name.lower().endswith(s)), Path(path).stem)


def _suffix(path):  # a volume file's: .nii.gz, .nii, .nrrd, .tif or .tiff
    suffix = Path(path).name[len(file_stem(path)):].lower()
    if suffix == ".nrrd" and nrrd is None:
        raise ValueError(f"{path}: NRRD files need pynrrd: pip install pynrrd")
    return suffix if suffix in (*VOLUME_SUFFIXES, ".tif", ".tiff") else fail(
        "a volume file's name", f"one of {' '.join(VOLUME_SUFFIXES)} .tif .tiff", str(path))


def read_volume(path):
    """A volume file (NIfTI, NRRD, multi-page TIFF) as a :class:`Volume` (docs/masks.md).
    >>> read_volume(write_volume(Path(tempfile.mkdtemp()) / "a.nii", np.ones((2, 3, 4)))).spacing
    (1.0, 1.0, 1.0)
    """
    path, suffix, header = Path(path), _suffix(path), None
    try:  # the array in the file's (i, j, k[, c]) order
        if suffix.startswith(".nii"):
            image = nibabel.load(path)
            array, affine, header = np.asanyarray(image.dataobj), image.affine, image.header
        elif suffix == ".nrrd":
            array, info = nrrd.read(str(path))
            vector = [k not in ("domain", "space") for k in info.get("kinds", ["domain"] * 3)]
            array = np.moveaxis(array, vector.index(True), -1) if True in vector else array
            axes = np.asarray(info.get("space directions", np.diag(info.get("spacings", [1] * 3))))
            space, affine = info.get("space", "").lower(), np.eye(4)
            flip = np.array([1 - 2 * (space[:1] == "l"), 1 - 2 * ("p" in space[1:6]), 1])  # LPS
            affine[:3, :3] = flip[:, None] * axes[~np.isnan(axes).any(axis=1)].T + 0.0  # no -0.0
            affine[:3, 3] = flip * np.asarray(info.get("space origin", np.zeros(3)), float) + 0.0
        else:
            with tifffile.TiffFile(path) as file:  # ImageJ's spacing, or write_volume's
                array, axes = file.series[0].asarray(), file.series[0].axes
                z = (file.imagej_metadata or (file.shaped_metadata or [{}])[0]).get("spacing", 1.0)
                x, y = (1 / r if r else 1.0 for r in file.pages[0].get_resolution())
            if len(set(axes) - set("CS")) != 3:  # Z (or pages: I, Q), Y, X, and channels
                raise ValueError(f"TIFF axes {axes}: not a volume (ZYX, and C or S channels); "
                                 f"read 2D images with read_image")
            array = np.moveaxis(array, axes.index("C"), -1) if "C" in axes else array
            array, affine = np.transpose(array, (2, 1, 0, 3)[:array.ndim]), np.diag([x, y, z, 1.0])
    except Exception as error:  # nibabel's, pynrrd's, gzip's, zlib's, tifffile's, ours
        raise ValueError(f"cannot read the volume {path}: {error}") from error
    if array.ndim not in (3, 4):
        raise ValueError(f"{path} has shape {array.shape}; a volume has 3 axes (4: channels)")
    spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0)[::-1])
    return Volume(np.transpose(array, (2, 1, 0, 3)[:array.ndim]), affine, spacing, header)


def write_volume(path, array, like=None, *, spacing=None):
    """Write ``array`` ``(D, H, W[, C])`` whole to ``path`` (.nii.gz, .nii, .nrrd, .tif) with the
    affine and NIfTI header of ``like`` (a :class:`Volume` on its grid), else ``spacing`` per
    axis (1 mm); the array's dtype (bool as uint8). Returns ``path``.
    >>> write_volume(Path(tempfile.mkdtemp()) / "m.nrrd", np.ones((2, 3, 4), bool)).name
    'm.nrrd'
    """
    array, suffix = check_array(array, "array"), _suffix(path)
    array = array.astype(np.uint8) if array.dtype == bool else array
    grid = array.shape[:3] if like is None else like.array.shape[:3]
    if array.ndim not in (3, 4) or array.shape[:3] != grid:
        raise ValueError(f"array has shape {array.shape}; expected a volume (D, H, W) or (D, H, "
                         f"W, C)" + ("" if like is None else f" on the grid of like, {grid}"))
    spacing = [check_number(s, "spacing", 0, open_low=True) for s in spacing or (1, 1, 1)]
    if len(spacing) != 3:
        fail("spacing", "3 numbers > 0, mm per array axis (D, H, W)", spacing)
    affine = np.diag([*spacing[::-1], 1.0]) if like is None else like.affine
    data = np.transpose(array, (2, 1, 0, 3)[:array.ndim])  # the files' (i, j, k[, c])
    if suffix.startswith(".nii"):
        header = getattr(like, "header", None)  # a NIfTI header kept, else a new one
        image = nibabel.Nifti1Image(data, affine, header, dtype=data.dtype)
        image.header["cal_min"] = image.header["cal_max"] = 0  # the scan's display range: unset
        payload = image.to_bytes()
        payload = gzip.compress(payload, 1, mtime=0) if suffix == ".nii.gz" else payload
        return write_atomically(path, lambda file: file.write(payload))
    if suffix == ".nrrd":
        lps, vector = np.array([-1.0, -1.0, 1.0]), int(array.ndim == 4)  # RAS to NRRD's LPS
        header = {"space": "left-posterior-superior", "kinds": ["vector"] * vector + ["domain"] * 3,
                  "space directions": np.vstack([np.full((vector, 3), np.nan), (
                      lps[:, None] * affine[:3, :3]).T + 0.0]), "encoding": "gzip",
                  "space origin": lps * affine[:3, 3] + 0.0}
        data = np.moveaxis(data, -1, 0) if vector else data
        return write_atomically(path, lambda file: nrrd.write(file, data, header))
    (x, y, z), axes = np.linalg.norm(affine[:3, :3], axis=0), "ZCYX" if array.ndim == 4 else "ZYX"
    return write_atomically(path, lambda file: tifffile.imwrite(  # pages of one channel each
        file, np.moveaxis(array, -1, 1) if axes == "ZCYX" else array, photometric="minisblack",
        resolution=(1 / x, 1 / y), metadata={"spacing": float(z), "axes": axes}))


def normalize_intensity(array, intensity="auto", *, name="volume"):
    """``array`` (volume or image) as float32 in [0, 1], its shape kept; ``intensity``: a window
    ``(low, high)`` or a name in WINDOWS (clipped, linear), ``"zscore"`` (+-ZSCORE_CLIP sd onto
    [0, 1]), ``"none"`` (as_image's rules), ``"auto"``: "abdomen" if min <= -500, else "zscore".
    >>> normalize_intensity(np.array([-1000, -160, 40, 240, 3000]), "abdomen").tolist()
    [0.0, 0.0, 0.5, 1.0, 1.0]
    """
    array, named = check_array(array, name), isinstance(intensity, str)
    if named and intensity == "auto":
        intensity = "abdomen" if array.min() <= CT_AIR else "zscore"
    if named and intensity == "zscore":
        values = array.astype(np.float64)
        z = np.clip((values - values.mean()) / (values.std() or 1), -ZSCORE_CLIP, ZSCORE_CLIP)
        return ((z + ZSCORE_CLIP) / (2 * ZSCORE_CLIP)).astype(np.float32)
    if named and intensity == "none":
        return as_image(array.reshape(-1, 1, 1), name, spatial_dims=3).reshape(array.shape)
    window = WINDOWS.get(intensity) if named else intensity
    low, high = (check_number(v, "intensity (low, high)") for v in window) if isinstance(
        window, (tuple, list)) and len(window) == 2 else (0, 0)
    if low >= high:
        fail("intensity", "'auto', 'zscore', 'none', one of WINDOWS (" + ", ".join(map(
            repr, WINDOWS)) + ") or a window (low, high) with low < high", intensity)
    return np.clip((array.astype(np.float64) - low) / (high - low), 0, 1).astype(np.float32)


def ct_window(volumes, masks, percentiles=(0.5, 99.5)):
    """A CT window ``(low, high)`` for :func:`normalize_intensity`: the ``percentiles`` of the
    labelled voxels (mask > 0) of the training ``volumes`` (nnU-Net's rule).
    >>> ct_window([np.arange(101).reshape(1, 1, 101)], [np.ones((1, 1, 101))], (10, 90))
    (10.0, 90.0)
    """
    low, high = (check_number(p, "percentiles", 0, 100) for p in percentiles)
    if low >= high:
        fail("percentiles", "(low, high) with low < high", percentiles)
    pairs = list(zip(map(np.asarray, volumes), map(np.asarray, masks), strict=True))
    for i in [i for i, (volume, mask) in enumerate(pairs) if volume.size != mask.size][:1]:
        raise ValueError(f"masks[{i}] {pairs[i][1].shape} is not on the grid of volumes[{i}] "
                         f"{pairs[i][0].shape}")
    labelled = np.concatenate([np.zeros(0)] + [v.ravel()[m.ravel() > 0] for v, m in pairs])
    if not labelled.size:
        raise ValueError("the masks label no voxel (none > 0): no window to take")
    return tuple(float(v) for v in np.percentile(labelled, (low, high)))
