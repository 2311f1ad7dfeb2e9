"""Copy folders between the local data_dir and the [storage] object store.

    python jobs/sync.py --config CONFIG --push [FOLDER ...]   # default: training
    python jobs/sync.py --config CONFIG --pull [FOLDER ...]   # default: resampled models

FOLDERs are data-directory folders (training, features, resampled, models, ...).
The driver-side stages (ingest, features, validate) write the local data_dir; the
Ray stages (resample, train, score's actors) read and write only the object store, so
a Ray cluster needs no shared disk. Push the training splits (and, for scoring, the
feature snapshots: --push training features) before them, pull the model after.
jobs/daily.py on a store pushes and pulls by itself.
Dataset folders of Parquet parts are committed in the store by their manifest
(a half-pushed one is never read); pulled files are each written atomically.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from longtail.cli import base_parser, load_from_args, run_main
from longtail.errors import ConfigError
from longtail.locking import data_dir_lock
from longtail.storage import store_of

PUSH_DEFAULT = ("training",)
PULL_DEFAULT = ("resampled", "models")


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    way = parser.add_mutually_exclusive_group(required=True)
    way.add_argument("--push", nargs="*", metavar="FOLDER", help="local data_dir -> store")
    way.add_argument("--pull", nargs="*", metavar="FOLDER", help="store -> local data_dir")
    args = parser.parse_args(argv)
    cfg = load_from_args(args)
    store = store_of(cfg)
    if store is None:
        msg = "sync needs an object store: set [storage] uri (or --data-dir s3://BUCKET/PREFIX)"
        raise ConfigError(msg)
    with data_dir_lock(cfg.data_dir, job="sync"):
        if args.push is not None:
            folders = args.push or list(PUSH_DEFAULT)
            count = len(store.push(cfg.data_dir, folders))
            print(f"pushed {count} objects of {', '.join(folders)} to {store.uri}")
        else:
            folders = args.pull or list(PULL_DEFAULT)
            count = len(store.pull(cfg.data_dir, folders))
            print(f"pulled {count} files of {', '.join(folders)} into {cfg.data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
