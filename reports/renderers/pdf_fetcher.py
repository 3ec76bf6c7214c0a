"""What WeasyPrint may read while it prints a report: ``data:`` URLs and the project's static files.

The report's HTML is ours, but it quotes what scanners and people wrote (titles, evidence, names).
Escaping keeps that text inert; this fetcher is the second wall should an escaping slip ever let a
``<link>``, ``<img>`` or CSS ``url()`` through: no ``file:`` outside the static folders (no
``/etc/passwd`` or ``var/dev-secret-key`` printed into a PDF), no ``http:``/``https:`` (no request
from the worker's network), no ``ftp:``, no redirects. A refused resource is left out of the
document (WeasyPrint logs it and goes on).

Imported by the PDF renderer only when it prints: WeasyPrint is heavy to load.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from django.conf import settings
from weasyprint.urls import URLFetcher


def static_roots() -> list[Path]:
    """The folders the project's static files come from (and are collected into)."""
    roots = [Path(folder) for folder in settings.STATICFILES_DIRS]
    if settings.STATIC_ROOT:
        roots.append(Path(settings.STATIC_ROOT))
    return [root.resolve() for root in roots]


class StaticOnlyFetcher(URLFetcher):
    """WeasyPrint's fetcher limited to ``data:`` and files under :func:`static_roots`."""

    def __init__(self, **kwargs):
        super().__init__(allowed_protocols=("data", "file"), allow_redirects=False, **kwargs)

    def fetch(self, url, headers=None):
        parts = urlsplit(url)
        if parts.scheme.lower() == "file":
            if parts.netloc not in ("", "localhost"):
                raise ValueError(f"refused {url}: a file on another host")
            path = Path(url2pathname(parts.path)).resolve()  # symlinks and ".." resolved before the check
            if not any(path.is_relative_to(root) for root in static_roots()):
                raise ValueError(f"refused {url}: not one of the project's static files")
        elif parts.scheme.lower() != "data":
            raise ValueError(f"refused {url}: only data: URLs and the project's static files are read")
        return super().fetch(url, headers)
