"""Where `CausalLM.generate` finds its implementation (no MindSpore here).

Layers point down: mf_models may not import mf_generate. mf-generate declares its `generate`
as an entry point (group `mf_models.generate` in libs/mf-generate/pyproject.toml), and the first
`model.generate(...)` looks it up in the installed packages' metadata: so it works whenever
mf-generate is installed, whatever was imported first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mf_models.errors import ModelError

ENTRY_POINT_GROUP = "mf_models.generate"

_generate: Callable[..., Any] | None = None


def registered_generate() -> Callable[..., Any]:
    """`fn(model, input_ids, generation_config, streamer, **overrides)` from mf-generate."""
    global _generate
    if _generate is None:
        from importlib.metadata import entry_points

        found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
        if not found:
            raise ModelError("model.generate() is provided by mf-generate, which is not "
                             "installed: pip install mf-generate")
        _generate = found[0].load()
    return _generate


class GenerationMixin:
    """`model.generate(...)` for every model that generates (causal LMs, T5)."""

    def generate(self, input_ids, generation_config=None, streamer=None, **overrides):
        """Token ids from a prompt (decoders: prompt + new; encoder-decoders: the decoder's
        sequence); see `mf_generate.generate`."""
        return registered_generate()(self, input_ids, generation_config=generation_config,
                                     streamer=streamer, **overrides)
