"""Data Docs pages lose their CDN links: vendored copies, linked relatively, SRI dropped."""

from __future__ import annotations

from pathlib import Path

from longtail.validation.offline import CDN_ASSETS, VENDOR_DIR, make_site_offline, remote_assets

JQUERY = "https://code.jquery.com/jquery-3.7.1.min.js"
POPPER = "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js"
PAGE = f"""<html><head>
<link rel="stylesheet"
      href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
<script src="{JQUERY}"></script>
<script src="{POPPER}" integrity="sha384-abc" crossorigin="anonymous"></script>
</head><body><a href="https://greatexpectations.io">GX</a>
<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=1Z">
</body></html>"""


def test_remote_assets_finds_what_a_page_loads_but_not_plain_links() -> None:
    found = remote_assets(PAGE)
    assert JQUERY in found and POPPER in found and len(found) == 4
    assert remote_assets('<a href="https://x.org">x</a>') == []
    assert remote_assets('<img alt="x" src="https://x.org/a.png">') == ["https://x.org/a.png"]


def test_every_vendored_asset_is_there_with_a_licence() -> None:
    for target in CDN_ASSETS.values():
        assert (VENDOR_DIR / target).is_file(), target
        folder = (VENDOR_DIR / target).relative_to(VENDOR_DIR).parts[0]
        assert list((VENDOR_DIR / folder).glob("LICENSE*")), folder


def test_site_pages_link_the_vendored_copies_relatively(tmp_path: Path) -> None:
    deep = tmp_path / "validations" / "events" / "run" / "page.html"
    deep.parent.mkdir(parents=True)
    (tmp_path / "index.html").write_text(PAGE)
    (tmp_path / "static" / "images").mkdir(parents=True)
    (tmp_path / "static" / "images" / "favicon.ico").write_bytes(b"ico")
    # As GX writes validation pages: the favicon one folder short of the site's root.
    favicon = '<link rel="shortcut icon" href="../../static/images/favicon.ico"/>'
    deep.write_text(PAGE + favicon + '<script src="https://cdn.example.org/new.js"></script>')
    unknown = make_site_offline(tmp_path)
    assert unknown == ["https://cdn.example.org/new.js"]  # left as it was, and reported
    index = (tmp_path / "index.html").read_text()
    assert remote_assets(index) == []
    assert 'src="static/vendor/jquery-3.7.1/jquery.min.js"' in index
    # A file:// page refuses a script that carries integrity/crossorigin attributes.
    assert "integrity" not in index and "crossorigin" not in index
    assert "https://greatexpectations.io" in index  # a plain link stays
    assert 'src="static/images/logo-long.png"' in index  # GX ships its logo in static/
    text = deep.read_text()
    assert 'src="../../../static/vendor/jquery-3.7.1/jquery.min.js"' in text
    assert (deep.parent / "../../../static/vendor/jquery-3.7.1/jquery.min.js").resolve().is_file()
    assert 'href="../../../static/images/favicon.ico"' in text
