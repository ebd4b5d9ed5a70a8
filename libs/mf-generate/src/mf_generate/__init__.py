"""Text generation: GenerationConfig, generate(), KV-cache driver, streamers, pipeline()."""

from importlib.metadata import version as _version

__version__ = _version("mf-generate")
