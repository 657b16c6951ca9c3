"""Sampler settings: draws, warm-up, chains, target acceptance, seed, sampler and cache."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: the largest sampler settings accepted (a larger value is a typo or an attack, not a wish)
MAX_SEED = 2**32 - 1
MAX_DRAWS = 1_000_000
MAX_CHAINS = 64


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings; chains run one after another in this process (no spawning).

    ``sampler`` names the NUTS implementation (see :mod:`trialmeta.analysis.sampling.samplers`).
    """

    draws: int = 1000
    tune: int = 500
    chains: int = 4
    target_accept: float = 0.9
    #: refit once at this target_accept when the first run diverges (None: never)
    retry_target_accept: float | None = 0.99
    seed: int = 20190101
    #: folder of cached posteriors (None: no cache); not part of a result's identity
    cache_dir: str | None = None
    sampler: str = "nutpie"

    def __post_init__(self) -> None:
        """Refuse settings no sampler can run (the command line bounds them the same way)."""
        import math

        from ..errors import SpecError

        for name, lo, hi in (("draws", 1, MAX_DRAWS), ("tune", 0, MAX_DRAWS),
                             ("chains", 1, MAX_CHAINS), ("seed", 0, MAX_SEED)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise SpecError(f"sampler setting {name} = {v!r}: must be a whole number "
                                f"from {lo} to {hi:,}")
        for name in ("target_accept", "retry_target_accept"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and math.isfinite(v)
                                      and 0 < v < 1):
                raise SpecError(f"sampler setting {name} = {v!r}: must lie between 0 and 1")

    def as_dict(self) -> dict[str, Any]:
        """Return the settings that shape a result, as a JSON-ready dict."""
        d = asdict(self)
        d.pop("cache_dir")
        return d
