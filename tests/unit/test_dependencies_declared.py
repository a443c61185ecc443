"""Every third-party package the code imports is declared in pyproject.toml: the
operator's in `[project] dependencies`, the tests' and bench's at least in the `test`
extra. An import that only works because another package happens to bring its
dependency along breaks the day that package drops it."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = {"rayref", "tests", "bench", "__future__"}


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]).lower()


def _imports(area: str) -> dict[str, str]:
    """Top-level third-party module -> one file that imports it."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / area).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in OURS and top not in sys.stdlib_module_names:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def _undeclared(imports: dict[str, str], declared: set[str]) -> list[str]:
    distributions = packages_distributions()
    return [
        f"{module} (in {where}; distribution {distributions.get(module, ['?'])})"
        for module, where in sorted(imports.items())
        if not {_name(d) for d in distributions.get(module, [])} & declared
    ]


def test_every_directly_imported_package_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    test = runtime | {_name(r) for r in project["optional-dependencies"]["test"]}

    assert _undeclared(_imports("operator"), runtime) == []
    assert _undeclared({**_imports("tests"), **_imports("bench")}, test) == []


def test_the_check_sees_an_undeclared_import() -> None:
    # aiohttp is a dependency of kopf, so it is installed; the check must not count that.
    assert _undeclared({"aiohttp": "x.py"}, {"kopf"}) == [
        "aiohttp (in x.py; distribution ['aiohttp'])"
    ]
    assert _undeclared({"yaml": "x.py"}, {"pyyaml"}) == []
