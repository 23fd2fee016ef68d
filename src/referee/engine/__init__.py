"""Engines: where a run's questions are answered. In-process is the default; :class:`RayEngine`
spreads them over Ray actors that each hold one judge, and :class:`RayGenerator` (through
:func:`ray_generators`) the generations of ``referee generate``, while the driver keeps the store."""

from ._ray import RayEngine, RayGenerator, RayPool, ray_generators, require_ray, start_engine

__all__ = ["RayEngine", "RayGenerator", "RayPool", "ray_generators", "require_ray", "start_engine"]
