"""The deploy guide keeps up with the template: the README's parameter table and samconfig.toml's comments
name every template parameter (and no other), and the README names the Pythons functions/Makefile accepts."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def template_parameters() -> set[str]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((REPO / "template.yaml").read_text(), Loader=Loader)
    return set(template["Parameters"])


def test_the_readme_table_names_every_parameter() -> None:
    readme = (REPO / "README.md").read_text()
    guide = readme[readme.index("**Template parameters**") :]
    table = set(re.findall(r"^\| `(\w+)` \|", guide[: guide.index("\n\n", guide.index("| Parameter"))], flags=re.M))
    assert table == template_parameters()


def test_samconfig_comments_name_every_parameter() -> None:
    comments = "\n".join(line for line in (REPO / "samconfig.toml").read_text().splitlines() if line.startswith("#"))
    missing = {name for name in template_parameters() if not re.search(rf"\b{name}\b", comments)}
    assert not missing


def test_the_readme_names_the_pythons_the_makefile_accepts() -> None:
    makefile = (REPO / "functions" / "Makefile").read_text()
    oldest = re.search(r"sys\.version_info < \((\d+), (\d+)\)", makefile)
    assert oldest is not None
    readme = (REPO / "README.md").read_text()
    assert f"{oldest.group(1)}.{oldest.group(2)}, " in readme and "3.8+" not in readme
