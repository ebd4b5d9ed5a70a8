"""The errors of mf_tokenize, in the convention every mf library shares.

An exception with an ``exit_code`` is a known failure whose message is the one line a person
should read: 2 for a usage or configuration error (bad argument, missing or corrupt file),
1 for a runtime failure. The CLI turns them into exit codes without importing this module.
"""

from __future__ import annotations


class TokenizerError(Exception):
    """A runtime failure while tokenizing."""

    exit_code = 1


class TokenizerConfigError(TokenizerError, ValueError):
    """A bad argument or configuration value."""

    exit_code = 2


class TokenizerInputError(TokenizerConfigError, TypeError):
    """Text of the wrong type was given (a number, None, bytes ... instead of str)."""


class VocabFileNotFoundError(TokenizerConfigError, FileNotFoundError):
    """A vocabulary file (or a preset's directory) is not on disk."""


class CorruptVocabError(TokenizerConfigError):
    """A vocabulary file exists but cannot be read, or does not match its companion file."""


class UnknownTokenizerError(TokenizerConfigError, KeyError):
    """A tokenizer class or preset name that mf does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ImageInputError(TokenizerConfigError):
    """An image that cannot be processed: a missing or unreadable file, not an image, the wrong
    shape, type or number of channels."""
