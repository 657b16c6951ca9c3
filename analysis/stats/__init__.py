"""Pure numerics (NumPy and SciPy only).

The decision rule, priors, PSIS-LOO, MCMC diagnostics, frequentist and exact estimators and
effect sizes.
"""
