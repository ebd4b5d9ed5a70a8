"""Text generation on mf-models: GenerationConfig, generate(), streamers, pipeline().

    from mf_generate import GenerationConfig, TextStreamer, generate, pipeline
    ids = generate(model, [[1, 15, 27]], max_new_tokens=32)        # or model.generate(...)
    pipe = pipeline("text_generation", model="gpt2", max_length=50)

`model.generate(...)` on every mf_models causal LM calls `generate` here, found through this
package's entry point (group `mf_models.generate`), so no import is needed for it. The config,
errors and streamers import no MindSpore; `generate` and `pipeline` load it on use.
"""

from importlib import import_module
from importlib.metadata import version as _version

from mf_generate.config import GenerationConfig
from mf_generate.errors import GenerateConfigError, GenerateError, UnsupportedTaskError
from mf_generate.streamers import BaseStreamer, TextIteratorStreamer, TextStreamer

__version__ = _version("mf-generate")

_LAZY = {
    "generate": "mf_generate.generation",
    "GenerateOutput": "mf_generate.generation",
    "pipeline": "mf_generate.pipelines",
    "TextGenerationPipeline": "mf_generate.pipelines",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mf_generate' has no attribute {name!r}")


__all__ = [
    "GenerationConfig", "GenerateError", "GenerateConfigError", "UnsupportedTaskError",
    "BaseStreamer", "TextStreamer", "TextIteratorStreamer", *_LAZY,
]
