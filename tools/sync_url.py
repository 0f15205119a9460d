"""Keep the project's address in step with setup.cfg's ``url``.

setup.cfg's ``url`` (``https://github.com/<owner>/<repo>``) is the one place that says where
the project lives. Three kinds of text repeat it and follow it:

- each notebook's Colab badge,
  ``https://colab.research.google.com/github/<owner>/<repo>/blob/main/notebooks/<its file>``;
- each notebook's install cell, ``pip install "keras-unet-paper @ git+<url>"``;
- the Markdown files (README.md first): their ``git+<url>`` install lines, their Colab links
  and every GitHub address of the project.

Usage::

    python tools/sync_url.py           # rewrite them after setup.cfg's url changed
    python tools/sync_url.py --check   # only list what disagrees; exit status 1 if anything does

Only the addresses change: the files are edited as text, byte for byte elsewhere.
GitHub addresses of other projects are left alone; they are listed in ``OTHER_PROJECTS``,
and an address that is neither the project's nor listed there is reported.
"""

import argparse
import configparser
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# GitHub repositories of other projects that the documentation may cite (owner/repo).
OTHER_PROJECTS = {
    "karolzak/keras-unet",
    "yingkaisha/keras-unet-collection",
    "zhixuhao/unet",
    "GeneralBlockchain/covid-19-chest-xray-segmentations-dataset",
    "sarah-antillia/Image-Segmentation-Liver-Tumor",
    "sarah-antillia/TensorFlow-FlexUNet-Image-Segmentation-KiTS19-Kidney-Tumor",
    "qubvel/segmentation_models",
    "qubvel/segmentation_models.pytorch",
    "qubvel-org/segmentation_models.pytorch",
    "Project-MONAI/MONAI",
    "keras-team/keras",
    "keras-team/keras-io",
    "keras-team/keras-hub",
    "tensorflow/tensorflow",
    "tensorflow/addons",
    "jax-ml/jax",
    "pytorch/pytorch",
    "computationalmodelling/nbval",
    "googlecolab/colabtools",
}

BRANCH = "main"
URL_RE = re.compile(r"^https://github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)$")
# A GitHub repository address, with or without its scheme; what precedes it is looked at in
# _github_addresses (a pattern that starts with a literal is fast on megabytes of notebook).
GITHUB_RE = re.compile(r"github\.com/([A-Za-z0-9_-][A-Za-z0-9_.-]*)/([A-Za-z0-9_.-]*[A-Za-z0-9_-])")
PREFIX_RE = re.compile(r"(?:https?://)?(?:www\.)?$")
COLAB_RE = re.compile(
    r"https://colab\.research\.google\.com/github/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)"
    r"/blob/([A-Za-z0-9_.-]+)/([A-Za-z0-9_./-]*[A-Za-z0-9_-])")
# The badge itself: it opens the notebook it sits in.
BADGE_RE = re.compile(
    r"(\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]\()"
    + COLAB_RE.pattern + r"\)")
GIT_PLUS_RE = re.compile(r"git\+(https?://[^\s\"'\\)\]>`]+)")
SKIP_DIRS = {"build", "dist", "node_modules", "site-packages"}


def project_url(root=ROOT):
    """setup.cfg's ``url``, checked to be ``https://github.com/<owner>/<repo>``."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(Path(root) / "setup.cfg", encoding="utf-8")
    url = config.get("metadata", "url", fallback="").strip()
    if not URL_RE.match(url):
        raise ValueError(f"setup.cfg: [metadata] url must be https://github.com/<owner>/<repo> "
                         f"(no trailing slash or .git); got {url!r}")
    return url


def _owner_repo(url):
    owner, repo = URL_RE.match(url).groups()
    return f"{owner}/{repo}"


def colab_badge(url, notebook_name):
    """The Colab address that opens ``notebooks/<notebook_name>`` of the project at ``url``."""
    return (f"https://colab.research.google.com/github/{_owner_repo(url)}/blob/{BRANCH}"
            f"/notebooks/{notebook_name}")


def notebooks(root=ROOT):
    """The tutorial notebooks, sorted."""
    return sorted((Path(root) / "notebooks").glob("*.ipynb"))


def markdown_files(root=ROOT):
    """The project's Markdown files (README.md first), outside hidden and build folders."""
    root = Path(root)
    found = []
    for path in root.rglob("*.md"):
        parts = path.relative_to(root).parts[:-1]
        if any(part.startswith(".") or part in SKIP_DIRS or part.endswith(".egg-info")
               for part in parts):
            continue
        found.append(path)
    return sorted(found, key=lambda p: (p != root / "README.md", str(p)))


def _github_matches(text):
    """(start, address as written, owner/repo) of each GitHub repository address in ``text``.

    ``start`` is where owner/repo begins. Hosts that end in github.com (gist.github.com,
    api.github.com) are not repository addresses and are skipped.
    """
    found = []
    for match in GITHUB_RE.finditer(text):
        prefix = PREFIX_RE.search(text, max(0, match.start() - 12), match.start()).group(0)
        begin = match.start() - len(prefix)
        if begin > 0 and (text[begin - 1].isalnum() or text[begin - 1] in "_.-"):
            continue
        owner, repo = match.groups()
        repo = repo.removesuffix(".git")
        found.append((match.start(1), text[begin:match.end()], f"{owner}/{repo}"))
    return found


