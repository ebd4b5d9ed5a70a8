"""Parallel configuration, device mesh, sharding layouts, pipeline schedules, memory estimate and the msrun launcher."""

from importlib.metadata import version as _version

__version__ = _version("mf-parallel")
