"""The docs a newcomer reads stay true: the settings table is current, every link resolves."""

import re
from pathlib import Path

from starter.runtime import settings_doc

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md":
            anchors = {_slug(h) for h in HEADING.findall(linked.read_text())}
            if anchor not in anchors:
                broken.append(target)
    return broken


def test_configuration_page_lists_every_setting_as_settings_describes_it() -> None:
    page = settings_doc.DOC.read_text()
    assert settings_doc.render(page) == page, "run: python -m starter.runtime.settings_doc"


def test_readme_is_short_and_every_link_in_it_resolves() -> None:
    readme = ROOT / "README.md"
    assert len(readme.read_text().splitlines()) < 200
    assert _broken_links(readme) == []


def test_every_link_in_the_docs_resolves() -> None:
    broken = {page.name: _broken_links(page) for page in (ROOT / "docs").glob("*.md")}
    assert {name: links for name, links in broken.items() if links} == {}
