"""The committed tutorial notebooks carry nothing of the machine that ran them: no
absolute path of its folders, no loopback address of a server it ran (sources, outputs
and metadata alike; pictures excepted). A reader's copy, or one opened in Colab, should
show only what is true everywhere."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

#: An absolute path of a machine's own folders: Linux and macOS home, temporary and
#: work folders, and Windows drives. Not a URL's path (``https://host/home/...``).
MACHINE_PATH = re.compile(
    r"(?<![\w.\-/])(?:/(?:work|home|root|tmp|Users|private|var/folders|mnt|opt)/"
    r"|[A-Za-z]:\\{1,2}(?=[\w.]))")
#: A server on this machine: ``127.0.0.1:<port>``, ``localhost:<port>``, ``[::1]:<port>``.
LOOPBACK = re.compile(r"(?:127\.0\.0\.1|localhost|0\.0\.0\.0|\[::1\]):\d+")


def texts(notebook):
    """``(where, text)`` of every text in the notebook ``notebook`` (a dict): each
    cell's source, metadata and textual outputs, and the notebook's metadata."""
    yield "notebook metadata", json.dumps(notebook.get("metadata", {}))
    for index, cell in enumerate(notebook["cells"]):
        where = f"cell {index}"
        yield f"{where} source", "".join(cell["source"])
        yield f"{where} metadata", json.dumps(cell.get("metadata", {}))
        for output in cell.get("outputs", []):
            if "text" in output:
                yield f"{where} {output.get('name', 'stream')}", "".join(output["text"])
            for kind, value in output.get("data", {}).items():
                if not kind.startswith("image/"):  # base64 pictures may hold any letters
                    yield f"{where} {kind}", value if isinstance(value, str) else (
                        "".join(value) if isinstance(value, list) else json.dumps(value))
            if output.get("output_type") == "error":
                yield f"{where} error", "\n".join([output.get("evalue", "")]
                                                  + output.get("traceback", []))


def found(pattern, notebook):
    """``["<where>: ...<excerpt>..."]`` for each match of ``pattern`` in ``notebook``."""
    hits = []
    for where, text in texts(notebook):
        for match in pattern.finditer(text):
            excerpt = text[max(0, match.start() - 30):match.end() + 50].replace("\n", " ")
            hits.append(f"{where}: ...{excerpt}...")
    return hits


def test_the_patterns_find_machine_paths_and_loopback_addresses_only():
    notebook = {"metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "source": ["run('/work/shared/data')\n"],
         "outputs": [
             {"output_type": "stream", "name": "stdout",
              "text": ["Downloading http://127.0.0.1:46187/pets/images.tar.gz\n",
                       "saved /tmp/pytest-of-me/outputs/model.keras\n",
                       "C:\\Users\\me\\data and ~/data, ../../shared/data, /path/to/data\n"]},
             {"output_type": "display_data",
              "data": {"text/plain": ["'/home/me/.keras' at localhost:8888"],
                       "image/png": "iVBORw0KGgo/tmp/AAAA/work/x"}},
             {"output_type": "error", "evalue": "no /Users/me/x", "traceback": []}]},
        {"cell_type": "markdown", "metadata": {}, "source": [
            "From https://example.org/home/data or file /content/data/drive (Colab)."]},
    ]}
    assert [hit.split(": ")[0] for hit in found(MACHINE_PATH, notebook)] == [
        "cell 0 source", "cell 0 stdout", "cell 0 stdout", "cell 0 text/plain", "cell 0 error"]
    assert [hit.split(": ")[0] for hit in found(LOOPBACK, notebook)] == [
        "cell 0 stdout", "cell 0 text/plain"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_names_no_folder_of_the_machine_that_ran_it(path):
    hits = found(MACHINE_PATH, json.loads(path.read_text()))
    assert not hits, f"{path.name} shows absolute paths of a machine:\n" + "\n".join(hits)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_names_no_loopback_address(path):
    hits = found(LOOPBACK, json.loads(path.read_text()))
    assert not hits, f"{path.name} shows loopback addresses:\n" + "\n".join(hits)


def test_there_are_notebooks_to_scan():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{n:02d}" for n in range(1, 10)]  # 01 ... 09
