from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from ridgeline.core.numerics import assignment, batched_assignment, improving_assignment


def _brute_force(matrix: torch.Tensor) -> float:
    n = matrix.shape[0]
    return max(float(matrix[torch.arange(n), torch.tensor(p)].sum())
               for p in itertools.permutations(range(n)))


def test_assignment_finds_the_best_permutation():
    similarity = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
    perm, total = assignment(similarity)
    assert sorted(perm.tolist()) == list(range(5))
    assert total == pytest.approx(_brute_force(similarity))


@pytest.mark.parametrize("as_array", [False, True], ids=["tensor", "array"])
def test_a_batch_gives_each_problem_its_own_assignment(as_array):
    similarity = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(1))
    perms, totals = batched_assignment(similarity.numpy() if as_array else similarity)
    assert perms.shape == (3, 2, 4) and perms.dtype == torch.long
    assert totals.shape == (3, 2) and totals.dtype == torch.float64
    for index in itertools.product(range(3), range(2)):
        perm, total = assignment(similarity[index])
        assert torch.equal(perms[index], perm)
        assert float(totals[index]) == pytest.approx(total) == pytest.approx(_brute_force(similarity[index]))


def test_a_batch_of_non_contiguous_blocks_matches_the_blocks_one_by_one():
    # weight matching's nested step: sim[i, :, j, :] is the block of head i of A and head j of B
    sim = np.random.default_rng(2).normal(size=(3, 4, 3, 4))
    perms, totals = batched_assignment(sim.transpose(0, 2, 1, 3))
    for i, j in itertools.product(range(3), range(3)):
        perm, total = assignment(torch.from_numpy(np.ascontiguousarray(sim[i, :, j, :])))
        assert torch.equal(perms[i, j], perm) and float(totals[i, j]) == pytest.approx(total)


def test_a_batch_of_non_square_matrices_is_refused():
    with pytest.raises(ValueError, match=r"square matrices \(..., n, n\), got shape \(2, 3, 4\)"):
        batched_assignment(torch.zeros(2, 3, 4))


def test_an_improving_assignment_replaces_only_a_worse_permutation():
    similarity = torch.randn(6, 6, generator=torch.Generator().manual_seed(3)) - 10 * torch.eye(6)
    best, _ = assignment(similarity)
    assert torch.equal(improving_assignment(similarity, torch.arange(6)), best)  # the identity is worst
    assert improving_assignment(similarity, best) is None  # already optimal: kept


def test_an_improving_assignment_ignores_a_gain_within_rounding():
    similarity = torch.eye(3, dtype=torch.float64)
    similarity[0, 1] = similarity[1, 0] = 1 + 1e-12  # swapping 0 and 1 gains 2e-12 over 3
    assert improving_assignment(similarity, torch.arange(3)) is None
    assert torch.equal(improving_assignment(similarity, torch.arange(3), rtol=0.0), torch.tensor([1, 0, 2]))


def test_an_improving_assignment_decides_in_float64():
    # the swap's sum 2**24 + 1 rounds to the identity's 2**24 in float32, not in float64
    similarity = torch.tensor([[2.0 ** 24, 2.0 ** 24], [1.0, 0.0]], dtype=torch.float32)
    assert float(similarity[0, 1] + similarity[1, 0]) == float(similarity[0, 0] + similarity[1, 1])
    assert torch.equal(improving_assignment(similarity, torch.arange(2)), torch.tensor([1, 0]))
