"""Samplers, settings and the posterior cache; the precompiled kernels; no model family."""
