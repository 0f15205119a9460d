"""Run tutorial notebooks in full, in place, as their committed outputs are made.

    python tools/run_notebooks.py 01_quickstart.ipynb 02_isbi2012_paper.ipynb ...

Each notebook runs at its default settings (not in fast mode) with ``jupyter nbconvert
--execute --inplace``, with the real datasets from ``KERAS_UNET_DATA_DIR`` (default
``../shared/data``) and the Oxford pets notebook on the stand-in archive that the tests
serve from 127.0.0.1 (no network needed). Afterwards TensorFlow's C++ start-up log lines,
which ``TF_CPP_MIN_LOG_LEVEL`` cannot silence, are removed from the cells' stderr, and the
first cell's "full run" line gets the measured time from the notebook's last line.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TF_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|"
                    r"[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\])")
RAN_IN = re.compile(r"Ran in (\d+\.\d+) min with default settings")


def strip_tensorflow_log(notebook):
    """Drop TensorFlow's start-up lines from every stderr output (and outputs left empty)."""
    for cell in notebook["cells"]:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                lines = "".join(output["text"]).splitlines(keepends=True)
                lines = [line for line in lines if not TF_LOG.match(line) and line.strip()]
                if not lines:
                    continue
                output["text"] = lines
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept


def record_run_time(notebook):
    """The measured minutes into the first markdown cell's '*The outputs below ...*' line."""
    text = "".join("".join(o.get("text", "")) for c in notebook["cells"] for o in c.get("outputs", []))
    found = RAN_IN.findall(text)
    if not found:
        return None
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and "*The outputs below" in source:
            source = re.sub(r"\d+\.\d+ min(?=[^\n]*\*)", f"{found[-1]} min", source, count=1)
            cell["source"] = source.splitlines(keepends=True)
            break
    return found[-1]


def main(names):
    sys.path.insert(0, str(ROOT / "tests"))
    from archives import LoopbackServer, serve_pets_mirror, tutorial_pets

    root = Path(tempfile.mkdtemp(prefix="keras-unet-notebooks-"))
    server = LoopbackServer()
    registry = serve_pets_mirror(server, root, *tutorial_pets(n_trainval=2100, n_test=500))
    env = dict(os.environ, KERAS_UNET_DATA=str(root / "cache"), KERAS_UNET_REGISTRY=str(registry),
               SHELL="/bin/sh", TF_CPP_MIN_LOG_LEVEL="2")
    env.setdefault("KERAS_UNET_DATA_DIR", str((ROOT.parent / "shared" / "data").resolve()))
    env.pop("KERAS_UNET_FAST", None)
    jupyter = Path(sys.executable).with_name("jupyter")
    try:
        for name in names:
            path = ROOT / "notebooks" / Path(name).name
            subprocess.run([str(jupyter), "nbconvert", "--to", "notebook", "--execute", "--inplace",
                            "--ExecutePreprocessor.timeout=7200", str(path)], env=env, check=True)
            notebook = json.loads(path.read_text())
            strip_tensorflow_log(notebook)
            minutes = record_run_time(notebook)
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
            print(f"{path.name}: ran in {minutes} min")
    finally:
        server.close()


if __name__ == "__main__":
    main(sys.argv[1:])
