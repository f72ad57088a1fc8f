"""What the spec-derivation tests share: the check that a derived spec preserves the function."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ridgeline.core.symmetry.derive import generic_state
from ridgeline.core.symmetry.spec import PermutationSpec


def _function_preserved(module: nn.Module, spec: PermutationSpec, x: torch.Tensor, *,
                        generic: bool = False) -> None:
    """A random permutation of every group changes the state but not the outputs, on the
    module's own state or (``generic``) on a perturbed copy of it (:func:`generic_state`)."""
    module.eval()
    state = generic_state(module) if generic else {k: v.detach() for k, v in module.state_dict().items()}
    permuted = spec.apply(state, spec.random(torch.Generator().manual_seed(5)))
    assert any(not torch.equal(state[k], permuted[k]) for k in spec.keys)
    with torch.no_grad():
        torch.testing.assert_close(torch.func.functional_call(module, permuted, (x,)),
                                   torch.func.functional_call(module, state, (x,)), rtol=1e-4, atol=1e-5)


@pytest.fixture
def function_preserved():
    """:func:`_function_preserved`: ``function_preserved(module, spec, x, generic=False)``."""
    return _function_preserved
