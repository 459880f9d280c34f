"""The notebooks, papermill (Makefile) and the installed kernel name the same Jupyter kernel, and
`make lab` starts as root too, at the repository root."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def test_notebooks_select_the_installed_kernel():
    installed = set(re.findall(r"ipykernel install .*--name (\S+)", MAKEFILE))
    papermill = set(re.findall(r"papermill .* -k (\S+)", MAKEFILE))
    assert installed == papermill == {"hhlib"}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        kernelspec = json.loads(path.read_text(encoding="utf-8"))["metadata"]["kernelspec"]
        assert kernelspec["name"] == "hhlib", f"{path.name}: kernelspec {kernelspec['name']!r}, not hhlib"


def test_kernel_is_installed_where_an_outside_jupyterlab_looks():
    assert re.search(r"ipykernel install --user --name hhlib", MAKEFILE)


def test_lab_starts_as_root_at_the_repository_root():
    lab = MAKEFILE[MAKEFILE.index("\nlab:"):]
    assert "--ServerApp.root_dir=." in lab and "$(ALLOW_ROOT)" in lab
    assert "ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)" in MAKEFILE
