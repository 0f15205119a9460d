"""What the tutorial notebooks share: their settings and the line that says where and
how long they ran.

Every notebook takes its parameters from environment variables, so that the same
notebook runs at full size on a workstation, in seconds under CI, and with the paper's
configuration on a GPU, without editing a cell:

- ``KERAS_UNET_<NAME>`` sets the parameter ``name`` (``KERAS_UNET_EPOCHS=40``);
- ``KERAS_UNET_FAST=1`` swaps in each notebook's ``fast`` values (tiny data, an epoch
  or two), which is how ``make test`` executes every notebook with nbval.

An explicit ``KERAS_UNET_<NAME>`` wins over both the default and the fast value.

The real datasets a notebook (or a test, or a benchmark) reads are found through one
setting, ``KERAS_UNET_DATA_DIR``: a folder holding one sub-folder per dataset
(``isbi2012_em/``, ``drive/``, ...). :func:`dataset_dir` applies the rule.
"""

import os
import platform
import sys
import time
import types
import warnings
from pathlib import Path

FAST_VARIABLE = "KERAS_UNET_FAST"
PREFIX = "KERAS_UNET_"
#: The folder holding the real datasets, one sub-folder each: ``<folder>/<name>``.
DATA_DIR_VARIABLE = "KERAS_UNET_DATA_DIR"
#: How to get each real dataset that is not at hand (the end of :func:`dataset_help`).
HOW_TO_GET = {
    "isbi2012_em": ", or download it once (about 20 MB) into the package's cache: "
                   'python -c "from keras_unet import datasets; datasets.load_isbi2012()"',
    "drive": " (DRIVE is handed out after registration at https://drive.grand-challenge.org;"
             " unpack it as data/README.md describes)",
}
_TITLES = {"isbi2012_em": "ISBI 2012", "drive": "DRIVE"}
SHUFFLE_WARNING = r"`shuffle=True` was passed, but will be ignored"


def fast_mode():
    """True when ``KERAS_UNET_FAST=1``: notebooks and the command shrink their work.

    Example:
        >>> import os
        >>> fast_mode() == (os.environ.get("KERAS_UNET_FAST") == "1")
        True
    """
    return os.environ.get(FAST_VARIABLE) == "1"


def _parse(name, text, default):
    """The environment's ``text`` for parameter ``name``, typed like its default."""
    variable = PREFIX + name.upper()
    if isinstance(default, bool):
        value = text.strip().lower()
        if value not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"{variable} must be 1/0, true/false or yes/no; got {text!r}")
        return value in ("1", "true", "yes")
    if isinstance(default, (int, float)):
        try:
            return type(default)(text)
        except ValueError:
            kind = "an integer" if isinstance(default, int) else "a number"
            raise ValueError(f"{variable} must be {kind}; got {text!r}") from None
    if text.strip().lower() in ("", "none"):
        return None
    return text


class Settings(types.SimpleNamespace):
    """A notebook's parameters (attributes), where each came from, and a clock."""

    def report(self):
        """One line: how long the notebook has run, on what machine and software.

        The committed notebooks end with it, so a reader knows what their outputs cost.
        """
        minutes = (time.perf_counter() - self._started) / 60
        mode = "fast mode (KERAS_UNET_FAST=1)" if fast_mode() else "default settings"
        print(f"Ran in {minutes:.1f} min with {mode} on {machine()}.")


def settings(fast=None, **defaults):
    """The notebook's parameters: ``defaults``, the ``fast`` values under
    ``KERAS_UNET_FAST=1``, and any ``KERAS_UNET_<NAME>`` environment variable over both.

    Prints a table of the values and where each came from (a path as
    :func:`shown_path` writes it), and starts the clock that :meth:`Settings.report`
    reads. It also silences one harmless warning that every tutorial would otherwise
    print: Keras 3's "``shuffle=True`` was passed, but will be ignored" from
    ``model.fit`` on a ``tf.data.Dataset`` (the datasets of
    :func:`keras_unet.data.make_dataset` are shuffled already). In a Jupyter kernel,
    warnings then print as one line, ``UserWarning: message``, without the path and
    line of the code that raised them.

    Args:
        fast: ``{name: value}`` used instead of the default in fast mode; every name
            must be one of ``defaults``.
        **defaults: ``name=value``; the type of the value (bool, int, float, str or
            None for a path or text) is the type an environment variable is read as.

    Returns:
        a :class:`Settings` with one attribute per parameter.

    Raises:
        ValueError: for a fast name that has no default, or an environment variable
            that does not read as its parameter's type (naming the variable).

    Example:
        >>> import os
        >>> os.environ["KERAS_UNET_EPOCHS"] = "3"
        >>> run = settings(epochs=20, tile=256, data_dir=None, fast={"tile": 64})
        ... # doctest: +NORMALIZE_WHITESPACE
        parameter  value  from
        epochs     3      KERAS_UNET_EPOCHS
        tile       ...
        data_dir   None   default
        >>> run.epochs
        3
        >>> del os.environ["KERAS_UNET_EPOCHS"]
    """
    fast = dict(fast or {})
    unknown = sorted(set(fast) - set(defaults))
    if unknown:
        raise ValueError(f"fast names parameters without a default: {', '.join(unknown)}")
    values, sources = {}, {}
    for name, default in defaults.items():
        variable = PREFIX + name.upper()
        if variable in os.environ:
            values[name] = _parse(name, os.environ[variable], default)
            sources[name] = variable
        elif fast_mode() and name in fast:
            values[name], sources[name] = fast[name], "fast mode"
        else:
            values[name], sources[name] = default, "default"
    rows = [("parameter", "value", "from")] + [(n, repr(shown_path(values[n]))
                                                 if isinstance(values[n], str)
                                                 else str(values[n]), sources[n]) for n in values]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    warnings.filterwarnings("ignore", message=SHUFFLE_WARNING, category=UserWarning)
    if "ipykernel" in sys.modules:  # in a notebook: warnings without this machine's paths
        warnings.formatwarning = _one_line_warning
    return Settings(**values, _started=time.perf_counter())


