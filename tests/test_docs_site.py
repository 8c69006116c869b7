"""``docs/`` as one site: generated references fresh, every page reachable, a strict build."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slmops_bp import clidoc, reference

pytestmark = pytest.mark.slow  # builds the whole site with mkdocs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


class _Loader(yaml.SafeLoader):
    """mkdocs.yml with its python tags read as plain data."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def _config() -> dict[str, object]:
    return dict(yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader))


def test_generated_references_are_fresh() -> None:
    pages = [DOCS / "blueprints.md", DOCS / "cli.md"]
    assert reference.main(["--check", *map(str, pages)]) == 0, "run 'python -m slmops_bp.reference'"


def test_the_cli_reference_lists_every_command_and_option() -> None:
    from slmops_bp.cli import cli

    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    for name, command in cli.commands.items():
        assert f"## `bp {name}`" in page
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert f"{opt}" in page, (name, opt)
    assert page == clidoc.render()


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_pages(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_pages(value)]
    return []


def test_every_page_is_in_the_navigation() -> None:
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    nav = _nav_pages(_config()["nav"])
    assert sorted(nav) == pages
    assert len(nav) == len(set(nav))
    for required in ("walkthrough.md", "blueprints.md", "diagnostics.md", "cli.md"):
        assert required in nav


def test_the_readme_links_the_site() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/index.md)" in readme
    assert "mkdocs build --strict" in readme


def test_mkdocs_builds_the_site_in_strict_mode(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    if not mkdocs.exists():
        if os.environ.get("CI"):
            pytest.fail("mkdocs-material is required in CI (pip install -e '.[test]')")
        pytest.skip("mkdocs not installed")
    site = tmp_path / "site"
    proc = subprocess.run(
        [str(mkdocs), "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(site)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not re.search(r"^WARNING", proc.stderr, re.MULTILINE), proc.stderr
    for page in _nav_pages(_config()["nav"]):
        built = site / ("index.html" if page == "index.md" else page.removesuffix(".md"))
        html = built if built.suffix == ".html" else built / "index.html"
        assert html.is_file(), page
    # links to the repository outside docs/ point at repo_url, not at missing site files
    models = (site / "blueprints" / "index.html").read_text(encoding="utf-8")
    assert f"{_config()['repo_url']}/blob/main/blueprints/models.yaml" in models
    shutil.rmtree(site)
