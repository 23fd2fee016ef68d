"""Engines: where a run's questions are answered. In-process is the default; :class:`RayEngine`
spreads them over Ray actors that each hold one judge, while the driver keeps the store."""

from ._ray import RayEngine, require_ray, start_engine

__all__ = ["RayEngine", "require_ray", "start_engine"]
