"""The symmetries of a network's state: the Symmetry interface and its kinds (permutation specs,
tree ensembles, mixtures of experts, products), the derivation of permutation specs from the
traced graph, and the report ``ridgeline spec`` prints.

* :mod:`~ridgeline.core.symmetry.symmetry` -- :class:`Symmetry`, the interface every kind
  implements, and :class:`SpecCheck`;
* :mod:`~ridgeline.core.symmetry.spec` -- :class:`PermutationSpec` (a Symmetry) and :class:`AxisRef`
  (public through :mod:`ridgeline.core`);
* :mod:`~ridgeline.core.symmetry.product` -- :class:`SymmetryProduct`, commuting symmetries together;
* :mod:`~ridgeline.core.symmetry.trees` -- :class:`TreeSymmetry`: tree permutation, subtree flips,
  splitting order;
* :mod:`~ridgeline.core.symmetry.experts` -- :class:`ExpertSymmetry`: experts with their router rows,
  units within experts;
* :mod:`~ridgeline.core.symmetry.derive` -- ``derive_spec``: trace with torch.fx, label every
  axis, assemble and check the groups;
* :mod:`~ridgeline.core.symmetry.labels` -- axis labels and the union-find behind them;
* :mod:`~ridgeline.core.symmetry.rules` -- the rule tables the walker consults, filled by
  :mod:`~ridgeline.core.symmetry.layer_rules` (modules) and :mod:`~ridgeline.core.symmetry.op_rules`
  (functions and tensor methods);
* :mod:`~ridgeline.core.symmetry.walker` -- runs the graph and applies the rules;
* :mod:`~ridgeline.core.symmetry.report` -- the text report of a model's spec.

Internal apart from what :mod:`ridgeline.core` exports.
"""
