"""Loading a run YAML: `base_config` inheritance, `--options a.b=c` overrides, then the schema.

`base_config` (a path or a list of paths, relative to the file that names it, as in MindFormers)
is merged first, in order; the file's own keys then override key by key (mappings merge,
everything else replaces). A cycle is an error naming the chain.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from mf_train.errors import TrainConfigError, one_line
from mf_train.run_yaml.typed import join
from mf_train.run_yaml.yaml_io import read_yaml

BASE_KEY = "base_config"


def resolve_file(path: str | Path) -> tuple[dict[str, Any], dict[str, str], list[Path]]:
    """The merged mapping of `path` and its bases, the key origins, and the files read."""
    files: list[Path] = []
    data, origins = _resolve(Path(path).expanduser().resolve(), [], files)
    return data, origins, files


def _resolve(path: Path, chain: list[Path], files: list[Path],
             ) -> tuple[dict[str, Any], dict[str, str]]:
    if path in chain:
        cycle = " -> ".join(p.name for p in [*chain[chain.index(path):], path])
        raise TrainConfigError(f"base_config cycle: {cycle}")
    data, origins = read_yaml(path)
    bases = data.pop(BASE_KEY, None)
    origins.pop(BASE_KEY, None)
    merged: dict[str, Any] = {}
    merged_origins: dict[str, str] = {}
    for base in _base_list(bases, path):
        base_path = (path.parent / base).resolve()
        base_data, base_origins = _resolve(base_path, [*chain, path], files)
        merged = deep_merge(merged, base_data)
        merged_origins.update(base_origins)
    files.append(path)
    merged = deep_merge(merged, data)
    merged_origins.update(origins)
    return merged, merged_origins


def _base_list(bases: Any, path: Path) -> list[str]:
    if bases is None or bases == "" or bases == []:
        return []
    if isinstance(bases, str):
        return [bases]
    if isinstance(bases, list) and all(isinstance(b, str) for b in bases):
        return bases
    raise TrainConfigError(
        f"{path}: base_config = {bases!r}; expected a path or a list of paths")


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A new mapping: `override` on top of `base`, merging nested mappings key by key."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_option(option: str) -> tuple[list[str], Any]:
    """`"a.b=c"` -> (["a", "b"], value), the value typed as YAML types it (`8` is an int)."""
    key, sep, text = option.partition("=")
    key = key.strip()
    if not sep or not key:
        raise TrainConfigError(f"--options expects KEY=VALUE (e.g. runner_config.batch_size=8), "
                               f"got {option!r}")
    parts = key.split(".")
    if any(not part for part in parts):
        raise TrainConfigError(f"--options key {key!r} has an empty part; write a.b.c")
    from mf_models.safe_yaml import YamlBoundError, safe_load

    try:
        value = safe_load(text, f"--options {key}") if text.strip() else ""
    except YamlBoundError as exc:  # an alias bomb in an option: refused before it expands
        raise TrainConfigError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise TrainConfigError(f"--options {option!r}: the value is not valid YAML "
                               f"({one_line(exc)})") from None
    return parts, value


def apply_options(data: dict[str, Any], origins: dict[str, str],
                  options: Iterable[str]) -> dict[str, Any]:
    """Apply `--options` overrides in order; a new mapping, with origins `--options k=v`."""
    out = copy.deepcopy(data)
    for option in options:
        parts, value = parse_option(option)
        set_path(out, parts, value, origins, f"--options {option}")
    return out


def set_path(data: dict[str, Any], parts: Sequence[str], value: Any,
             origins: dict[str, str], origin: str) -> None:
    """Set `data[a][b][c] = value` in place, making mappings on the way; record the origin.

    A list is entered by index (`callbacks.1.save_checkpoint_steps`), within its length.
    """
    node: Any = data
    path = ""
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[:depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise TrainConfigError(
                    f"{origin}: '{'.'.join(parts[:depth])}' is a list of {len(node)}; "
                    f"'{part}' must be an index 0..{len(node) - 1}")
            key: Any = int(part)
            path = join(path, key)
        else:
            key = part
            path = join(path, part)
        origins[path] = origin
        if last:
            node[key] = copy.deepcopy(value)
            return
        child = node.get(key) if isinstance(node, dict) else node[key]
        if child is None:
            child = node[key] = {}
        elif not isinstance(child, (dict, list)):
            raise TrainConfigError(
                f"{origin}: '{where}' is a {type(child).__name__}, not a mapping, "
                "so it has no key below it")
        node = child


def apply_overrides(data: dict[str, Any], origins: dict[str, str], overrides: dict[str, Any],
                    origin: str) -> dict[str, Any]:
    """Apply `{"a.b": value}` overrides already typed in Python (e.g. from TrainingArguments)."""
    out = copy.deepcopy(data)
    for path, value in overrides.items():
        set_path(out, path.split("."), value, origins, f"{origin} {path}")
    return out


def load_mapping(path: str | Path, options: Sequence[str] = (),
                 ) -> tuple[dict[str, Any], dict[str, str], list[Path]]:
    """The merged mapping of a run YAML (bases, file, options), before the schema."""
    data, origins, files = resolve_file(path)
    data = apply_options(data, origins, options)
    return data, origins, files
