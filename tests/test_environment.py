"""The pip requirements and environment.yml name the same packages at the same versions."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pip_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def _conda_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    return {name.lower(): version for name, version in (spec.split("==") for spec in pip_section)}


def test_environment_yml_matches_requirements():
    assert _conda_pins() == _pip_pins()


def test_every_requirement_is_pinned_exactly():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert "==" in line, f"requirements.txt: {line!r} is not pinned with =="


def test_lock_agrees_with_requirements():
    lock = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            lock[name.lower().replace("_", "-")] = version
    for name, version in _pip_pins().items():
        assert lock.get(name.replace("_", "-")) == version, f"{name}: requirements.txt {version}, lock {lock.get(name)}"


def test_torch_pin_is_the_offline_one():
    pins = _pip_pins()
    assert (pins["torch"], pins["torchvision"]) == ("2.14.1", "0.29.1")
