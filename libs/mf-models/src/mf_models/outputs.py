"""Model outputs with Hugging Face's field names: `out.logits`, `out["logits"]`, `out[0]`.

A compiled graph returns plain tuples (a graph cannot build Python objects); the model's
`__call__` and its compiled `forward_function` wrap them in one of these. As in transformers,
fields left at None are skipped by iteration, `keys()` and integer indexing, so `out[0]` is the
loss when labels were given and the logits otherwise. No MindSpore import here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any


@dataclasses.dataclass
class ModelOutput(Mapping):
    def _present(self) -> list[tuple[str, Any]]:
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not None]

    def __getitem__(self, key: str | int) -> Any:
        if isinstance(key, int):
            return self._present()[key][1]
        value = dict(self._present()).get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(name for name, _ in self._present())

    def __len__(self) -> int:
        return len(self._present())

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(value for _, value in self._present())

    @classmethod
    def from_tuple(cls, values: tuple, with_loss: bool) -> ModelOutput:
        """The output of a graph's tuple, in this class's field order; without a loss the
        first field (loss) is None."""
        names = [f.name for f in dataclasses.fields(cls)]
        if "loss" in names and not with_loss:
            names.remove("loss")
        return cls(**dict(zip(names, values, strict=True)))


@dataclasses.dataclass
class BaseModelOutputWithPooling(ModelOutput):
    last_hidden_state: Any = None
    pooler_output: Any = None


@dataclasses.dataclass
class MaskedLMOutput(ModelOutput):
    loss: Any = None
    logits: Any = None


@dataclasses.dataclass
class SequenceClassifierOutput(ModelOutput):
    loss: Any = None
    logits: Any = None


@dataclasses.dataclass
class TokenClassifierOutput(ModelOutput):
    loss: Any = None
    logits: Any = None


@dataclasses.dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    loss: Any = None
    start_logits: Any = None
    end_logits: Any = None


@dataclasses.dataclass
class Seq2SeqLMOutput(ModelOutput):
    loss: Any = None
    logits: Any = None
    encoder_last_hidden_state: Any = None


# The image families (issue 14, vision half).
@dataclasses.dataclass
class ImageClassifierOutput(ModelOutput):
    loss: Any = None
    logits: Any = None


@dataclasses.dataclass
class ViTMAEForPreTrainingOutput(ModelOutput):
    loss: Any = None
    logits: Any = None
    mask: Any = None
    ids_restore: Any = None


@dataclasses.dataclass
class CLIPOutput(ModelOutput):
    loss: Any = None
    logits_per_image: Any = None
    logits_per_text: Any = None
    text_embeds: Any = None
    image_embeds: Any = None
