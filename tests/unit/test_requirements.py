"""The Lambda's requirements are exact pins (the same package whichever pip builds it) and sit inside the
ranges pyproject.toml gives the same libraries."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
# The Lambda ships the same module under a lighter distribution name.
SAME_MODULE = {"phonenumberslite": "phonenumbers"}


def lambda_pins(file: str = "requirements.txt") -> dict[str, Version]:
    """A requirements file's pins, with those of any file it includes (`-r other.txt`)."""
    pins: dict[str, Version] = {}
    for line in (ROOT / "functions" / file).read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if text.startswith("-r "):
            pins.update(lambda_pins(text[3:].strip()))
            continue
        requirement = Requirement(text)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"{text}: pin an exact version"
        pins[canonicalize_name(requirement.name)] = Version(specifiers[0].version)
    return pins


def test_every_lambda_requirement_is_an_exact_pin() -> None:
    assert lambda_pins()


def test_the_console_ships_everything_the_service_functions_do_and_its_own() -> None:
    service, console = lambda_pins(), lambda_pins("console-requirements.txt")
    assert {name: console[name] for name in service} == service
    own = {"jinja2", "markupsafe", "pyjwt", "cryptography", "cffi", "pycparser", "pyyaml"}
    assert set(console) - set(service) == own


def test_the_pins_sit_inside_the_project_ranges() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ranges = {canonicalize_name(Requirement(line).name): Requirement(line).specifier for line in project}
    checked = 0
    for name, version in lambda_pins("console-requirements.txt").items():
        spec = ranges.get(canonicalize_name(SAME_MODULE.get(name, name)))
        if spec is not None:
            assert spec.contains(version), f"{name}=={version} is outside pyproject.toml's {spec}"
            checked += 1
    assert checked >= 4
