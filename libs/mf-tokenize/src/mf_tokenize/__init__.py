"""BPE, SentencePiece and WordPiece tokenizers for the mf model families (no MindSpore)."""

from importlib.metadata import version as _version

__version__ = _version("mf-tokenize")
