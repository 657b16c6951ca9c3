"""Simulation-based calibration (Talts et al. 2018): how ranks are counted and binned.

The rank of the true value among ``N_RANK_DRAWS`` thinned posterior draws is uniform on
0..N_RANK_DRAWS when the sampler is calibrated; ranks are shown and tested in ``RANK_BINS``
bins. The calibration pipeline computes them; the report draws them.
"""

#: posterior draws (thinned, evenly spaced) the true value is ranked among
N_RANK_DRAWS = 99
#: bins of the rank histogram (100 possible ranks, 5 per bin)
RANK_BINS = 20
