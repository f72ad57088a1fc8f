"""The plugin host: hook specifications, registries of named factories, and the host that loads
first-party and entry-point plugins into them. ``hookimpl`` and ``registries`` are public through
:mod:`ridgeline.core`; the rest is internal."""
