"""MkDocs hook: links from a page to files of the repository outside ``docs/``.

The pages link to the example fleet and other sources with relative paths
(``../blueprints/models.yaml``) that work when browsing the repository; on the
site they point at the same file under ``repo_url``.  Every other link is left
to MkDocs' own validation (``mkdocs build --strict`` fails on a broken one).
"""

from __future__ import annotations

import re
from typing import Any

_OUTSIDE = re.compile(r"\]\(\.\./([^)\s#]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    base = str(config["repo_url"]).rstrip("/")

    def link(match: re.Match[str]) -> str:
        return f"]({base}/blob/main/{match.group(1)}{match.group(2) or ''})"

    return _OUTSIDE.sub(link, markdown)
