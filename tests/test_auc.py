"""Tests of backdrop_repro.auc: exact AUC and the pairwise surrogates of 1 - AUC; labels must be 0/1."""
import math

import numpy as np
import pytest
import torch

from backdrop_repro.auc import exact_auc, pairwise_auc_loss, soft_auc


@pytest.mark.parametrize(
    "scores, labels, expected",
    [
        ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 1.0),            # perfect ranking
        ([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], 0.0),            # reversed
        ([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5),            # all tied
        ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),          # 3 of 4 pairs ordered
        ([0.3, 0.3, 0.1, 0.9, 0.3], [1, 0, 0, 1, 0], 5 / 6),  # ties count one half
    ],
)
def test_exact_auc_hand_computed_cases(scores, labels, expected):
    # last case: positives 0.3, 0.9; negatives 0.3, 0.1, 0.3 -> (0.3: 0.5 + 1 + 0.5) + (0.9: 3) = 5 of 6 pairs
    assert exact_auc(scores, labels) == pytest.approx(expected, abs=1e-12)


def test_exact_auc_equals_pair_count_with_ties():
    """Against a direct count over all positive-negative pairs (not against sklearn, which it uses)."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        s = rng.integers(0, 6, size=50).astype(float)  # many ties
        y = rng.random(50) < 0.2
        y[:2] = [True, False]
        d = s[y][:, None] - s[~y][None, :]
        by_hand = ((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size
        assert exact_auc(s, y) == pytest.approx(by_hand, abs=1e-12)
        assert exact_auc(torch.tensor(s)[:, None], torch.tensor(y)) == pytest.approx(by_hand, abs=1e-12)


def test_exact_auc_matches_sklearn_roc_auc_score():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    for _ in range(20):
        s = np.round(rng.normal(size=200), 1)  # ties
        y = rng.random(200) < 0.1
        y[:2] = [True, False]
        assert exact_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_exact_auc_rejects_bad_input():
    with pytest.raises(ValueError, match="both classes"):
        exact_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="labels must be 0/1"):
        exact_auc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="same length"):
        exact_auc([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError, match="finite"):
        exact_auc([0.1, float("nan")], [0, 1])
    with pytest.raises(ValueError, match="scores must have shape"):
        exact_auc(np.zeros((2, 2)), [0, 1])


def test_sigmoid_surrogate_sharp_limit_equals_exact_auc():
    rng = np.random.default_rng(0)
    for n in (5, 12, 40):
        s = np.round(rng.normal(size=n), 1)  # rounding creates ties
        y = np.zeros(n, dtype=int)
        y[rng.choice(n, size=max(1, n // 4), replace=False)] = 1
        exact = exact_auc(s, y)
        st, yt = torch.tensor(s, dtype=torch.float64), torch.tensor(y)
        assert float(soft_auc(st, yt, tau=1e-6)) == pytest.approx(exact, abs=1e-9)
        assert abs(float(soft_auc(st, yt, tau=10.0)) - exact) > 1e-3  # a blunt temperature differs


def test_sigmoid_surrogate_converges_monotonically_to_exact():
    s = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.2], dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 0])
    exact = exact_auc(s, y)
    errs = [abs(float(soft_auc(s, y, tau=t)) - exact) for t in (1.0, 0.1, 0.01, 1e-4)]
    assert errs == sorted(errs, reverse=True) and errs[-1] < 1e-12
    assert exact == pytest.approx(5 / 6)  # pos 0.35 beats 0.1, 0.2 but not 0.4; 0.8 beats all


def test_hinge_and_logistic_upper_bound_one_minus_auc():
    rng = np.random.default_rng(1)
    for _ in range(10):
        s = torch.tensor(rng.normal(size=30))
        y = torch.tensor((rng.random(30) < 0.3).astype(int))
        y[0], y[1] = 1, 0
        gap = 1.0 - exact_auc(s, y)
        assert float(pairwise_auc_loss(s, y, "hinge", margin=1.0)) >= gap - 1e-12
        assert float(pairwise_auc_loss(s, y, "logistic", tau=1.0)) >= gap - 1e-12


def test_surrogate_values_by_hand():
    s = torch.tensor([0.0, 1.0, 3.0])
    y = torch.tensor([0, 1, 1])  # differences d = 1, 3
    assert float(pairwise_auc_loss(s, y, "sigmoid", tau=1.0)) == pytest.approx(
        (1 / (1 + math.e) + 1 / (1 + math.e ** 3)) / 2)
    assert float(pairwise_auc_loss(s, y, "hinge", margin=2.0)) == pytest.approx((1.0 + 0.0) / 2)
    assert float(pairwise_auc_loss(s, y, "logistic", tau=1.0)) == pytest.approx(
        (math.log2(1 + math.exp(-1)) + math.log2(1 + math.exp(-3))) / 2)
    # numpy scalars are accepted as tau / margin
    assert float(pairwise_auc_loss(s, y, "hinge", margin=np.float32(2.0))) == pytest.approx(0.5)


def test_surrogate_without_pairs_is_zero_with_zero_gradient():
    s = torch.tensor([0.3, 0.7], requires_grad=True)
    loss = pairwise_auc_loss(s, torch.tensor([1, 1]))
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.equal(s.grad, torch.zeros(2))


def test_surrogate_rejects_bad_arguments():
    s, y = torch.zeros(3), torch.tensor([0, 1, 0])
    with pytest.raises(ValueError, match="surrogate must be one of"):
        pairwise_auc_loss(s, y, "square")
    with pytest.raises(ValueError, match="tau must be a real number > 0"):
        pairwise_auc_loss(s, y, tau=0.0)
    with pytest.raises(ValueError, match="margin"):
        pairwise_auc_loss(s, y, "hinge", margin=True)
    with pytest.raises(ValueError, match="labels must have length"):
        pairwise_auc_loss(s, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="scores must have shape"):
        pairwise_auc_loss(torch.zeros(3, 2), y)


def test_surrogate_is_non_decomposable():
    """The mean of minibatch surrogates is not the full-batch surrogate: each minibatch sees
    only its own pairs."""
    s = torch.tensor([0.0, 1.0, 2.0, 3.0, 5.0])
    y = torch.tensor([0, 1, 0, 0, 1])
    full = float(pairwise_auc_loss(s, y, tau=1e-6))  # positive 1.0 loses to 2.0 and 3.0: 2 of 6 pairs
    first, second = pairwise_auc_loss(s[:2], y[:2], tau=1e-6), pairwise_auc_loss(s[2:], y[2:], tau=1e-6)
    assert full == pytest.approx(1 / 3)
    assert (float(first) + float(second)) / 2 == pytest.approx(0.0)  # the bad pairs straddle the batches


# ------------------------------------------------------------------ labels must be 0/1
@pytest.mark.parametrize("labels", [[1, -1, 1, -1], [0.5, 0, 0.5, 0], [2, 0, 2, 0]])
def test_auc_losses_refuse_labels_exact_auc_refuses(labels):
    s = torch.tensor([0.1, 0.4, 0.35, 0.8], requires_grad=True)
    y = torch.tensor(labels)
    with pytest.raises(ValueError, match="0/1"):
        exact_auc(s.detach(), y)
    with pytest.raises(ValueError, match="labels must be 0/1"):
        pairwise_auc_loss(s, y)
    with pytest.raises(ValueError, match="labels must be 0/1"):
        soft_auc(s, y)


def test_auc_losses_still_take_0_1_in_any_dtype():
    s = torch.tensor([0.1, 0.4, 0.35, 0.8])
    for y in (torch.tensor([0, 0, 1, 1]), torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.tensor([False, False, True, True])):
        assert round(1 - float(pairwise_auc_loss(s, y, tau=1e-4)), 6) == 0.75


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0, 0]])
def test_soft_auc_of_one_class_is_an_error_not_1(labels):
    """Issue 39: ``soft_auc`` on one class returned 1.0 (the surrogate's zero loss of a batch with no pair)."""
    with pytest.raises(ValueError, match="labels must contain both classes") as err:
        soft_auc(torch.tensor([0.1, 0.5, 0.9]), torch.tensor(labels))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="both classes"):
        exact_auc([0.1, 0.5, 0.9], labels)
