from __future__ import annotations

import pytest

from longtail.config import config_from_dict
from longtail.errors import ConfigError
from longtail.resampling import STRATEGIES
from longtail.tune.space import (
    configurations,
    hyperparameter_draws,
    is_baseline,
    loss_variants,
    param_space,
    strategy_names,
    trial_points,
    trial_spec,
)

pytestmark = pytest.mark.unit


def test_default_space_searches_every_registered_strategy_and_every_loss() -> None:
    cfg = config_from_dict({})
    assert set(strategy_names(cfg)) == set(STRATEGIES)
    assert {v.loss for v in loss_variants(cfg).values()} == {
        "bce", "weighted_bce", "focal", "class_balanced"
    }  # fmt: skip
    space = param_space(cfg)
    assert set(space) == {"point"}
    assert len(space["point"]["grid_search"]) == len(trial_points(cfg))


def test_baseline_is_in_the_space_even_when_not_configured() -> None:
    cfg = config_from_dict(
        {"tune": {"strategies": ["smote"], "losses": [{"loss": "focal", "params": {"gamma": 1}}]}}
    )
    assert strategy_names(cfg) == ["none", "smote"]
    assert list(loss_variants(cfg)) == ["bce", "focal(gamma=1)"]
    point = trial_points(cfg)[0]  # the baseline's first trial: the first draw, seed 0
    assert is_baseline(point, cfg)
    # Every draw and seed of the baseline configuration is the baseline.
    assert is_baseline({**point, "learning_rate": point["learning_rate"] * 2, "seed": 9}, cfg)
    assert not is_baseline({**point, "strategy": "smote"}, cfg)
    spec = trial_spec(point, cfg)
    assert (spec.strategy, spec.loss, spec.strategy_params, spec.label) == (
        "none", "bce", {}, "none / bce"
    )  # fmt: skip


def test_trial_spec_takes_strategy_and_loss_parameters_from_the_config() -> None:
    cfg = config_from_dict({"tune": {"strategy_params": {"smote": {"k_neighbors": 3}}}})
    spec = trial_spec(
        {"strategy": "smote", "loss": "focal(alpha=0.25,gamma=2)", "learning_rate": 0.01,
         "embedding_dim": 8}, cfg,
    )  # fmt: skip
    assert spec.strategy_params == {"k_neighbors": 3}
    assert spec.loss_params == {"alpha": 0.25, "gamma": 2.0}


@pytest.mark.parametrize(
    ("tune", "match"),
    [
        ({"strategies": ["smoat"]}, "smoat"),
        ({"strategy_params": {"smote": {"k_neighbours": 3}}}, "k_neighbours"),
        ({"losses": [{"loss": "focal", "params": {"beta": 0.9}}]}, "beta"),
    ],
)
def test_bad_strategies_and_parameters_fail_before_any_work(tune: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        param_space(config_from_dict({"tune": tune}))


def test_learning_rate_bounds_are_checked_in_the_config() -> None:
    with pytest.raises(ConfigError, match="learning_rate_min"):
        config_from_dict({"tune": {"learning_rate_min": 0.1, "learning_rate_max": 0.01}})


def test_every_configuration_and_the_baseline_get_the_same_draws_and_seeds() -> None:
    cfg = config_from_dict(
        {"seed": 3, "tune": {"strategies": ["smote", "random_under"], "draws": 3, "seeds": 2}}
    )
    points = trial_points(cfg)
    pairs = configurations(cfg)
    assert pairs[0] == ("none", "bce")
    assert len(points) == len(pairs) * 3 * 2
    draws = hyperparameter_draws(cfg)
    assert draws[0] == (cfg.train.learning_rate, cfg.train.embedding_dim)
    for strategy, loss in pairs:
        mine = [p for p in points if (p["strategy"], p["loss"]) == (strategy, loss)]
        assert sorted({(p["learning_rate"], p["embedding_dim"]) for p in mine}) == sorted(draws)
        assert sorted({p["seed"] for p in mine}) == [3, 4]
    # Seed-major: every configuration's first seed runs before any second seed.
    replicas = [p["replica"] for p in points]
    assert replicas == sorted(replicas)


def test_fixed_hyperparameters_use_the_train_values_for_everyone() -> None:
    cfg = config_from_dict({"tune": {"hyperparameters": "fixed", "draws": 4, "seeds": 1}})
    assert hyperparameter_draws(cfg) == [(cfg.train.learning_rate, cfg.train.embedding_dim)]
    assert {(p["learning_rate"], p["embedding_dim"]) for p in trial_points(cfg)} == {
        (cfg.train.learning_rate, cfg.train.embedding_dim)
    }


def test_num_samples_caps_the_configurations_and_keeps_the_baseline() -> None:
    cfg = config_from_dict({"tune": {"num_samples": 4}})
    pairs = configurations(cfg)
    assert len(pairs) == 4 and pairs[0] == ("none", "bce") and len(set(pairs)) == 4
