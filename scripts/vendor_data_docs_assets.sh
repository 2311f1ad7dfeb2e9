#!/usr/bin/env bash
# Vendor, once, the CSS/JS/fonts that Great Expectations Data Docs load from public CDNs,
# so the pages render without network (GX declined to bundle them upstream).
#
#   bash scripts/vendor_data_docs_assets.sh
#
# Fetches the exact versions the GX 1.x page templates name, with `npm pack` from the
# npm registry, and copies the built files and each package's licence to
# lib/longtail/validation/vendor/. longtail.validation.offline rewrites the CDN URLs of
# every Data Docs page to these files (copied into the site's static/vendor/ folder).
# Rerun only when a GX upgrade names a new asset: the offline test then fails and names it.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=lib/longtail/validation/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fetch() {  # npm spec -> folder under $work
  local dir="$work/$2"
  mkdir -p "$dir"
  (cd "$work" && npm pack --silent "$1" >/dev/null && tar xzf ./*.tgz -C "$dir" && rm ./*.tgz)
}
put() {  # file under $work -> file under $dest
  mkdir -p "$(dirname "$dest/$2")"
  cp "$work/$1" "$dest/$2"
}
rm -rf "$dest"
fetch bootstrap@4.3.1 bs
put bs/package/dist/css/bootstrap.min.css bootstrap-4.3.1/bootstrap.min.css
put bs/package/dist/js/bootstrap.min.js bootstrap-4.3.1/bootstrap.min.js
put bs/package/LICENSE bootstrap-4.3.1/LICENSE
fetch bootstrap-table@1.19.1 bt
for f in bootstrap-table.min.css bootstrap-table.min.js \
  extensions/filter-control/bootstrap-table-filter-control.min.js \
  extensions/filter-control/bootstrap-table-filter-control.min.css; do
  put "bt/package/dist/$f" "bootstrap-table-1.19.1/$(basename "$f")"
done
put bt/package/LICENSE bootstrap-table-1.19.1/LICENSE
fetch jquery@3.7.1 jq
put jq/package/dist/jquery.min.js jquery-3.7.1/jquery.min.js
put jq/package/LICENSE.txt jquery-3.7.1/LICENSE.txt
fetch popper.js@1.12.9 pop
put pop/package/dist/umd/popper.min.js popper.js-1.12.9/popper.min.js
# popper.js 1.12.9 ships no licence file; its package.json says MIT and its header names the author.
printf 'popper.js 1.12.9, MIT licence (package.json "license": "MIT").\nCopyright (C) Federico Zivolo 2017. See https://opensource.org/licenses/MIT\n' \
  >"$dest/popper.js-1.12.9/LICENSE"
fetch bootstrap-datepicker@1.9.0 dp
put dp/package/dist/css/bootstrap-datepicker.min.css bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.css
put dp/package/dist/js/bootstrap-datepicker.min.js bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.js
put dp/package/LICENSE bootstrap-datepicker-1.9.0/LICENSE
fetch @fortawesome/fontawesome-free@6.6.0 fa
put fa/package/css/all.min.css fontawesome-free-6.6.0/css/all.min.css
for f in fa-brands-400 fa-regular-400 fa-solid-900 fa-v4compatibility; do
  put "fa/package/webfonts/$f.woff2" "fontawesome-free-6.6.0/webfonts/$f.woff2"
done
put fa/package/LICENSE.txt fontawesome-free-6.6.0/LICENSE.txt
fetch @forevolve/bootstrap-dark@1.1.0 dark
put dark/package/dist/css/bootstrap-prefers-dark.min.css bootstrap-dark-1.1.0/bootstrap-prefers-dark.min.css
put dark/package/LICENSE bootstrap-dark-1.1.0/LICENSE
fetch vega@5.33.1 vega
put vega/package/build/vega.min.js vega-5.33.1/vega.min.js
fetch vega-lite@5.23.0 vl
put vl/package/build/vega-lite.min.js vega-lite-5.23.0/vega-lite.min.js
put vl/package/LICENSE vega-lite-5.23.0/LICENSE
fetch vega-embed@6.29.0 ve
put ve/package/build/vega-embed.min.js vega-embed-6.29.0/vega-embed.min.js
put ve/package/LICENSE vega-embed-6.29.0/LICENSE
# vega 5.33.1's tarball has no LICENSE file; the project is BSD-3-Clause (package.json).
printf 'vega 5.33.1, BSD-3-Clause licence (package.json "license": "BSD-3-Clause").\nCopyright (c) 2015-2023, University of Washington Interactive Data Lab. See https://github.com/vega/vega/blob/main/LICENSE\n' \
  >"$dest/vega-5.33.1/LICENSE"
(cd "$dest" && find . -type f ! -name '*.json' | sort | xargs sha256sum >SHA256SUMS)
echo "vendored into $dest ($(du -sh "$dest" | cut -f1))"
