"""Make HTML pages render without network: CDN assets of the Data Docs become local files.

(Images too: GX's header logo comes from its asset bucket, with a query string per page.)

Great Expectations' Data Docs load Bootstrap, bootstrap-table, jQuery, Vega and Font
Awesome from public CDNs, and build the validation-results table of the index with
those scripts: offline, the index shows a header and no result. :func:`make_site_offline`
copies the vendored copies of exactly those files (``vendor/``, fetched once by
``scripts/vendor_data_docs_assets.sh``, each with its licence) into the site's
``static/vendor/`` folder and rewrites every page to link them relatively, so the site
works from any folder, moved or archived whole. :func:`remote_assets` is the check: the
``<link>``/``<script>`` tags of a page that still reach for the network.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Final

__all__ = ["CDN_ASSETS", "GX_IMAGES", "VENDOR_DIR", "make_site_offline", "remote_assets"]

VENDOR_DIR: Final = Path(__file__).resolve().parent / "vendor"

# The URLs GX 1.x page templates name -> the vendored file (same version; the "@5"/"@6"
# majors of Vega are pinned to the release vendored).
CDN_ASSETS: Final[dict[str, str]] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap-4.3.1/bootstrap.min.css"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap-4.3.1/bootstrap.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table-1.19.1/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table-1.19.1/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": (
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.js"
    ),
    # GX names the 1.19.0 stylesheet of the extension beside the 1.19.1 script.
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": (
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": (
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.css"
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js-1.12.9/popper.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": "bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": "bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome-free-6.6.0/css/all.min.css"
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css": "bootstrap-dark-1.1.0/bootstrap-prefers-dark.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega-5.33.1/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite-5.23.0/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed-6.29.0/vega-embed.min.js",
}

# GX's header logo is fetched from its asset bucket (with a per-page query string);
# the same image ships in the site's own static/images/.
GX_IMAGES: Final[dict[str, str]] = {
    "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png": (
        "images/logo-long.png"
    ),
}

_TAG: Final = re.compile(r"<(?:link|script|img)\b[^>]*>", re.IGNORECASE)
_URL_ATTR: Final = re.compile(r"""\b(?:href|src)\s*=\s*["']?(https?://[^"'\s>]+)""", re.IGNORECASE)
# Subresource-integrity and CORS attributes make a browser refuse a file:// script.
_SRI_ATTRS: Final = re.compile(r"""\s+(?:integrity|crossorigin)\s*=\s*(?:"[^"]*"|'[^']*'|\S+)""")


def remote_assets(html_text: str) -> list[str]:
    """Return the http(s) URLs that ``<link>``, ``<script>`` and ``<img>`` tags of a page load.

    An empty list means the page's stylesheets, scripts and images are all local
    (plain ``<a href>`` links to websites do not count: they load nothing).
    """
    return [m.group(1) for tag in _TAG.findall(html_text) for m in _URL_ATTR.finditer(tag)]


def _local(url: str) -> str | None:
    """The file under the site's ``static/`` that replaces ``url``, if there is one."""
    if url in CDN_ASSETS:
        return f"vendor/{CDN_ASSETS[url]}"
    return GX_IMAGES.get(url.split("?", 1)[0])


def _rewrite(html_text: str, *, static_href: str) -> tuple[str, set[str]]:
    unknown: set[str] = set()

    def local(match: re.Match[str]) -> str:
        tag = match.group(0)
        urls = [m.group(1) for m in _URL_ATTR.finditer(tag)]
        if not urls:
            return tag
        for url in urls:
            target = _local(url)
            if target is None:
                unknown.add(url)
                return tag
            tag = tag.replace(url, f"{static_href}/{target}")
        return _SRI_ATTRS.sub("", tag)

    return _TAG.sub(local, html_text), unknown


_STATIC_REF: Final = re.compile(
    r"""(<(?:link|script|img)\b[^>]*\b(?:href|src)\s*=\s*["'])((?:\./|\.\./)*static/[^"'#?]+)""",
    re.IGNORECASE,
)


def _fix_static_refs(html_text: str, *, page: Path, static: Path) -> str:
    """Re-point links into the site's ``static/`` that miss it from where the page is.

    GX links the favicon of validation-result pages one folder short (``../../../``
    from four folders deep); a relative link that does not resolve is re-made from
    the page's real place.
    """

    def fix(match: re.Match[str]) -> str:
        prefix, ref = match.group(1), match.group(2)
        if (page.parent / ref).exists():
            return match.group(0)
        rest = ref.split("static/", 1)[1]
        return prefix + Path(os.path.relpath(static / rest, page.parent)).as_posix()

    return _STATIC_REF.sub(fix, html_text)


def make_site_offline(site: Path) -> list[str]:
    """Copy the vendored assets into ``site/static/vendor/`` and link every page to them.

    Parameters
    ----------
    site
        A Data Docs site folder (``index.html`` at its root), before it is swapped in.

    Returns
    -------
    list of str
        CDN URLs with no vendored copy, left as they were (a GX upgrade that names a
        new asset; rerun ``scripts/vendor_data_docs_assets.sh``). Empty when every
        page renders offline.
    """
    static = site / "static"
    shutil.copytree(VENDOR_DIR, static / "vendor", dirs_exist_ok=True)
    unknown: set[str] = set()
    for page in sorted(site.rglob("*.html")):
        href = Path(os.path.relpath(static, page.parent)).as_posix()
        text = page.read_text(encoding="utf-8")
        new, missing = _rewrite(text, static_href=href)
        new = _fix_static_refs(new, page=page, static=static)
        unknown |= missing
        if new != text:
            page.write_text(new, encoding="utf-8")
    return sorted(unknown)
