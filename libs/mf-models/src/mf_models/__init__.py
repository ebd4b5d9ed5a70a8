"""Model configs, presets, architectures, Auto classes and weight I/O on MindSpore."""

from importlib.metadata import version as _version

__version__ = _version("mf-models")
