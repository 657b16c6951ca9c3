"""Statistical models: each builds a PyMC model (and maybe a precompiled twin) and fits it.

``base.Model`` is the class every model extends. The claim-facing protocol is a *family*
(:mod:`trialmeta.analysis.families`); model classes are registered by name, with the
families, in :mod:`trialmeta.analysis.families.registry`.
"""