def _github_addresses(text):
    """(address as written, owner/repo) for each GitHub repository address in ``text``."""
    return [(written, owner_repo) for _, written, owner_repo in _github_matches(text)]


def _address_problems(name, text, url, known_notebooks):
    """What disagrees with ``url`` in one file's text, any kind of file."""
    ours = _owner_repo(url)
    problems = []
    for written, owner_repo in _github_addresses(text):
        if owner_repo != ours and owner_repo not in OTHER_PROJECTS:
            problems.append(
                f"{name}: GitHub address {written!r} is neither setup.cfg's url ({url}) nor "
                f"another project listed in OTHER_PROJECTS of tools/sync_url.py")
    for match in COLAB_RE.finditer(text):
        owner, repo, branch, path = match.groups()
        notebook = path[len("notebooks/"):] if path.startswith("notebooks/") else None
        if (f"{owner}/{repo}" != ours or branch != BRANCH or notebook not in known_notebooks):
            problems.append(f"{name}: Colab address {match.group(0)!r} should open "
                            f"{colab_badge(url, notebook or '<a notebook>.ipynb')}")
    for match in GIT_PLUS_RE.finditer(text):
        if match.group(1) != url:
            problems.append(f"{name}: install address {match.group(0)!r} should be git+{url}")
    return problems


def check(root=ROOT):
    """Every disagreement with setup.cfg's url, as lines ``<file>: <what>``; [] if none."""
    root = Path(root)
    url = project_url(root)
    paths = notebooks(root)
    names = {path.name for path in paths}
    problems = []
    for path in paths:
        name = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        problems += _address_problems(name, text, url, names)
        for match in BADGE_RE.finditer(text):
            if match.group(5) != f"notebooks/{path.name}":
                problems.append(f"{name}: its Colab badge opens {match.group(5)}; it should "
                                f"open {colab_badge(url, path.name)}")
        cells = json.loads(text)["cells"]
        badge = colab_badge(url, path.name)
        first = "".join(cells[0]["source"]) if cells else ""
        if not cells or cells[0]["cell_type"] != "markdown" or f"]({badge})" not in first:
            problems.append(f"{name}: the first cell (Markdown) should carry the Colab badge "
                            f"[![Open In Colab](...)]({badge})")
        install = [c for c in cells if c["cell_type"] == "code"
                   and "pip install" in "".join(c["source"])]
        if not install:
            problems.append(f"{name}: no install cell (a code cell with %pip install)")
        for cell in install:
            if f"git+{url}" not in "".join(cell["source"]):
                problems.append(f"{name}: the install cell should install git+{url}")
    for path in markdown_files(root):
        name = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        problems += _address_problems(name, text, url, names)
        if path == root / "README.md" and f"git+{url}" not in text:
            problems.append(f"README.md: no install line from the repository "
                            f"(pip install \"keras-unet-paper @ git+{url}\")")
    return list(dict.fromkeys(problems))  # each once, in order


def _old_projects(root, url):
    """owner/repo of every project address written in the files that is not ``url``'s."""
    ours = _owner_repo(url)
    old = set()
    for path in [*notebooks(root), *markdown_files(root)]:
        text = path.read_text(encoding="utf-8")
        for match in COLAB_RE.finditer(text):
            old.add(f"{match.group(1)}/{match.group(2)}")
        for match in GIT_PLUS_RE.finditer(text):
            old |= {owner_repo for _, owner_repo in _github_addresses(match.group(1))}
    return old - {ours} - OTHER_PROJECTS


def _rewrite(text, url, old, notebook_name=None):
    ours = _owner_repo(url)

    def badge(match):
        return f"{match.group(1)}{colab_badge(url, notebook_name)})"

    def colab(match):
        owner, repo, branch, path = match.groups()
        if f"{owner}/{repo}" in old | {ours} and path.startswith("notebooks/"):
            return colab_badge(url, path[len("notebooks/"):])
        return match.group(0)

    def git_plus(match):
        found = _github_addresses(match.group(1))
        if found and found[0][1] in old | {ours}:
            return f"git+{url}"
        return match.group(0)

    if notebook_name is not None:
        text = BADGE_RE.sub(badge, text)
    text = COLAB_RE.sub(colab, text)
    text = GIT_PLUS_RE.sub(git_plus, text)
    pieces, done = [], 0
    for start, _, owner_repo in _github_matches(text):
        if owner_repo in old:
            pieces += [text[done:start], ours]
            done = start + len(owner_repo)
    return "".join(pieces) + text[done:]


def sync(root=ROOT):
    """Rewrite the notebooks' and Markdown files' addresses to setup.cfg's url.

    Returns the files changed. Each file is read and written back at once, so that an edit
    made to another part of it meanwhile is kept.
    """
    root = Path(root)
    url = project_url(root)
    old = _old_projects(root, url)
    changed = []
    for path in [*notebooks(root), *markdown_files(root)]:
        text = path.read_text(encoding="utf-8")
        new = _rewrite(text, url, old, path.name if path.suffix == ".ipynb" else None)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Make the notebooks' Colab badges and install cells and the Markdown "
        "files' addresses agree with setup.cfg's url.")
    parser.add_argument("--check", action="store_true",
                        help="only list what disagrees (exit status 1 if anything does)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.check:
        for path in sync(args.root):
            print(f"rewrote {path.relative_to(args.root)}")
    problems = check(args.root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems and args.check:
        print(f"every address agrees with setup.cfg's url ({project_url(args.root)})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
