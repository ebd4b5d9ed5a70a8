"""Where `CausalLM.generate` finds its implementation (no MindSpore here).

Layers point down: mf_models may not import mf_generate, so mf_generate registers its
`generate` when it is imported, and `model.generate(...)` calls whatever is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mf_models.errors import ModelError

_generate: Callable[..., Any] | None = None


def register_generate(fn: Callable[..., Any]) -> None:
    """Install `fn(model, input_ids, generation_config, streamer, **overrides)`."""
    global _generate
    _generate = fn


def registered_generate() -> Callable[..., Any]:
    if _generate is None:
        raise ModelError("model.generate() is provided by mf-generate: run `import mf_generate` "
                         "first (or call mf_generate.generate(model, ...))")
    return _generate


class GenerationMixin:
    """`model.generate(...)` for every model that generates (causal LMs, T5)."""

    def generate(self, input_ids, generation_config=None, streamer=None, **overrides):
        """Token ids from a prompt (decoders: prompt + new; encoder-decoders: the decoder's
        sequence); see `mf_generate.generate`."""
        return registered_generate()(self, input_ids, generation_config=generation_config,
                                     streamer=streamer, **overrides)
