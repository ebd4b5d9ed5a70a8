"""Processors: what turns a model's raw inputs into its arrays, text and images together.

`CLIPProcessor` pairs a CLIP tokenizer with a CLIP image processor; `AutoProcessor` returns
what a directory or a model name needs: a CLIPProcessor, an image processor alone, or a
tokenizer alone (as Hugging Face's `AutoProcessor` does).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mf_tokenize.auto import AutoTokenizer
from mf_tokenize.base import PreTrainedTokenizer
from mf_tokenize.errors import TokenizerConfigError
from mf_tokenize.image_processing import (
    IMAGE_PRESETS,
    PREPROCESSOR_CONFIG,
    PROCESSOR_CONFIG,
    AutoImageProcessor,
    ImageProcessor,
    read_image_settings,
)


class CLIPProcessor:
    """`processor(text=..., images=...)` -> input_ids, attention_mask and pixel_values."""

    processor_class = "CLIPProcessor"

    def __init__(self, image_processor: ImageProcessor, tokenizer: PreTrainedTokenizer):
        self.image_processor = image_processor
        self.tokenizer = tokenizer

    def __call__(self, text: str | list[str] | None = None, images: Any = None,
                 return_tensors: str | None = "np", **tokenizer_kwargs: Any) -> dict[str, Any]:
        if text is None and images is None:
            raise TokenizerConfigError("give text=, images= or both")
        out: dict[str, Any] = {}
        if text is not None:
            out.update(self.tokenizer(text, return_tensors=return_tensors, **tokenizer_kwargs))
        if images is not None:
            out.update(self.image_processor(images, return_tensors=return_tensors))
        return out

    def decode(self, *args: Any, **kwargs: Any) -> str:
        return self.tokenizer.decode(*args, **kwargs)

    def batch_decode(self, *args: Any, **kwargs: Any) -> list[str]:
        return self.tokenizer.batch_decode(*args, **kwargs)

    def save_pretrained(self, directory: str | os.PathLike) -> list[Path]:
        """The tokenizer's files and preprocessor_config.json (naming this processor class, as
        transformers 4 writes it, which transformers 5 also reads)."""
        written = self.tokenizer.save_pretrained(directory)
        written.append(self.image_processor.save_pretrained(
            directory, processor_class=self.processor_class))
        return written

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike) -> CLIPProcessor:
        return cls(AutoImageProcessor.from_pretrained(name_or_path),
                   AutoTokenizer.from_pretrained(name_or_path))


class AutoProcessor:
    """`AutoProcessor.from_pretrained("clip_vit_b_32" | "vit_base_p16" | directory)`."""

    def __init__(self) -> None:
        raise TypeError("use AutoProcessor.from_pretrained(name_or_path)")

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike):
        path = Path(name_or_path).expanduser()
        if path.is_dir():
            has_images = any((path / n).is_file() for n in (PREPROCESSOR_CONFIG, PROCESSOR_CONFIG))
            if not has_images:
                return AutoTokenizer.from_pretrained(path)
            if _names_clip(path):
                return CLIPProcessor.from_pretrained(path)
            return AutoImageProcessor.from_pretrained(path)
        name = str(name_or_path)
        if name.startswith("clip_") and name in IMAGE_PRESETS:
            return CLIPProcessor.from_pretrained(name)
        if name in IMAGE_PRESETS:
            return AutoImageProcessor.from_pretrained(name)
        return AutoTokenizer.from_pretrained(name_or_path)


def _names_clip(directory: Path) -> bool:
    """A CLIP processor directory: its saved settings name CLIPProcessor, or its image
    processor is CLIP's and a tokenizer is there too."""
    import json

    for name in (PROCESSOR_CONFIG, PREPROCESSOR_CONFIG):
        file = directory / name
        if file.is_file():
            try:
                if json.loads(file.read_text()).get("processor_class") == "CLIPProcessor":
                    return True
            except (OSError, ValueError, AttributeError):
                pass
    kind = str(read_image_settings(directory).get("image_processor_type", ""))
    has_tokenizer = any((directory / n).is_file() for n in ("vocab.json", "tokenizer.json"))
    return kind.startswith("CLIP") and has_tokenizer
