"""The errors of mf-parallel, in the convention every mf library shares.

The CLI never imports these classes: it reads ``exit_code`` (2 = the request was wrong,
1 = a runtime failure) and prints ``str(error)``, which is always one line that names the
bad value, what is allowed and, where there is a product or a remainder, the arithmetic.
"""

from __future__ import annotations


class ParallelError(Exception):
    """A runtime failure in mf-parallel (a collective, a cluster that does not form)."""

    exit_code = 1


class ParallelConfigError(ParallelError, ValueError):
    """A parallel layout, configuration or argument that cannot work."""

    exit_code = 2


class LayoutError(ParallelConfigError):
    """A tensor layout or sharding plan that does not fit a tensor or a mesh."""


class StrategyFileError(ParallelConfigError):
    """A strategy file that is not valid JSON or does not describe a valid layout."""


class RankTableError(ParallelConfigError):
    """An HCCL rank table (``hccl_*.json``) that is malformed or inconsistent."""


class ParallelFileNotFoundError(ParallelConfigError, FileNotFoundError):
    """A strategy file or rank table that does not exist."""
