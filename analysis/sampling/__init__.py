"""Samplers and their settings, the convergence gate and PSIS-LOO; the kernels; no family."""
