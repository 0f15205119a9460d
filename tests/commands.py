"""The installed ``keras-unet`` command, run in a subprocess as the command tests need it
(one helper for tests/test_cli.py and tests/test_bad_inputs.py)."""

import os
import subprocess
import sys
from pathlib import Path

# The console script installed beside this interpreter (by `pip install -e .`).
KERAS_UNET = str(Path(sys.executable).parent / "keras-unet")


def command_env(env=None, *, fast=True, quiet=True):
    """``env`` (default: this process's environment) with the TensorFlow backend;
    ``fast=False`` drops ``KERAS_UNET_FAST`` (the epochs and steps asked for are run),
    ``quiet=False`` drops ``TF_CPP_MIN_LOG_LEVEL`` (TensorFlow logs as it does for a
    user, and the command must hide it)."""
    env = dict(os.environ if env is None else env, KERAS_BACKEND="tensorflow")
    for name, keep in (("KERAS_UNET_FAST", fast), ("TF_CPP_MIN_LOG_LEVEL", quiet)):
        if not keep:
            env.pop(name, None)
    return env


def run_command(*args, cwd=None, env=None, fast=True, quiet=True, timeout=600, **popen):
    """``keras-unet *args`` run to its end in ``cwd``, stdout and stderr captured as text
    (a ``subprocess.CompletedProcess``); ``env``, ``fast`` and ``quiet`` as in
    :func:`command_env`; ``popen``: more arguments of ``subprocess.run`` (``umask=``)."""
    return subprocess.run([KERAS_UNET, *map(str, args)], capture_output=True, text=True,
                          env=command_env(env, fast=fast, quiet=quiet), cwd=cwd,
                          timeout=timeout, **popen)
