from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from longtail.errors import ConfigError
from longtail.losses import (
    bce,
    class_balanced,
    class_balanced_weights,
    default_beta,
    focal,
    logit_shift,
    make_loss,
    weight_ratio,
    weighted_bce,
)

pytestmark = pytest.mark.unit

LOGITS = torch.tensor([0.0, 2.0])
LABELS = torch.tensor([1.0, 0.0])
LOG2 = math.log(2.0)
SOFTPLUS2 = math.log(1.0 + math.exp(2.0))  # -log(1 - sigmoid(2))
SIG2 = 1.0 / (1.0 + math.exp(-2.0))


def test_bce_matches_hand_computed_value_and_gradient() -> None:
    z = LOGITS.clone().requires_grad_(True)
    loss = bce(z, LABELS)
    assert_close(loss, torch.tensor((LOG2 + SOFTPLUS2) / 2))
    loss.backward()
    # d/dz mean BCE = (sigmoid(z) - y) / B
    assert_close(z.grad, torch.tensor([(0.5 - 1.0) / 2, (SIG2 - 0.0) / 2]))


def test_weighted_bce_scales_only_positive_terms() -> None:
    z = LOGITS.clone().requires_grad_(True)
    loss = weighted_bce(z, LABELS, pos_weight=3.0)
    assert_close(loss, torch.tensor((3 * LOG2 + SOFTPLUS2) / 2))
    loss.backward()
    assert_close(z.grad, torch.tensor([3 * (0.5 - 1.0) / 2, SIG2 / 2]))


def test_weighted_bce_rejects_non_positive_weight() -> None:
    with pytest.raises(ValueError, match="pos_weight must be > 0"):
        weighted_bce(LOGITS, LABELS, pos_weight=0.0)


def test_focal_matches_hand_computed_value() -> None:
    loss = focal(LOGITS, LABELS, alpha=0.25, gamma=2.0)
    positive = 0.25 * (1 - 0.5) ** 2 * LOG2
    negative = 0.75 * SIG2**2 * SOFTPLUS2
    assert_close(loss, torch.tensor((positive + negative) / 2))


def test_focal_gradient_matches_hand_derivation() -> None:
    # One positive at z=0, alpha=1, gamma=2: FL = (1-p)^2 * -log p, dp/dz = p(1-p).
    z = torch.tensor([0.0], requires_grad=True)
    focal(z, torch.tensor([1.0]), alpha=1.0, gamma=2.0).backward()
    p = 0.5
    expected = (-2 * (1 - p) * -math.log(p) + (1 - p) ** 2 * (-1 / p)) * p * (1 - p)
    assert_close(z.grad, torch.tensor([expected]))


def test_focal_with_gamma_zero_and_half_alpha_is_half_bce() -> None:
    torch.manual_seed(0)
    z = torch.randn(32)
    y = (torch.rand(32) < 0.3).float()
    assert_close(focal(z, y, alpha=0.5, gamma=0.0), 0.5 * bce(z, y))


def test_focal_down_weights_easy_examples() -> None:
    easy = torch.tensor([-6.0])
    assert (
        focal(easy, torch.tensor([0.0]), alpha=0.5, gamma=2.0)
        < 0.5 * bce(easy, torch.tensor([0.0])) * 1e-3
    )


def test_class_balanced_weights_follow_effective_number() -> None:
    w_neg, w_pos = class_balanced_weights(n_negative=100, n_positive=10, beta=0.9)
    raw_neg = 0.1 / (1 - 0.9**100)
    raw_pos = 0.1 / (1 - 0.9**10)
    assert w_neg == pytest.approx(2 * raw_neg / (raw_neg + raw_pos))
    assert w_pos == pytest.approx(2 * raw_pos / (raw_neg + raw_pos))
    assert w_pos > w_neg


def test_class_balanced_loss_weights_rows_by_class() -> None:
    w_neg, w_pos = class_balanced_weights(n_negative=100, n_positive=10, beta=0.9)
    z = LOGITS.clone().requires_grad_(True)
    loss = class_balanced(z, LABELS, n_negative=100, n_positive=10, beta=0.9)
    assert_close(loss, torch.tensor((w_pos * LOG2 + w_neg * SOFTPLUS2) / 2))
    loss.backward()
    assert_close(z.grad, torch.tensor([w_pos * (0.5 - 1) / 2, w_neg * SIG2 / 2]))


def test_class_balanced_with_beta_zero_is_bce() -> None:
    assert_close(
        class_balanced(LOGITS, LABELS, n_negative=5, n_positive=1, beta=0.0), bce(LOGITS, LABELS)
    )


def test_make_loss_defaults_pos_weight_to_class_ratio() -> None:
    fn = make_loss("weighted_bce", {}, n_negative=90, n_positive=10)
    assert_close(fn(LOGITS, LABELS), weighted_bce(LOGITS, LABELS, pos_weight=9.0))


def test_make_loss_rejects_unknown_parameter_with_its_name() -> None:
    with pytest.raises(ConfigError, match="gamma"):
        make_loss("bce", {"gamma": 2.0}, n_negative=1, n_positive=1)
    with pytest.raises(ConfigError, match="unknown loss"):
        make_loss("hinge", {}, n_negative=1, n_positive=1)


def test_logit_shift_is_log_of_positive_to_negative_weight() -> None:
    assert logit_shift("bce", {}, n_negative=9, n_positive=1) == 0.0
    assert logit_shift("weighted_bce", {"pos_weight": 4.0}, n_negative=9, n_positive=1) == (
        pytest.approx(math.log(4.0))
    )
    w_neg, w_pos = class_balanced_weights(n_negative=9, n_positive=1, beta=0.5)
    assert logit_shift("class_balanced", {"beta": 0.5}, n_negative=9, n_positive=1) == (
        pytest.approx(math.log(w_pos / w_neg))
    )


def test_class_balanced_beta_follows_the_class_counts_by_default() -> None:
    # The demo's counts: a fixed beta of 0.999 is plain BCE there (about 1.03x).
    n_neg, n_pos = 87_000, 3_600
    fixed = weight_ratio("class_balanced", {"beta": 0.999}, n_negative=n_neg, n_positive=n_pos)
    assert fixed == pytest.approx(1.0, abs=0.05)
    assert default_beta(n_negative=n_neg) == pytest.approx(1 - 1 / n_neg)
    ratio = weight_ratio("class_balanced", {}, n_negative=n_neg, n_positive=n_pos)
    assert ratio is not None
    # (1 - beta^n_neg) / (1 - beta^n_pos) with beta = 1 - 1/n_neg: about 0.65 x n_neg / n_pos.
    assert ratio == pytest.approx((1 - math.exp(-1)) / (1 - math.exp(-n_pos / n_neg)), rel=1e-3)
    assert 10 < ratio < n_neg / n_pos
    assert weight_ratio("bce", {}, n_negative=n_neg, n_positive=n_pos) == 1.0
    assert weight_ratio("focal", {}, n_negative=n_neg, n_positive=n_pos) is None
