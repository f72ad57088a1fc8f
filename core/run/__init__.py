"""Running studies: pipeline configs, the pipeline itself (model sets x aligners x corrections x
paths x metrics, resumable), training and spawning, and metrics over training trajectories.
``run_pipeline`` and friends are public through :mod:`ridgeline.core`; the rest is internal."""
