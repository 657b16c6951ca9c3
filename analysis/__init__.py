"""trialmeta.analysis: the library behind the command line.

Records (loading and validation), record selection, models, claims and the
report. Nothing here imports ``trialmeta.cli``; heavy libraries (PyMC, ArviZ,
matplotlib) are imported inside the functions that need them.
"""

__version__ = "0.1.0"
