"""The mathematics plugins share, in one place (public API, beside :mod:`ridgeline.core`).

* state arithmetic: :func:`combine`, :func:`lerp`, :func:`subtract`, :func:`module_groups` ...
  (:mod:`ridgeline.core.state`);
* vectors over state keys: :func:`dot`, :func:`norm`, :func:`flatten`, :func:`angle`;
* curves on a t grid: :func:`t_grid`, :func:`barrier_summary`, :func:`tangent`, and the
  Bezier / polygonal-chain coefficients :func:`bernstein`, :func:`chain_coefficients`;
* linear assignment: :func:`assignment`, one problem per leading index :func:`batched_assignment`,
  and weight matching's step :func:`improving_assignment`;
* soft permutations of a state: :func:`soft_apply`, :func:`multiply_axis`;
* streamed activation statistics of permutation groups: :class:`Moments`, :func:`stream_moments`,
  before or after the nonlinearity that follows the units (:func:`post_activations`);
  per-unit statistics pooled over batches: :class:`PooledMoments`;
* layer selection and blending: :func:`select_layers`, :func:`blend_layers`;
* Hessian-vector products and loss surfaces: :class:`LossSurface`;
* fitting curves between states: :class:`FittedCurve`, :func:`fit_free_states`;
* paths between two inputs of a fixed network: :class:`InputCurve`, :func:`fit_input_curve`,
  :func:`same_class_pairs`, :func:`class_loss`.

Names are imported lazily, on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ridgeline.core._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("State", "check_compatible", "combine", "lerp", "subtract", "clone", "to_device",
                     "distance", "module_groups", "fingerprint", "non_finite", "check_finite"),
                    "ridgeline.core.state"),
    **dict.fromkeys(("Vector", "dot", "norm", "restrict", "flatten", "angle"),
                    "ridgeline.core.numerics.vectors"),
    **dict.fromkeys(("t_grid", "barrier_summary", "tangent", "bernstein", "chain_coefficients"),
                    "ridgeline.core.numerics.curves"),
    **dict.fromkeys(("assignment", "batched_assignment", "improving_assignment"),
                    "ridgeline.core.numerics.linear_assignment"),
    **dict.fromkeys(("soft_apply", "multiply_axis"), "ridgeline.core.numerics.soft_permutation"),
    **dict.fromkeys(("Producer", "producers", "module_producers", "unit_samples", "hooked"),
                    "ridgeline.core.numerics.unit_producers"),
    **dict.fromkeys(("Moments", "collect_moments", "stream_moments", "cross_similarity"),
                    "ridgeline.core.numerics.activations"),
    **dict.fromkeys(("PostActivation", "post_activations"), "ridgeline.core.numerics.nonlinearities"),
    "PooledMoments": "ridgeline.core.interfaces.statistics",
    **dict.fromkeys(("select_layers", "blend_layers"), "ridgeline.core.numerics.layers"),
    **dict.fromkeys(("LossSurface", "parameter_keys"), "ridgeline.core.numerics.hessian"),
    **dict.fromkeys(("FittedCurve", "FitSettings", "fit_free_states", "train_mode"),
                    "ridgeline.core.numerics.curve_fitting"),
    **dict.fromkeys(("InputCurve", "InputFitSettings", "fit_input_curve", "same_class_pairs", "class_loss"),
                    "ridgeline.core.numerics.input_paths"),
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # what static tools see; at run time names load on first use
    from ridgeline.core.interfaces.statistics import PooledMoments
    from ridgeline.core.numerics.activations import Moments, collect_moments, cross_similarity, stream_moments
    from ridgeline.core.numerics.curve_fitting import FitSettings, FittedCurve, fit_free_states, train_mode
    from ridgeline.core.numerics.curves import barrier_summary, bernstein, chain_coefficients, t_grid, tangent
    from ridgeline.core.numerics.hessian import LossSurface, parameter_keys
    from ridgeline.core.numerics.input_paths import (
        InputCurve,
        InputFitSettings,
        class_loss,
        fit_input_curve,
        same_class_pairs,
    )
    from ridgeline.core.numerics.layers import blend_layers, select_layers
    from ridgeline.core.numerics.linear_assignment import assignment, batched_assignment, improving_assignment
    from ridgeline.core.numerics.nonlinearities import PostActivation, post_activations
    from ridgeline.core.numerics.soft_permutation import multiply_axis, soft_apply
    from ridgeline.core.numerics.unit_producers import (
        Producer,
        hooked,
        module_producers,
        producers,
        unit_samples,
    )
    from ridgeline.core.numerics.vectors import Vector, angle, dot, flatten, norm, restrict
    from ridgeline.core.state import (
        State,
        check_compatible,
        clone,
        combine,
        distance,
        fingerprint,
        lerp,
        module_groups,
        subtract,
        to_device,
    )
