"""Just enough of the protobuf wire format to read and edit a SentencePiece model file.

SentencePiece models are ``ModelProto`` messages (sentencepiece_model.proto). mf needs two
things from them without depending on protobuf: the normalizer settings, and a copy with
``add_dummy_prefix`` switched off (to encode text that follows a special token without the
leading "▁", as Hugging Face's non-legacy LLaMA tokenizer does).
"""

from __future__ import annotations

from dataclasses import dataclass

# Field numbers from sentencepiece_model.proto.
_MODEL_TRAINER_SPEC = 2
_MODEL_NORMALIZER_SPEC = 3
_NORMALIZER_NAME = 1
_NORMALIZER_ADD_DUMMY_PREFIX = 3
_NORMALIZER_REMOVE_EXTRA_WHITESPACES = 4
_TRAINER_MODEL_TYPE = 3
_TRAINER_BYTE_FALLBACK = 35

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}


class ProtoError(ValueError):
    pass


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ProtoError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ProtoError("varint too long")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def fields(data: bytes) -> list[tuple[int, int, int | bytes, bytes]]:
    """(field number, wire type, value, raw encoded field) for each field of a message."""
    out = []
    pos = 0
    while pos < len(data):
        start = pos
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == _FIXED64:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == _FIXED32:
            value, pos = data[pos:pos + 4], pos + 4
        elif wire == _LENGTH:
            length, pos = _read_varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        else:
            raise ProtoError(f"unsupported wire type {wire}")
        if pos > len(data):
            raise ProtoError("truncated field")
        out.append((number, wire, value, data[start:pos]))
    return out


@dataclass(frozen=True)
class SentencePieceSettings:
    model_type: str
    byte_fallback: bool
    normalizer_name: str
    add_dummy_prefix: bool
    remove_extra_whitespaces: bool


def read_settings(model: bytes) -> SentencePieceSettings:
    trainer: list = []
    normalizer: list = []
    for number, wire, value, _ in fields(model):
        if number == _MODEL_TRAINER_SPEC and wire == _LENGTH:
            trainer = fields(value)
        elif number == _MODEL_NORMALIZER_SPEC and wire == _LENGTH:
            normalizer = fields(value)
    t = {n: v for n, _, v, _ in trainer}
    n = {num: v for num, _, v, _ in normalizer}
    return SentencePieceSettings(
        model_type=MODEL_TYPES.get(t.get(_TRAINER_MODEL_TYPE, 1), "unknown"),
        byte_fallback=bool(t.get(_TRAINER_BYTE_FALLBACK, 0)),
        normalizer_name=n.get(_NORMALIZER_NAME, b"").decode("utf-8", "replace"),
        add_dummy_prefix=bool(n.get(_NORMALIZER_ADD_DUMMY_PREFIX, 1)),
        remove_extra_whitespaces=bool(n.get(_NORMALIZER_REMOVE_EXTRA_WHITESPACES, 1)),
    )


def with_add_dummy_prefix(model: bytes, enabled: bool) -> bytes:
    """A copy of the model whose normalizer has ``add_dummy_prefix`` set to ``enabled``."""
    out = bytearray()
    found = False
    for number, wire, value, raw in fields(model):
        if number == _MODEL_NORMALIZER_SPEC and wire == _LENGTH:
            found = True
            inner = b"".join(r for num, _, _, r in fields(value)
                             if num != _NORMALIZER_ADD_DUMMY_PREFIX)
            inner += _varint(_NORMALIZER_ADD_DUMMY_PREFIX << 3 | _VARINT) + _varint(int(enabled))
            out += _varint(_MODEL_NORMALIZER_SPEC << 3 | _LENGTH) + _varint(len(inner)) + inner
        else:
            out += raw
    if not found:
        inner = _varint(_NORMALIZER_ADD_DUMMY_PREFIX << 3 | _VARINT) + _varint(int(enabled))
        out += _varint(_MODEL_NORMALIZER_SPEC << 3 | _LENGTH) + _varint(len(inner)) + inner
    return bytes(out)
