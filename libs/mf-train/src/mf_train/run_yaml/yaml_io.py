"""Reading one YAML file: the node tree composed once, then its values and key lines.

The node tree (the safe loader's, through mf-models' bounded `safe_yaml`, which refuses alias
bombs and recursive documents before anything expands) tells where each key was written, so
an error can name `file:line`, and catches a key written twice in one mapping, which
`safe_load` would silently resolve to the last value. The values are constructed from the same
tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from mf_models import safe_yaml

from mf_train.errors import ConfigFileNotFoundError, TrainConfigError, YamlSyntaxError, one_line
from mf_train.run_yaml.typed import join


def read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Return (mapping, key path -> "file:line") for one YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileNotFoundError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise TrainConfigError(
            f"config path {path} is a directory; expected a .yaml file") from None
    except UnicodeDecodeError as exc:
        raise TrainConfigError(f"{path}: not UTF-8 text ({one_line(exc)})") from None
    try:
        node = safe_yaml.compose(text, str(path))
        data = safe_yaml.construct(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = one_line(exc.problem or exc.context or "cannot parse")
        raise YamlSyntaxError(f"{path}{line}: malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"{path}: malformed YAML: {one_line(exc)}") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise TrainConfigError(
            f"{path}: a run YAML is a mapping of keys, but this file holds a "
            f"{type(data).__name__}")
    origins: dict[str, str] = {}
    _walk(node, "", path, origins)
    return data, origins


def _walk(node: yaml.Node, prefix: str, path: Path, origins: dict[str, str]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key == "<<":  # a YAML merge key: its keys belong here unless written here too
                merged: dict[str, str] = {}
                sources = (value_node.value if isinstance(value_node, yaml.SequenceNode)
                           else [value_node])
                for source in sources:
                    _walk(source, prefix, path, merged)
                for merged_path, origin in merged.items():
                    origins.setdefault(merged_path, origin)
                continue
            full = join(prefix, key)
            if key in seen:
                raise TrainConfigError(
                    f"{path}:{line}: key '{full}' is written twice in one mapping "
                    f"(first on line {seen[key]}); keep one")
            seen[key] = line
            origins[full] = f"{path}:{line}"
            _walk(value_node, full, path, origins)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            origins.setdefault(join(prefix, index), f"{path}:{item.start_mark.line + 1}")
            _walk(item, join(prefix, index), path, origins)