def _one_line_warning(message, category, filename, lineno, line=None):
    """A warning as ``Category: message``: the notebooks' outputs keep no file paths."""
    return f"{category.__name__}: {message}\n"


def shown_path(path):
    """``path`` as the tutorials print it, so that their outputs name no folder of the
    machine that ran them: an absolute path inside the current folder or beside it (the
    two share a top-level folder) relative to the current folder, else one inside the
    home folder with ``~``; anything else (a relative path, a path elsewhere, text that
    is not a path) as it is.

    Example:
        >>> import os
        >>> shown_path(os.path.join(os.getcwd(), "outputs", "model.keras"))
        'outputs/model.keras'
        >>> shown_path(os.path.join(os.path.dirname(os.getcwd()), "data")).startswith("..")
        True
        >>> shown_path("outputs"), shown_path(None)
        ('outputs', None)
    """
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
    """The folder holding the real datasets, one sub-folder each: ``$KERAS_UNET_DATA_DIR``
    (``~`` expanded) if set, else ``default`` (the test suite passes ``../shared/data``
    beside the checkout; the notebooks pass nothing).

    Example:
        >>> import os
        >>> os.environ["KERAS_UNET_DATA_DIR"] = "/data/real"
        >>> data_root(), data_root("../shared/data")
        (PosixPath('/data/real'), PosixPath('/data/real'))
        >>> del os.environ["KERAS_UNET_DATA_DIR"]
        >>> data_root("../shared/data"), data_root()
        (PosixPath('../shared/data'), None)
    """
    root = os.environ.get(DATA_DIR_VARIABLE) or default
    return Path(root).expanduser() if root else None


def dataset_dir(name, default_root=None):
    """The folder to read the real dataset ``name`` (``"isbi2012_em"``, ``"drive"``)
    from, or None to let the package's loader fetch or find it.

    The rule, in order:

    1. ``<data_root(default_root)>/<name>``, i.e. ``$KERAS_UNET_DATA_DIR/<name>`` (or
       ``default_root/<name>`` where the variable is unset), if that folder exists;
    2. the package's download cache, :func:`keras_unet.datasets.cache_dir` ``(name)``,
       if it holds a complete download;
    3. None: then ``datasets.load_isbi2012(None)`` downloads ISBI 2012 into the cache,
       and ``datasets.load_drive(None)`` reads the cache or says how to get DRIVE
       (which needs a registration).

    So a notebook reads ``datasets.load_isbi2012(tutorial.dataset_dir("isbi2012_em"))``
    and runs the same on a workstation with a local copy and in Colab with nothing.

    Example:
        >>> import os, tempfile
        >>> root = tempfile.mkdtemp()
        >>> os.mkdir(os.path.join(root, "drive"))
        >>> os.environ["KERAS_UNET_DATA_DIR"] = root
        >>> dataset_dir("drive") == Path(root) / "drive"
        True
        >>> os.environ["KERAS_UNET_DATA"] = root  # an empty download cache
        >>> dataset_dir("isbi2012_em") is None
        True
        >>> del os.environ["KERAS_UNET_DATA_DIR"], os.environ["KERAS_UNET_DATA"]
    """
    from keras_unet import datasets

    root = data_root(default_root)
    if root is not None and (root / name).is_dir():
        return root / name
    cached = datasets.cache_dir(name)
    if (cached / datasets.COMPLETE).exists():
        return cached
    return None


def dataset_help(name, default_root=None):
    """Why :func:`dataset_dir` found no copy of ``name``, where it looked, and how to
    get the dataset: one sentence (what the test suite says when it skips a test).

    Example:
        >>> import os
        >>> os.environ["KERAS_UNET_DATA_DIR"] = "/nowhere"
        >>> print(dataset_help("drive"))  # doctest: +ELLIPSIS
        DRIVE not found in /nowhere/drive: set KERAS_UNET_DATA_DIR to a folder holding \
drive/ (DRIVE is handed out after registration at ...)
        >>> del os.environ["KERAS_UNET_DATA_DIR"]
    """
    from keras_unet import datasets

    root = data_root(default_root)
    looked = [str(root / name)] if root is not None else []
    if name in datasets.REGISTRY:  # only a download of the package counts in the cache
        looked.append(f"the cache {datasets.cache_dir(name)}")
    return (f"{_TITLES.get(name, name)} not found in {' nor in '.join(looked)}: set "
            f"{DATA_DIR_VARIABLE} to a folder holding {name}/{HOW_TO_GET.get(name, '')}")

def machine():
    """What this runs on, in words: the accelerator or CPU, and the software versions.

    Example:
        >>> "Keras" in machine()
        True
    """
    import keras

    from keras_unet.training import available_devices

    devices = available_devices()
    gpus = [d for d in devices if "gpu" in d.lower() or "cuda" in d.lower()]
    if gpus:
        where = f"{len(gpus)} GPU ({gpus[0]})"
    else:
        where = f"a {os.cpu_count()}-core {cpu_name()} CPU, no GPU"
    return f"{where}; Keras {keras.__version__}, backend {keras.backend.backend()}"


def cpu_name():
    """The CPU's model name (Linux's /proc/cpuinfo), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
