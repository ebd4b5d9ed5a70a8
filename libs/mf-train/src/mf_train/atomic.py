"""Atomic writes for mf-train: mf-parallel's helpers (`mf_parallel.atomic`), one copy for the
tree's libraries above mf-tokenize. See there for the recipe (temp name, fsync, rename, fsync
the directory; the user's file mode)."""

from mf_parallel.atomic import (
    TEMP_MARK,
    TRASH_MARK,
    atomic_directory,
    atomic_file,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    fsync_path,
    is_temporary,
    remove_directory,
    sweep_temporaries,
    temp_sibling,
    user_file_mode,
)

__all__ = [
    "TEMP_MARK", "TRASH_MARK", "atomic_directory", "atomic_file", "atomic_write_bytes",
    "atomic_write_json", "atomic_write_text", "fsync_path", "is_temporary",
    "remove_directory", "sweep_temporaries", "temp_sibling", "user_file_mode",
]
