"""Orchestration of many fits.

The report job, the sensitivity sweep, calibration, the decision rule's operating
characteristics, what changed between two analyses, and the Dask task engine.
"""
