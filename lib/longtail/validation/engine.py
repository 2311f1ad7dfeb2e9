"""Run Great Expectations suites on Polars frames and turn results into findings.

One ephemeral GE context per run: suites are code (:mod:`longtail.validation.suites`),
so nothing needs to persist in a GE project; the context keeps this run's results
in memory and renders them to a Data Docs folder that the caller swaps in whole.
Polars frames are handed to GE's pandas data source through Arrow, with integer
and boolean columns as pandas nullable dtypes so a null never turns an id into a
float.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import great_expectations as gx
import pandas as pd
import polars as pl
import pyarrow as pa
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from longtail.validation.offline import make_site_offline

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.expectation_validation_result import (
        ExpectationValidationResult,
    )

__all__ = ["Finding", "SuiteOutcome", "to_pandas", "validate_frames"]

log = logging.getLogger(__name__)

DOCS_SITE: Final = "longtail"
_RESULT_FORMAT: Final = {"result_format": "BASIC", "partial_unexpected_count": 5}
_PANDAS_TYPES: Final = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


@dataclass(frozen=True)
class Finding:
    """One failed expectation, in words a person can act on.

    Attributes
    ----------
    suite
        Suite name (``events``, ``user_features``, ``training_train``, ``imbalance``...).
    check
        The project's check name (see ``suites.CHECKS``).
    expectation
        The GE expectation type, e.g. ``expect_column_values_to_be_between``.
    column
        The column (or columns) concerned, or None for table-level checks.
    observed
        What was found, e.g. ``3 of 1000 rows (0.3%), e.g. [-1.0]`` or ``0.0``.
    bound
        What was expected, e.g. ``[0.002, 0.2]``.
    severity
        ``critical`` (fails the gate) or ``warning``.
    description
        The check in words, e.g. ``label rate out of bounds``.
    """

    suite: str
    check: str
    expectation: str
    column: str | None
    observed: str
    bound: str
    severity: str
    description: str

    def message(self) -> str:
        """One line: severity, suite, expectation, column, what, observed and bound."""
        column = self.column or "<table>"
        return (
            f"{self.severity.upper()} {self.suite} / {self.expectation} / column {column}: "
            f"{self.description}: observed {self.observed}, bound {self.bound}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class SuiteOutcome:
    """The result of one suite on one frame."""

    suite: str
    rows: int
    evaluated: int
    findings: list[Finding]
    seconds: float

    @property
    def success(self) -> bool:
        """True when no critical expectation failed."""
        return not any(f.severity == "critical" for f in self.findings)


def to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """Convert a Polars frame for GE's pandas engine, keeping integers integer under nulls.

    Categorical and enum columns become strings; datetimes keep their time zone.
    """
    cats = [n for n, t in frame.schema.items() if t in (pl.Categorical, pl.Enum)]
    if cats:
        frame = frame.with_columns(pl.col(cats).cast(pl.String))
    return frame.to_arrow().to_pandas(types_mapper=_PANDAS_TYPES.get)


def _context(docs_dir: Path | None) -> Any:
    sites: dict[str, Any] = {}
    if docs_dir is not None:
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir.resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites=sites,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _fmt(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float) or hasattr(value, "dtype"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return repr(value)
        if math.isnan(number):
            return "NaN"
        return f"{number:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def _bound(kwargs: dict[str, Any]) -> str:
    if "min_value" in kwargs or "max_value" in kwargs:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        low_s = "-inf" if low is None else _fmt(low)
        high_s = "inf" if high is None else _fmt(high)
        return f"[{low_s}, {high_s}]"
    if "value_set" in kwargs:
        return "in " + _fmt(sorted(kwargs["value_set"], key=str))
    if "type_" in kwargs:
        return f"type {kwargs['type_']}"
    if "type_list" in kwargs:
        return "one of types " + _fmt(list(kwargs["type_list"]))
    if "column_set" in kwargs:
        return "has columns " + _fmt(list(kwargs["column_set"]))
    if "column_list" in kwargs:
        return "unique over (" + ", ".join(kwargs["column_list"]) + ")"
    return "no nulls"


def _observed(result: ExpectationValidationResult) -> str:
    info = result.exception_info or {}
    # GE puts one exception at the top, or one per failed metric keyed by metric id.
    infos = [info, *(v for v in info.values() if isinstance(v, dict))]
    for item in infos:
        if item.get("raised_exception"):
            return f"error: {item.get('exception_message')}"
    res = result.result or {}
    if "observed_value" in res:
        return _fmt(res["observed_value"])
    if "unexpected_count" in res:
        count = res.get("unexpected_count") or 0
        total = res.get("element_count") or 0
        sample = res.get("partial_unexpected_list") or []
        if total == 1 and len(sample) == 1:
            return _fmt(sample[0])  # a one-row metrics frame: show the value itself
        return f"{count} of {total} rows unexpected, e.g. {_fmt(sample)}"
    return _fmt(res)


def _column(kwargs: dict[str, Any], result: ExpectationValidationResult) -> str | None:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_list" in kwargs:
        return ", ".join(kwargs["column_list"])
    if "column_set" in kwargs:
        details = (result.result or {}).get("details") or {}
        missing = (details.get("mismatched") or {}).get("missing") or []
        return ", ".join(str(c) for c in missing) or None
    return None


def _findings(suite: str, results: ExpectationSuiteValidationResult) -> list[Finding]:
    out = []
    for res in results.results:
        if res.success:
            continue
        config = res.expectation_config
        if config is None:  # pragma: no cover - GE always attaches it
            continue
        meta = config.meta or {}
        kwargs = dict(config.kwargs)
        out.append(
            Finding(
                suite=suite,
                check=str(meta.get("check", config.type)),
                expectation=config.type,
                column=_column(kwargs, res),
                observed=_observed(res),
                bound=_bound(kwargs),
                severity=str(getattr(config.severity, "value", config.severity)),
                description=str(meta.get("description", config.type)),
            )
        )
    return out


def validate_frames(
    pairs: list[tuple[gx.ExpectationSuite, pl.DataFrame]], *, docs_dir: Path | None = None
) -> list[SuiteOutcome]:
    """Validate each frame against its suite, in one ephemeral GE context.

    Parameters
    ----------
    pairs
        (suite, frame) to validate; suite names must be distinct.
    docs_dir
        When given, GE Data Docs (HTML, ``index.html``) are built into this folder,
        with their CDN stylesheets and scripts replaced by local copies (they render
        offline; :mod:`longtail.validation.offline`).

    Returns
    -------
    list of SuiteOutcome
        One per pair, in order; failed expectations become :class:`Finding`.
        Failed expectations never raise: the caller decides.
    """
    names = [suite.name for suite, _ in pairs]
    if len(set(names)) != len(names):
        msg = f"suite names must be distinct. Got {names} instead."
        raise ValueError(msg)
    ctx = _context(docs_dir)
    source = ctx.data_sources.add_pandas("longtail")
    outcomes = []
    for suite, frame in pairs:
        t0 = time.perf_counter()
        batch = source.add_dataframe_asset(suite.name).add_batch_definition_whole_dataframe("whole")
        stored = ctx.suites.add(suite)
        definition = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=suite.name, data=batch, suite=stored)
        )
        results = definition.run(
            batch_parameters={"dataframe": to_pandas(frame)}, result_format=_RESULT_FORMAT
        )
        outcome = SuiteOutcome(
            suite=suite.name,
            rows=frame.height,
            evaluated=len(results.results),
            findings=_findings(suite.name, results),
            seconds=time.perf_counter() - t0,
        )
        log.info(
            "suite %s: %d rows, %d expectations, %d failed (%.2fs)",
            outcome.suite,
            outcome.rows,
            outcome.evaluated,
            len(outcome.findings),
            outcome.seconds,
        )
        outcomes.append(outcome)
    if docs_dir is not None:
        docs_dir.mkdir(parents=True, exist_ok=True)
        ctx.build_data_docs(site_names=[DOCS_SITE])
        for url in make_site_offline(docs_dir):
            log.warning("Data Docs still load %s (no vendored copy): offline it will not", url)
    return outcomes
