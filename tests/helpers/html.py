"""A minimal reader of the HTML report pages: start tags with their attributes, in order."""
from __future__ import annotations

from html.parser import HTMLParser


class Page(HTMLParser):
    """Every start tag of a page with its attributes, in order."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def find(self, tag, cls=None):
        return [a for t, a in self.tags if t == tag and (cls is None or cls in (a.get("class") or "").split())]
