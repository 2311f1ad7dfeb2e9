"""The object-store data directory, against a real S3 server (SeaweedFS on loopback)."""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import polars as pl
import pyarrow.fs as pafs
import pytest

from longtail.config import config_from_dict
from longtail.errors import ConfigError, StageError
from longtail.io import write_json
from longtail.paths import DATASET_MANIFEST, Layout
from longtail.storage import DataStore, store_of


def _part(store: DataStore, key: str, values: list[int]) -> None:
    with store.filesystem.open_output_stream(key) as fh:
        pl.DataFrame({"x": values}).write_parquet(fh)


def _rows(store: DataStore, folder: str) -> list[int]:
    table = store.read_table(store.dataset_files(folder))
    return sorted(pl.DataFrame(pl.from_arrow(table))["x"].to_list())


def test_a_committed_dataset_is_read_through_its_manifest(s3_store: DataStore) -> None:
    folder = f"{s3_store.layout.resampled_train('smote')}"
    with s3_store.stage_dataset(folder) as staged:
        _part(s3_store, staged.part(0), [1, 2])
        _part(s3_store, staged.part(1), [3])
    assert _rows(s3_store, folder) == [1, 2, 3]
    manifest = s3_store.read_json(f"{folder}/{DATASET_MANIFEST}")
    assert manifest["files"] == ["part-00000.parquet", "part-00001.parquet"]


def test_a_half_written_dataset_is_invisible(s3_store: DataStore) -> None:
    folder = f"{s3_store.root}/resampled/none/train"
    with s3_store.stage_dataset(folder) as staged:
        _part(s3_store, staged.part(0), [1])
    # A second write has put a part but not committed: readers still see the first.
    # Then it crashes: its parts go, the committed dataset stays as it was.
    with pytest.raises(RuntimeError, match="killed"), s3_store.stage_dataset(folder) as staged:
        _part(s3_store, staged.part(0), [7, 8, 9])
        assert _rows(s3_store, folder) == [1]
        raise RuntimeError("killed")
    assert _rows(s3_store, folder) == [1]
    assert not s3_store.is_file(staged.part(0))


def test_a_folder_never_committed_is_an_error_not_empty(s3_store: DataStore) -> None:
    folder = f"{s3_store.root}/resampled/none/train"
    _part(s3_store, f"{folder}/run-crashed/part-00000.parquet", [1])
    with pytest.raises(StageError, match="no committed dataset"):
        s3_store.dataset_files(folder)


def test_a_new_commit_keeps_the_run_it_replaced_and_drops_older_ones(s3_store: DataStore) -> None:
    folder = f"{s3_store.root}/resampled/none/train"
    runs = []
    for value in (1, 2, 3):
        with s3_store.stage_dataset(folder) as staged:
            _part(s3_store, staged.part(0), [value])
        runs.append(staged.run)
    assert _rows(s3_store, folder) == [3]
    listed = s3_store.filesystem.get_file_info(pafs.FileSelector(folder))
    left = {info.base_name for info in listed if info.base_name.startswith("run-")}
    assert left == set(runs[1:])


def test_sync_push_then_pull_gives_the_same_files(s3_store: DataStore, tmp_path: Path) -> None:
    here = Layout(tmp_path / "here")
    here.training.mkdir(parents=True)
    pl.DataFrame({"x": [1, 2]}).write_parquet(here.split("train"))
    pl.DataFrame({"x": [3]}).write_parquet(here.split("validation"))
    parts = here.resampled_train("smote")
    parts.mkdir(parents=True)
    pl.DataFrame({"x": [4]}).write_parquet(parts / "part-00000.parquet")
    pl.DataFrame({"x": [5]}).write_parquet(parts / "part-00001.parquet")
    here.sampling_report("smote").write_text('{"a": 1}\n')
    (here.resampled / ".train.tmp-abcdefgh").mkdir()  # debris is never pushed
    # The served lists carry scoring's own _manifest.json (written by write_json).
    day = dt.date(2024, 2, 14)
    lists = here.recommendations(day)
    lists.mkdir(parents=True)
    pl.DataFrame({"x": [6]}).write_parquet(lists / "part-0.parquet")
    write_json({"users_expected": 1, "model_version": "v1"}, lists / "_manifest.json")

    s3_store.push(here.root, ["training", "resampled", "recommendations"])
    # Parts folders are committed datasets in the store, the rest one object per file;
    # the partition's own manifest rides in the commit record.
    assert s3_store.has_dataset(s3_store.layout.resampled_train("smote"))
    assert s3_store.has_dataset(s3_store.layout.recommendations(day))
    meta = s3_store.dataset_meta(s3_store.layout.recommendations(day))
    assert meta == {"users_expected": 1, "model_version": "v1"}
    assert s3_store.is_file(s3_store.layout.split("train"))

    there = tmp_path / "there"
    s3_store.pull(there, ["training", "resampled", "recommendations"])
    pushed = sorted(p.relative_to(here.root) for p in here.root.rglob("*") if p.is_file())
    pulled = sorted(p.relative_to(there) for p in there.rglob("*") if p.is_file())
    assert pulled == pushed
    for rel in pushed:
        assert (there / rel).read_bytes() == (here.root / rel).read_bytes()


def test_pulling_a_folder_the_store_lacks_says_so(s3_store: DataStore, tmp_path: Path) -> None:
    with pytest.raises(StageError, match="nothing to pull"):
        s3_store.pull(tmp_path, ["models"])


def test_the_filesystem_carries_the_drivers_keys_to_workers(
    s3_store: DataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker unpickles the store without any AWS_* of its own and still reads.
    s3_store.write_json(f"{s3_store.root}/probe.json", {"ok": True})
    shipped = pickle.dumps(s3_store)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    clone = pickle.loads(shipped)
    assert clone.read_json(f"{s3_store.root}/probe.json") == {"ok": True}


def test_data_dir_as_uri_is_the_store_with_a_local_working_copy() -> None:
    cfg = config_from_dict({"data_dir": "s3://bucket/demo/", "storage": {"region": "eu-west-1"}})
    store = store_of(cfg)
    assert store is not None
    assert (store.bucket, store.prefix, store.region) == ("bucket", "demo", "eu-west-1")
    assert "://" not in str(cfg.data_dir)
    assert store_of(config_from_dict({})) is None


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"storage": {"uri": "gs://bucket/x"}}, "storage.uri must be s3://"),
        ({"storage": {"uri": "s3://"}}, "storage.uri must be s3://"),
        ({"storage": {"uri": "s3://b", "endpoint_url": "127.0.0.1:8333"}}, "endpoint_url"),
        ({"data_dir": "s3://a/x", "storage": {"uri": "s3://b/y"}}, "two object stores"),
        ({"storage": {"uri": "s3://b", "access_key": "AKIA"}}, "unknown key"),
    ],
)
def test_storage_config_errors_name_the_key(raw: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config_from_dict(raw)
