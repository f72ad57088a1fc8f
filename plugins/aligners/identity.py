"""``identity``: no alignment, the naive baseline."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ridgeline.core import AlignContext, Aligner, Alignment, PermutationSpec


class IdentityAligner(Aligner):
    """Leave ``other`` as it is (the naive interpolation baseline)."""

    name = "identity"
    supports_nested = True
    needs_finite = False  # the naive path of a diverged model is measured and flagged

    def __init__(self) -> None:
        super().__init__()

    def align(self, reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
              spec: PermutationSpec, context: AlignContext) -> Alignment:
        return Alignment(perms=spec.identity())
