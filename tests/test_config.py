from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from longtail.config import (
    GenericSource,
    StrategyName,
    SyntheticSource,
    config_from_dict,
    load_config,
)
from longtail.errors import ConfigError

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[1]


def test_demo_config_loads_as_frozen_synthetic_source() -> None:
    cfg = load_config(REPO / "jobs" / "configs" / "demo.toml")
    assert isinstance(cfg.source, SyntheticSource)
    with pytest.raises(Exception, match="frozen"):
        cfg.seed = 3  # type: ignore[misc]


def test_data_dir_flag_overrides_config(tmp_path: Path) -> None:
    cfg = load_config(REPO / "jobs" / "configs" / "demo.toml", data_dir=tmp_path / "x")
    assert cfg.data_dir == tmp_path / "x"


def test_config_error_names_key_and_bad_value(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[source]\nkind = "synthetic"\nn_users = -5\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "source.n_users" in str(err.value)
    assert "-5" in str(err.value)


def test_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[features]\nhead_shar = 0.3\n")
    with pytest.raises(ConfigError, match=r"features\.head_shar: unknown key"):
        load_config(path)


def test_unknown_source_kind_names_the_allowed_kinds() -> None:
    with pytest.raises(ConfigError, match="source") as err:
        config_from_dict({"source": {"kind": "kafka"}})
    assert "kafka" in str(err.value)


def test_missing_config_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[source\nkind=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_generic_source_in_the_documented_shape_loads(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text(
        """
[source]
kind = "generic"
events = "path/to/events.csv"
has_header = false
[source.columns]
user_id = 1
item_id = 2
category_id = 3
event_type = 4
event_time = 5
[source.event_time]
unit = "s"
[source.event_names]
view = ["pv"]
cart = ["cart"]
purchase = ["buy"]
ignore = ["fav"]
"""
    )
    cfg = load_config(path)
    assert isinstance(cfg.source, GenericSource)
    assert cfg.source.events == (tmp_path / "path/to/events.csv").resolve()
    assert cfg.source.columns.category_id == 3
    assert cfg.source.event_names.ignore == ["fav"]


def test_event_name_listed_twice_is_rejected() -> None:
    with pytest.raises(ConfigError, match="'pv' is listed under both"):
        config_from_dict(
            {
                "source": {
                    "kind": "generic",
                    "events": "e.csv",
                    "columns": {"user_id": 1, "item_id": 2, "event_type": 3, "event_time": 4},
                    "event_names": {"view": ["pv"], "ignore": ["pv"]},
                }
            }
        )


def test_event_time_needs_unit_or_format() -> None:
    with pytest.raises(ConfigError, match="exactly one of 'unit' or 'format'"):
        config_from_dict(
            {
                "source": {
                    "kind": "generic",
                    "events": "e.csv",
                    "columns": {"user_id": 1, "item_id": 2, "event_type": 3, "event_time": 4},
                    "event_time": {"unit": "s", "format": "%Y"},
                }
            }
        )


@pytest.mark.parametrize(
    ("text", "what"),
    [("", "is empty"), ("# nothing yet\n", "is empty"), ('data_dir = "d"\n', "no [source]")],
)
def test_a_config_without_a_source_is_refused_naming_the_file(
    tmp_path: Path, text: str, what: str
) -> None:
    path = tmp_path / "empty.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(f"config {path} ")) as err:
        load_config(path, data_dir=tmp_path / "real")
    assert what in str(err.value)
    assert "demo.toml" in str(err.value)


def test_a_non_utf8_config_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[source]\nkind = "synthetic"\n# café\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9"):
        load_config(path)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("resampling", "strategy", '"smoat"'),
        ("tune", "strategies", '["none", "smoat"]'),
        ("train", "loss", '"focl"'),
        ("tune", "objective", '"pr_aux"'),
    ],
)
def test_strategy_loss_and_objective_names_are_checked_at_load(
    tmp_path: Path, section: str, key: str, value: str
) -> None:
    path = tmp_path / "typo.toml"
    path.write_text(f'[source]\nkind = "synthetic"\n[{section}]\n{key} = {value}\n')
    with pytest.raises(ConfigError, match=rf"config {re.escape(str(path))}: {section}\.{key}"):
        load_config(path)


def test_config_strategy_names_are_the_registered_samplers() -> None:
    from longtail.resampling import STRATEGIES

    assert set(get_args(StrategyName)) == set(STRATEGIES)


def test_every_shipped_config_names_its_source() -> None:
    for path in sorted((REPO / "jobs" / "configs").glob("*.toml")):
        assert load_config(path).source.kind in {"synthetic", "retailrocket", "generic"}


def test_ingest_job_refuses_an_empty_config_and_leaves_the_data_dir(tmp_path: Path) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    data = tmp_path / "real"
    (data / "canonical").mkdir(parents=True)
    (data / "canonical" / "events.parquet").write_bytes(b"real events")
    proc = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "ingest.py"), "--config", str(config),
         "--data-dir", str(data)],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "lib")},
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: config {config} is empty: say where the events come from "
        "(the synthetic demo is jobs/configs/demo.toml)"
    ]
    assert (data / "canonical" / "events.parquet").read_bytes() == b"real events"


def test_a_job_without_config_is_refused_rather_than_running_the_demo(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "ingest.py"), "--data-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "lib")},
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --config is required (the synthetic demo is jobs/configs/demo.toml)"
    ]
    assert not (tmp_path / "canonical").exists()
