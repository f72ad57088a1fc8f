"""ridgeline's first-party plugins, one subpackage per family.

Each subpackage's ``__init__`` implements one ``register_<kind>`` hook; the algorithms live
in the modules beside it. They register exactly as a third-party plugin would.
"""
