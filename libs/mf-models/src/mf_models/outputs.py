"""Model outputs with Hugging Face's field names (`out.logits`, `out.logits_per_image` ...).

An output is a tuple of the fields that are set, in the field order (as Hugging Face's
`ModelOutput.to_tuple()`), so `loss, logits = model(pixels, labels=y)` and `model(pixels)[0]`
work as well as `out.logits` and `out["logits"]`. A compiled caller (`ms.jit`) gets the plain
tuple from `construct`; `__call__` names it. No MindSpore here.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ModelOutput(tuple):
    fields: ClassVar[tuple[str, ...]] = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> ModelOutput:
        if len(args) > len(cls.fields):
            raise TypeError(f"{cls.__name__} takes at most {len(cls.fields)} values")
        values = dict(zip(cls.fields, args, strict=False))
        unknown = set(kwargs) - set(cls.fields)
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}; fields: "
                            f"{', '.join(cls.fields)}")
        values.update(kwargs)
        named = {f: values.get(f) for f in cls.fields}
        out = super().__new__(cls, tuple(v for v in named.values() if v is not None))
        out._named = named
        return out

    @classmethod
    def from_tuple(cls, values: tuple, present: tuple[str, ...]) -> ModelOutput:
        """Name the tuple `construct` returned: `present` lists its fields in order."""
        return cls(**dict(zip(present, values, strict=True)))

    def __getattr__(self, name: str) -> Any:
        named = self.__dict__.get("_named", {})
        if name in named:
            return named[name]
        raise AttributeError(f"{type(self).__name__} has no field {name!r}")

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            if self._named.get(key) is None:
                raise KeyError(key)
            return self._named[key]
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return [f for f, v in self._named.items() if v is not None]

    def items(self) -> list[tuple[str, Any]]:
        return [(f, self._named[f]) for f in self.keys()]

    def to_tuple(self) -> tuple:
        return tuple(self)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={_short(v)}" for k, v in self.items())
        return f"{type(self).__name__}({inner})"


def _short(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return f"<{type(value).__name__} shape={tuple(shape)}>" if shape is not None else repr(value)


class ImageClassifierOutput(ModelOutput):
    fields = ("loss", "logits")


class ViTMAEForPreTrainingOutput(ModelOutput):
    fields = ("loss", "logits", "mask", "ids_restore")


class CLIPOutput(ModelOutput):
    fields = ("loss", "logits_per_image", "logits_per_text", "text_embeds", "image_embeds")
