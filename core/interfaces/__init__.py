"""The abstract seams a plugin implements, and what they are given.

:class:`~ridgeline.core.interfaces.model.Model`, :class:`~ridgeline.core.interfaces.dataset.Dataset`,
:class:`~ridgeline.core.interfaces.aligner.Aligner`, :class:`~ridgeline.core.interfaces.path.Path`,
:class:`~ridgeline.core.interfaces.metric.Metric` (with its ``PathProbe``),
:class:`~ridgeline.core.interfaces.correction.Correction`, and the
:class:`~ridgeline.core.interfaces.evaluator.Evaluator` every one of them evaluates states with.
Import them from :mod:`ridgeline.core`.
"""
