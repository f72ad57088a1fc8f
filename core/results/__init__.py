"""The HDF5 results file: the store (the only writer), the writer thread, the readers that return
tidy rows, and the tables ``ridgeline report`` prints. The readers are public through
:mod:`ridgeline.core`; the rest is internal."""
