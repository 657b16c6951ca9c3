"""The base class of every statistical model: ``build`` never samples; ``fit`` is one template.

A model says what is particular to it through a few hooks; :meth:`Model.fit` does the rest the
same way for every model::

    data  = model.fit_data(data)                         # e.g. drop what the model cannot use
    idata = sample(LazyModel(build, kernel), settings,   # seeded, cached by cache_token(data)
                   token=model.cache_token(data))
    diagnostics = diagnose(idata, model.gate_names(data))  # the convergence gate
    idata.attrs.update(model.record(data, settings, data_sha256, versions))
    return model.fit_result(data, idata, settings, diagnostics, provenance, built)

``build(data)`` returns the PyMC model; ``kernel(data)``, when the model has a hand-written
numba kernel for these data, returns a function building its precompiled twin
(:class:`~trialmeta.analysis.sampling.precompiled.PrecompiledModel`), which the default sampler
runs instead. Neither is built when the posterior comes from the cache.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from ..io.provenance import package_versions
from ..sampling.inference import Diagnostics, LazyModel, diagnose, sample
from ..sampling.settings import SamplerSettings

if TYPE_CHECKING:  # pragma: no cover
    import pymc as pm

    from ..sampling.precompiled import PrecompiledModel

#: a fit that fails the gate narrowly is redrawn with up to this many times the draws
MAX_EXTENSION = 4
#: ... when it asked for at least the default draws (a quick run with fewer draws gets
#: what it asked for: its failure is reported, not paid for with 4x the time)
EXTEND_FROM_DRAWS = SamplerSettings().draws
#: "narrowly": no divergence, and R-hat at most this (more draws cure slow mixing, not
#: divergences or chains stuck in different modes)
NARROW_R_HAT = 1.05


def narrowly_failed(diagnostics: Diagnostics) -> bool:
    """Whether more draws could pass the gate: no divergence, R-hat <= NARROW_R_HAT."""
    r_hat = diagnostics.r_hat_max
    return (not diagnostics.passed and diagnostics.divergences == 0
            and r_hat == r_hat and r_hat <= NARROW_R_HAT)


#: changes whenever a model's parametrisation changes, so that no cached posterior of the
#: old one is read (2: symmetric arm-based likelihoods, :mod:`.arms`)
MODELS_REVISION = "models-2"


class Model(ABC):
    """A statistical model: a PyMC model (and maybe a precompiled twin) and one ``fit``."""

    #: the name the model registry and the fit documents use
    name: ClassVar[str] = ""

    @abstractmethod
    def build(self, data: Any) -> pm.Model:
        """Return the PyMC model of ``data`` (no sampling)."""

    def kernel(self, data: Any) -> Callable[[], PrecompiledModel] | None:
        """Return a builder of the precompiled twin for ``data``, or None (PyMC's log density)."""
        return None

    def fit_data(self, data: Any) -> Any:
        """Return the data the fit uses (by default ``data`` itself)."""
        return data

    @abstractmethod
    def cache_token(self, data: Any) -> str:
        """Return what identifies a fit of ``data`` beyond the sampler settings (the cache key)."""

    @abstractmethod
    def gate_names(self, data: Any) -> list[str]:
        """Return the variables the convergence gate checks."""

    def record(self, data: Any, settings: SamplerSettings, data_sha256: str,
               versions: dict[str, str]) -> dict[str, Any]:
        """Return what the posterior's attributes record about the fit (none by default)."""
        return {}

    @abstractmethod
    def fit_result(self, data: Any, idata: Any, settings: SamplerSettings,
                   diagnostics: Diagnostics, provenance: dict[str, Any],
                   built: pm.Model | None) -> Any:
        """Return the model's fit object (``built``: the PyMC model, if it was built)."""

    def fit(self, data: Any, settings: SamplerSettings | None = None, *,
            data_sha256: str = "", progress: bool = False) -> Any:
        """Sample the posterior (or read it from the cache) and run the convergence gate.

        Parameters
        ----------
        data
            The model's data (from ``analysis/select``).
        settings : SamplerSettings, optional
            Draws, chains, seed, sampler and cache folder (the defaults if omitted).
        data_sha256 : str
            The records' hash, carried into the fit's provenance.
        progress : bool
            Show the sampler's progress bar.
        """
        settings = settings or SamplerSettings()
        data = self.fit_data(data)
        lazy = LazyModel(lambda: self.build(data), self.kernel(data))
        token = f"{self.cache_token(data)}|{MODELS_REVISION}"
        idata = sample(lazy, settings, progress=progress, token=token)
        diagnostics = diagnose(idata, self.gate_names(data))
        start, first = settings.draws, diagnostics
        while narrowly_failed(diagnostics) and start >= EXTEND_FROM_DRAWS \
                and settings.draws < start * MAX_EXTENSION:
            settings = replace(settings, draws=settings.draws * 2)  # same seed, more draws
            idata = sample(lazy, settings, progress=progress, token=token)
            diagnostics = diagnose(idata, self.gate_names(data))
        if settings.draws != start:
            diagnostics.messages.append(
                f"draws extended from {start} to {settings.draws} per chain: at {start} the "
                f"gate failed narrowly ({'; '.join(first.messages)})")
        versions = package_versions()
        attrs = self.record(data, settings, data_sha256, versions)
        if attrs:
            idata.attrs.update(attrs)
        provenance = {"data_sha256": data_sha256, "seed": settings.seed, "versions": versions}
        return self.fit_result(data, idata, settings, diagnostics, provenance, lazy.built)
