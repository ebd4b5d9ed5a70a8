"""Text generation on mf-models: GenerationConfig, generate(), streamers, pipeline().

    from mf_generate import GenerationConfig, TextStreamer, generate, pipeline
    ids = generate(model, [[1, 15, 27]], max_new_tokens=32)        # or model.generate(...)
    pipe = pipeline("text_generation", model="gpt2", max_length=50)

Importing this package installs `model.generate(...)` on every mf_models causal LM. The
config, errors and streamers import no MindSpore; `generate` and `pipeline` load it on use.
"""

from importlib import import_module
from importlib.metadata import version as _version

from mf_models.generate_seam import register_generate

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


def _model_generate(model, input_ids, generation_config=None, streamer=None, **overrides):
    from mf_generate.generation import generate

    return generate(model, input_ids, generation_config, streamer, **overrides)


register_generate(_model_generate)

__all__ = [
    "GenerationConfig", "GenerateError", "GenerateConfigError", "UnsupportedTaskError",
    "BaseStreamer", "TextStreamer", "TextIteratorStreamer", *_LAZY,
]
