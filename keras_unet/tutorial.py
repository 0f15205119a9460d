"""What the tutorial notebooks share: their settings (``KERAS_UNET_<NAME>`` over the
``fast`` values of ``KERAS_UNET_FAST=1`` over the defaults), the folder of the real datasets
(``KERAS_UNET_DATA_DIR``, :func:`dataset_dir`), and the line saying where they ran."""

import os
import platform
import re
import sys
import time
import types
import warnings
from pathlib import Path

from keras_unet import datasets

FAST_VARIABLE = "KERAS_UNET_FAST"
PREFIX = "KERAS_UNET_"
DATA_DIR_VARIABLE = "KERAS_UNET_DATA_DIR"
#: How to get each real dataset that is not at hand (the end of :func:`dataset_help`).
_DOWNLOAD = (", or download it once ({}) into the package's cache: python -c "
             '"from keras_unet import datasets; datasets.{}()"')
HOW_TO_GET = {"isbi2012": _DOWNLOAD.format("about 20 MB", "load_isbi2012"),
              "tumour_volumes": _DOWNLOAD.format("34 MB", "load_tumour_volumes"),
              "drive": " (DRIVE is handed out after registration at https://drive.grand-challenge"
                       ".org; unpack it as data/README.md describes)"}
_TITLES = {"isbi2012": "ISBI 2012", "drive": "DRIVE"}
SHUFFLE_WARNING = r"`shuffle=True` was passed, but will be ignored"


def fast_mode():
    """True when ``KERAS_UNET_FAST=1``: notebooks and the command shrink their work."""
    return os.environ.get(FAST_VARIABLE) == "1"


def _parse(variable, text, default):
    """The environment's ``text`` for ``variable``, typed like its default."""
    word = text.strip().lower()
    if isinstance(default, bool):
        if word not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"{variable} must be 1/0, true/false or yes/no; got {text!r}")
        return word in ("1", "true", "yes")
    if isinstance(default, (int, float)):
        try:
            return type(default)(text)
        except ValueError:
            kind = "an integer" if isinstance(default, int) else "a number"
            raise ValueError(f"{variable} must be {kind}; got {text!r}") from None
    return None if word in ("", "none") else text


class Settings(types.SimpleNamespace):
    """A notebook's parameters (attributes) and a clock."""

    def report(self):
        """Print how long the notebook has run, on what machine and software."""
        minutes = (time.perf_counter() - self._started) / 60
        mode = "fast mode (KERAS_UNET_FAST=1)" if fast_mode() else "default settings"
        print(f"Ran in {minutes:.1f} min with {mode} on {machine()}.")


def settings(fast=None, **defaults):
    """The notebook's parameters: ``defaults`` (their types are the types the environment
    is read as), ``fast`` ones under ``KERAS_UNET_FAST=1``, ``KERAS_UNET_<NAME>`` over both.
    Prints a table of the values and where each came from, starts the clock of
    :meth:`Settings.report`, silences Keras's harmless "``shuffle=True`` was passed" warning
    and, in a Jupyter kernel, prints warnings as one line without the code's path."""
    fast = fast or {}
    unknown = sorted(set(fast) - set(defaults))
    if unknown:
        raise ValueError(f"fast names parameters without a default: {', '.join(unknown)}")
    values, rows = {}, [("parameter", "value", "from")]
    for name, default in defaults.items():
        variable = PREFIX + name.upper()
        if variable in os.environ:
            values[name], source = _parse(variable, os.environ[variable], default), variable
        elif fast_mode() and name in fast:
            values[name], source = fast[name], "fast mode"
        else:
            values[name], source = default, "default"
        shown = repr(shown_path(value)) if isinstance(value := values[name], str) else str(value)
        rows.append((name, shown, source))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    warnings.filterwarnings("ignore", message=SHUFFLE_WARNING, category=UserWarning)
    if "ipykernel" in sys.modules:  # in a notebook: warnings without this machine's paths
        warnings.formatwarning = lambda message, category, *_: f"{category.__name__}: {message}\n"
    return Settings(**values, _started=time.perf_counter())


def shown_path(path):
    """``path`` as the tutorials print it, naming no folder of the machine: relative to the
    current folder if both share a top-level folder, else under ``~``, else as it is."""
    if not isinstance(path, (str, os.PathLike)) or not os.path.isabs(path):
        return path
    path, here, home = os.path.abspath(path), os.getcwd(), os.path.expanduser("~")
    top = Path(path).parts[:2]
    if top == Path(here).parts[:2] and len(top) == 2:
        return Path(os.path.relpath(path, here)).as_posix()
    if home not in ("", "/") and Path(path).is_relative_to(home):
        return "~/" + Path(path).relative_to(home).as_posix()
    return path


def data_root(default=None):
    """``$KERAS_UNET_DATA_DIR`` (``~`` expanded), else ``default``, as a Path; or None."""
    root = os.environ.get(DATA_DIR_VARIABLE) or default
    return Path(root).expanduser() if root else None


def _where(name, default_root):
    """``(name, folder, data root)`` of a dataset named by either (``isbi2012[_em]``)."""
    name = {folder: own for own, folder in datasets.FOLDERS.items()}.get(name, name)
    return name, datasets.FOLDERS.get(name, name), data_root(default_root)


def dataset_dir(name, default_root=None):
    """The folder of the real dataset ``name`` (``"isbi2012"``, ``"drive"``, or its folder's
    name): ``<data_root(default_root)>/<folder>`` if it exists, else a complete download in
    the cache, else None (the loader downloads it or says how to get it)."""
    name, folder, root = _where(name, default_root)
    if root is not None and (root / folder).is_dir():
        return root / folder
    cached = datasets.cache_dir(name)
    return cached if (cached / datasets.COMPLETE).exists() else None


def dataset_help(name, default_root=None):
    """Why :func:`dataset_dir` found no ``name``, where it looked, how to get it: a sentence."""
    name, folder, root = _where(name, default_root)
    looked = [str(root / folder)] if root is not None else []
    if name in datasets.REGISTRY:  # only a download of the package counts in the cache
        looked.append(f"the cache {datasets.cache_dir(name)}")
    where = f"in {' nor in '.join(looked)}" if looked else f"({DATA_DIR_VARIABLE} is not set)"
    return (f"{_TITLES.get(name, name)} not found {where}: set {DATA_DIR_VARIABLE} to a folder "
            f"holding {folder}/{HOW_TO_GET.get(name, '')}")


def machine():
    """What this runs on, in words: the accelerator or CPU, and the software versions."""
    import keras
    from keras_unet.training import available_devices
    gpus = [d for d in available_devices() if "gpu" in d.lower() or "cuda" in d.lower()]
    where = (f"{len(gpus)} GPU ({gpus[0]})" if gpus
             else f"a {os.cpu_count()}-core {cpu_name()} CPU, no GPU")
    return f"{where}; Keras {keras.__version__}, backend {keras.backend.backend()}"


def cpu_name():
    """The CPU's model name (Linux's /proc/cpuinfo), else the architecture."""
    info = Path("/proc/cpuinfo")
    found = re.search(r"^model name\s*:\s*(.+)$", info.read_text() if info.exists() else "", re.M)
    return found.group(1).strip() if found else platform.processor() or platform.machine()
