"""YAML reading with bounds: PyYAML's safe loader, refusing documents that would explode.

`yaml.safe_load` never runs code, but aliases let a few hundred bytes stand for billions of
nodes (the "billion laughs" shape: nine lists of nine aliases of the list before). PyYAML
itself shares the aliased objects, so loading is cheap; whatever walks or copies the result
afterwards (key origins, deep merges, JSON) pays the full expansion: 5.8 GB and a traceback,
measured on a run YAML (issue 10). So the node tree is composed first, its expanded size
counted in one pass over the distinct nodes, and the document refused past a bound before
anything is constructed. A self-referencing alias and nesting past `MAX_DEPTH` levels (PyYAML
recurses per level and took seconds to hit Python's recursion limit) are refused too. The one
YAML loader of mf-models and the libraries above it.
"""

from __future__ import annotations

from typing import Any

import yaml

from mf_models.errors import ModelConfigError

# Nodes that aliases may add to a document. A real run YAML has a few hundred nodes in all and
# uses aliases for a handful of shared sections; a billion-laughs file of 9 levels adds 387M.
MAX_ALIAS_NODES = 100_000
# Nesting levels: MindFormers' run YAMLs have fewer than 10.
MAX_DEPTH = 100


class YamlBoundError(ModelConfigError):
    """A YAML document refused before expansion: aliases past the bound, or a cycle."""


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing nesting past MAX_DEPTH as it composes (before recursing)."""

    def __init__(self, stream: str, source: str):
        super().__init__(stream)
        self.source = source
        self.depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlBoundError(f"{self.source}:{mark.line + 1}: YAML nested deeper than "
                                     f"{MAX_DEPTH} levels; refusing it")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def expanded_size(root: yaml.Node, source: str) -> tuple[int, int]:
    """(nodes once every alias is expanded, distinct nodes), in time linear in the latter.

    Iterative, so a deep document cannot overflow the stack here; raises on a cycle.
    """
    cap = 1 << 62  # sizes saturate here: no bignums for a bomb of thousands of levels
    sizes: dict[int, int] = {}
    ancestors: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            ancestors.discard(key)
            sizes[key] = min(cap, 1 + sum(sizes[id(child)] for child in _children(node)))
            continue
        if key in sizes:
            continue
        ancestors.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in ancestors:
                mark = child.start_mark
                raise YamlBoundError(f"{source}:{mark.line + 1}: a YAML alias refers to a node "
                                     "that contains it (a recursive document); refusing it")
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)], len(sizes)


def compose(text: str, source: str) -> yaml.Node | None:
    """The node tree of one YAML document (nothing constructed), checked against the bounds.

    Syntax errors are PyYAML's `yaml.YAMLError`, for the caller to word with its own context.
    """
    loader = _BoundedLoader(text, source)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    if node is not None:
        expanded, distinct = expanded_size(node, source)
        if expanded - distinct > MAX_ALIAS_NODES:
            raise YamlBoundError(
                f"{source}: YAML aliases would expand this document by more than "
                f"{MAX_ALIAS_NODES:,} nodes (a 'billion laughs' file?); refusing it")
    return node


def construct(node: yaml.Node | None) -> Any:
    """The Python value of a node tree from `compose` (the safe loader's types only)."""
    if node is None:
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def safe_load(text: str, source: str = "<yaml>") -> Any:
    """`yaml.safe_load(text)` within the bounds above; `source` names the text in errors."""
    return construct(compose(text, source))
