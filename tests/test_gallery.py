"""The README gallery never drifts from the code: tools/make_gallery.py regenerates docs/gallery pixel for pixel
(the bytes also depend on the deflate library's version, which a decoder never sees).

The script lives in the repository (tools/ is not a package): it is loaded from the checkout next to tests/.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "make_gallery.py"
GALLERY = ROOT / "docs" / "gallery"
README = ROOT / "README.md"


def load_script():
    spec = importlib.util.spec_from_file_location("make_gallery", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gallery")
    paths = load_script().main(out)
    return out, paths


def readme_pictures() -> list[str]:
    return re.findall(r"docs/gallery/([\w-]+\.png)", README.read_text(encoding="utf-8"))


def test_readme_pictures_are_the_gallery(regenerated):
    out, paths = regenerated
    shown = readme_pictures()
    assert shown, "README.md shows no picture of docs/gallery"
    assert sorted(set(shown)) == sorted(p.name for p in paths)
    for name in shown:
        assert (GALLERY / name).is_file(), f"README.md shows docs/gallery/{name}, which is missing"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)


def test_readme_lines_are_the_script_lines():
    readme = README.read_text(encoding="utf-8")
    shown = re.findall(r"`(fastquant\.save\(out / \"[\w-]+\.png\".*?)`", readme)
    script_lines = {line.strip() for line in SCRIPT.read_text(encoding="utf-8").splitlines()}
    assert sorted(re.search(r"\"([\w-]+\.png)\"", line)[1] for line in shown) == sorted(set(readme_pictures()))
    for line in shown:
        assert line in script_lines, f"README.md shows {line!r}, not a line of tools/make_gallery.py"


def test_committed_pictures_are_regenerated_exactly(regenerated):
    _, paths = regenerated
    for path in paths:
        committed = GALLERY / path.name
        with Image.open(committed) as old, Image.open(path) as new:
            assert (old.mode, old.size) == (new.mode, new.size), path.name
            assert np.array_equal(np.asarray(old), np.asarray(new)), (
                f"{path.name}: the pixels differ from docs/gallery; run `python tools/make_gallery.py`"
            )
            assert old.getpalette() == new.getpalette(), path.name
