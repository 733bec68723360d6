"""pyproject.toml lists every package and data file, so an install (not only a
source checkout) has everything ``chatguard run`` and ``chatguard demo`` need."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def setuptools_table() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        table: dict[str, Any] = tomllib.load(f)["tool"]["setuptools"]
    return table


def packages_under(directory: Path, name: str) -> set[str]:
    """Every importable package below ``directory``, as dotted names under ``name``."""
    found = set()
    for init in directory.rglob("__init__.py"):
        relative = init.parent.relative_to(directory)
        if "__pycache__" in relative.parts:
            continue
        found.add(".".join((name, *relative.parts)))
    return found


def test_every_chatguard_package_is_listed(setuptools_table: dict[str, Any]) -> None:
    listed = set(setuptools_table["packages"])
    on_disk = packages_under(ROOT / "chatguard", "chatguard")
    assert "chatguard" in on_disk
    assert "chatguard.codecs" in on_disk
    missing = on_disk - listed
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_every_listed_package_exists(setuptools_table: dict[str, Any]) -> None:
    package_dir: dict[str, str] = setuptools_table["package-dir"]
    for package in setuptools_table["packages"]:
        top, *rest = package.split(".")
        base = ROOT / package_dir.get(top, top)
        assert base.joinpath(*rest).is_dir(), f"{package} is listed but has no directory"


def test_examples_ship_as_chatguard_examples(setuptools_table: dict[str, Any]) -> None:
    assert setuptools_table["package-dir"]["chatguard_examples"] == "examples"
    assert "chatguard_examples" in setuptools_table["packages"]
    assert (ROOT / "examples" / "__init__.py").is_file()
    on_disk = packages_under(ROOT / "examples", "chatguard_examples")
    assert on_disk <= set(setuptools_table["packages"])


def glob_matches(path: str, pattern: str) -> bool:
    """setuptools' reading of a package-data glob: ``*`` never crosses a ``/``."""
    parts, wanted = PurePosixPath(path).parts, PurePosixPath(pattern).parts
    return len(parts) == len(wanted) and all(map(fnmatch.fnmatchcase, parts, wanted))


def package_data_matches(setuptools_table: dict[str, Any], package: str, path: str) -> bool:
    patterns: list[str] = setuptools_table.get("package-data", {}).get(package, [])
    return any(glob_matches(path, pattern) for pattern in patterns)


@pytest.mark.parametrize(
    "path",
    sorted(
        p.relative_to(ROOT / "chatguard").as_posix()
        for p in (ROOT / "chatguard").rglob("*")
        if p.suffix in {".yaml", ".yml", ".typed"} and "__pycache__" not in p.parts
    ),
)
def test_data_files_are_package_data(setuptools_table: dict[str, Any], path: str) -> None:
    assert package_data_matches(setuptools_table, "chatguard", path), path


def test_the_built_in_mappings_are_package_data(setuptools_table: dict[str, Any]) -> None:
    mappings = sorted((ROOT / "chatguard" / "codecs" / "mappings").glob("*.yaml"))
    assert any(p.name == "example.yaml" for p in mappings)
    for path in mappings:
        relative = path.relative_to(ROOT / "chatguard").as_posix()
        assert package_data_matches(setuptools_table, "chatguard", relative), relative


def test_example_static_files_are_package_data(setuptools_table: dict[str, Any]) -> None:
    static = [p for p in (ROOT / "examples" / "static").rglob("*") if p.is_file()]
    for path in static:
        relative = path.relative_to(ROOT / "examples").as_posix()
        assert package_data_matches(setuptools_table, "chatguard_examples", relative), relative


def test_the_bundle_verify_template_is_package_data(setuptools_table: dict[str, Any]) -> None:
    assert (ROOT / "chatguard" / "evidence" / "VERIFY.md").is_file()
    assert package_data_matches(setuptools_table, "chatguard", "evidence/VERIFY.md")
