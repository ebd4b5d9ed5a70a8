"""The base class of every tokenizer family: call, pad, truncate, decode, save and load.

It follows the Hugging Face / MindFormers conventions so code written for them reads the same:
``tok(texts, padding="longest", truncation=True, max_length=..., return_tensors="np")`` gives a
dict with ``input_ids`` and ``attention_mask`` (and ``token_type_ids`` where the family has
them); special tokens are attributes (``tok.pad_token``, ``tok.pad_token_id``); added and special
tokens found in the text are matched before the model sees it.

A family implements a handful of hooks (``_encode_chunk``, ``_lookup_tables`` or the lookups
it feeds, ``_decode_tokens`` ...) and says how special tokens frame a sequence
(``build_inputs_with_special_tokens``). Nothing here imports MindSpore: ``return_tensors="ms"``
imports it inside the call.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mf_tokenize import _files, batching, presets
from mf_tokenize.errors import TokenizerConfigError, TokenizerError, TokenizerInputError
from mf_tokenize.tokens import (
    SPECIAL_TOKEN_ROLES,
    AddedToken,
    BatchEncoding,
    as_id_list,
    check_text,
    clean_up_tokenization,
)

# What Hugging Face writes as model_max_length when a tokenizer has no limit.
NO_MAX_LENGTH = int(1e30)

TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"



class PreTrainedTokenizer:
    """Base of every mf tokenizer. Subclasses fill in the hooks marked ``Family hook``."""

    #: role -> file name of the vocabulary files this family reads and writes
    vocab_files: ClassVar[dict[str, str]] = {}
    model_input_names: ClassVar[tuple[str, ...]] = ("input_ids", "attention_mask")
    padding_side: str = "right"
    truncation_side: str = "right"
    #: whether special and added tokens written in the text are matched as tokens
    match_added_tokens_in_text: ClassVar[bool] = True

    def __init__(
        self,
        *,
        bos_token: str | AddedToken | None = None,
        eos_token: str | AddedToken | None = None,
        unk_token: str | AddedToken | None = None,
        sep_token: str | AddedToken | None = None,
        pad_token: str | AddedToken | None = None,
        cls_token: str | AddedToken | None = None,
        mask_token: str | AddedToken | None = None,
        additional_special_tokens: Sequence[str | AddedToken] | None = None,
        added_tokens: dict[int, AddedToken] | None = None,
        padding_side: str | None = None,
        truncation_side: str | None = None,
        model_max_length: int | None = None,
        clean_up_tokenization_spaces: bool = False,
        split_special_tokens: bool = False,
        name_or_path: str = "",
    ):
        self._added: dict[int, AddedToken] = {}
        self._added_ids: dict[str, int] = {}
        self._split_pattern: re.Pattern[str] | None = None
        self._special: dict[str, str | None] = dict.fromkeys(SPECIAL_TOKEN_ROLES)
        self._additional_special: list[str] = []
        for token_id, token in sorted((added_tokens or {}).items()):
            self._set_added(int(token_id), AddedToken.from_json(token))
        roles = dict(
            bos_token=bos_token, eos_token=eos_token, unk_token=unk_token, sep_token=sep_token,
            pad_token=pad_token, cls_token=cls_token, mask_token=mask_token,
        )
        for role, token in roles.items():
            if token is not None:
                self._set_special(role, token)
        for token in additional_special_tokens or ():
            self._add_additional_special(token)
        if padding_side is not None:
            self.padding_side = padding_side
        if truncation_side is not None:
            self.truncation_side = truncation_side
        for name in ("padding_side", "truncation_side"):
            if getattr(self, name) not in ("left", "right"):
                raise TokenizerConfigError(
                    f"{name}={getattr(self, name)!r}; allowed: 'left' or 'right'"
                )
        self.model_max_length = NO_MAX_LENGTH if model_max_length is None else int(model_max_length)
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        self.split_special_tokens = bool(split_special_tokens)
        self.name_or_path = name_or_path

    # ------------------------------------------------------------------ family hooks
    def _encode_chunk(self, text: str, at_start: bool) -> list[int]:
        """Family hook: model ids of text that holds no added token.

        ``at_start`` says whether the chunk begins the input (SentencePiece families add their
        dummy prefix there only, in non-legacy mode).
        """
        raise NotImplementedError

    def _tokenize_chunk(self, text: str, at_start: bool) -> list[str]:
        """Family hook: model tokens of text that holds no added token."""
        return [self._id_to_token_strict(i) for i in self._encode_chunk(text, at_start)]

    def _lookup_tables(self) -> tuple[dict[str, int], dict[int, str]]:
        """Family hook: the model vocabulary as token -> id and id -> token dicts.

        A family whose vocabulary is such a pair (the BPE and WordPiece ones) writes only this;
        the SentencePiece families override the four lookups below instead.
        """
        raise NotImplementedError

    def _model_token_to_id(self, token: str) -> int | None:
        """Id of a token of the model vocabulary, None if absent."""
        return self._lookup_tables()[0].get(token)

    def _model_id_to_token(self, index: int) -> str | None:
        """Token of a model id, None if out of range."""
        return self._lookup_tables()[1].get(index)

    def _decode_tokens(self, tokens: list[str]) -> str:
        """Family hook: text of a list of tokens (added tokens appear as their content)."""
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        """Size of the model vocabulary, without the added tokens (as in Hugging Face)."""
        return len(self._lookup_tables()[0])

    def _model_vocab(self) -> dict[str, int]:
        return self._lookup_tables()[0]

    def _vocabulary_files(self) -> dict[str, bytes]:
        """Family hook: file name -> content of the vocabulary files to save."""
        raise NotImplementedError

    def _config_extras(self) -> dict[str, Any]:
        """Family hook: family options written to tokenizer_config.json."""
        return {}

    @classmethod
    def _load(cls, directory: Path, **kwargs: Any) -> PreTrainedTokenizer:
        """Family hook: read the vocabulary files in ``directory`` and build the tokenizer."""
        raise NotImplementedError

    def build_inputs_with_special_tokens(
        self, ids: list[int], pair_ids: list[int] | None = None
    ) -> list[int]:
        """Frame one sequence (or a pair) with the family's special tokens."""
        return ids + (pair_ids or [])

    def create_token_type_ids_from_sequences(
        self, ids: list[int], pair_ids: list[int] | None = None
    ) -> list[int]:
        """Segment ids of the framed sequence (all 0 unless the family says otherwise)."""
        framed = self.build_inputs_with_special_tokens(ids, pair_ids)
        return [0] * len(framed)

    # ------------------------------------------------------------------ special tokens
    def _set_added(self, token_id: int, token: AddedToken) -> None:
        old = self._added.get(token_id)
        if old is not None and self._added_ids.get(old.content) == token_id:
            del self._added_ids[old.content]
        self._added[token_id] = token
        self._added_ids[token.content] = token_id
        self._split_pattern = None

    def _register(self, token: str | AddedToken, special: bool) -> int:
        """Make ``token`` an added token (matched in text); return its id."""
        token = AddedToken.from_json(token, special=special)
        if not token.content:
            raise TokenizerConfigError("an added token cannot be the empty string")
        if token.content in self._added_ids:
            token_id = self._added_ids[token.content]
            old = self._added[token_id]
            if special and not old.special:
                self._set_added(token_id, AddedToken(**{**old.to_json(), "special": True}))
            return token_id
        token_id = self._model_token_to_id(token.content)
        if token_id is None:
            token_id = len(self)
        self._set_added(token_id, token)
        return token_id

    def _set_special(self, role: str, token: str | AddedToken | None) -> None:
        if token is None:
            self._special[role] = None
            return
        token = AddedToken.from_json(token, special=True)
        self._register(token, special=True)
        self._special[role] = token.content

    def _add_additional_special(self, token: str | AddedToken) -> None:
        token = AddedToken.from_json(token, special=True)
        self._register(token, special=True)
        if token.content not in self._additional_special:
            self._additional_special.append(token.content)

    def add_tokens(self, tokens: str | AddedToken | Sequence[str | AddedToken],
                   special_tokens: bool = False) -> int:
        """Add tokens matched in text before the model sees it; returns how many are new."""
        if isinstance(tokens, (str, AddedToken)):
            tokens = [tokens]
        before = len(self)
        for token in tokens:
            self._register(token, special=special_tokens)
        return len(self) - before

    def add_special_tokens(self, tokens: dict[str, Any]) -> int:
        """Set special tokens by role (``{"pad_token": "<pad>"}``); returns how many are new."""
        before = len(self)
        for role, value in tokens.items():
            if role in ("additional_special_tokens", "extra_special_tokens"):
                for token in value:
                    self._add_additional_special(token)
            elif role in SPECIAL_TOKEN_ROLES:
                self._set_special(role, value)
            else:
                raise TokenizerConfigError(
                    f"unknown special token role {role!r}; allowed: "
                    + ", ".join(SPECIAL_TOKEN_ROLES) + ", additional_special_tokens"
                )
        return len(self) - before

    @property
    def additional_special_tokens(self) -> list[str]:
        return list(self._additional_special)

    @property
    def special_tokens_map(self) -> dict[str, Any]:
        out: dict[str, Any] = {r: t for r, t in self._special.items() if t is not None}
        if self._additional_special:
            out["additional_special_tokens"] = list(self._additional_special)
        return out

    @property
    def all_special_tokens(self) -> list[str]:
        seen: dict[str, None] = {}
        for token in [*self._special.values(), *self._additional_special]:
            if token is not None:
                seen[token] = None
        for token in self._added.values():
            if token.special:
                seen[token.content] = None
        return list(seen)

    @property
    def all_special_ids(self) -> list[int]:
        return [self._added_ids[t] for t in self.all_special_tokens]

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        return dict(sorted(self._added.items()))

    def __len__(self) -> int:
        return max([self.vocab_size - 1, *self._added]) + 1

    def get_vocab(self) -> dict[str, int]:
        vocab = dict(self._model_vocab())
        for token_id, token in self._added.items():
            vocab[token.content] = token_id
        return vocab

    # ------------------------------------------------------------------ tokens <-> ids
    def _token_to_id(self, token: str) -> int | None:
        token_id = self._added_ids.get(token)
        return token_id if token_id is not None else self._model_token_to_id(token)

    def _id_to_token_strict(self, index: int) -> str:
        added = self._added.get(index)
        if added is not None:
            return added.content
        token = self._model_id_to_token(index) if index >= 0 else None
        if token is None:
            raise TokenizerInputError(
                f"token id {index} is outside the vocabulary (0 .. {len(self) - 1})"
            )
        return token

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int] | None:
        """Ids of tokens; a token not in the vocabulary maps to ``unk_token_id``."""
        if isinstance(tokens, str):
            token_id = self._token_to_id(tokens)
            return self.unk_token_id if token_id is None else token_id
        return [self.convert_tokens_to_ids(check_text(t, "a token")) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int],
                              skip_special_tokens: bool = False) -> str | list[str]:
        if isinstance(ids, (int, np.integer)):
            return self._id_to_token_strict(int(ids))
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._id_to_token_strict(i) for i in as_id_list(ids) if i not in special]

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        return self._decode_tokens(list(tokens))

    # ------------------------------------------------------------------ encoding
    def _added_token_pattern(self) -> re.Pattern[str] | None:
        if self._split_pattern is None and self._added:
            # Longest first, so that at any position the longest added token wins
            # (tokenizers matches added tokens leftmost-longest).
            contents = sorted({t.content for t in self._added.values()}, key=len, reverse=True)
            self._split_pattern = re.compile("|".join(re.escape(c) for c in contents))
        return self._split_pattern

    def _split_on_added_tokens(self, text: str) -> list[tuple[str, int, int | None]]:
        """Split text into (chunk, start offset, added-token id or None) pieces."""
        pattern = self._added_token_pattern()
        if pattern is None or self.split_special_tokens or not self.match_added_tokens_in_text:
            return [(text, 0, None)]
        pieces: list[tuple[str, int, int | None]] = []
        start = 0
        for match in pattern.finditer(text):
            token_id = self._added_ids[match.group()]
            token = self._added[token_id]
            chunk = text[start:match.start()]
            if token.lstrip:
                chunk = chunk.rstrip()
            pieces.append((chunk, start, None))
            pieces.append((match.group(), match.start(), token_id))
            start = match.end()
            if token.rstrip:
                while start < len(text) and text[start].isspace():
                    start += 1
        pieces.append((text[start:], start, None))
        return [p for p in pieces if p[2] is not None or p[0]]

    def _encode_text(self, text: str) -> list[int]:
        ids: list[int] = []
        for chunk, start, token_id in self._split_on_added_tokens(text):
            if token_id is not None:
                ids.append(token_id)
            else:
                ids.extend(self._encode_chunk(chunk, start == 0))
        return ids

    def tokenize(self, text: str) -> list[str]:
        """Tokens of ``text`` (no special tokens added around it)."""
        check_text(text, "text")
        tokens: list[str] = []
        for chunk, start, token_id in self._split_on_added_tokens(text):
            if token_id is not None:
                tokens.append(chunk)
            else:
                tokens.extend(self._tokenize_chunk(chunk, start == 0))
        return tokens

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return len(self.build_inputs_with_special_tokens([], [] if pair else None))

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        add_special_tokens: bool = True,
        truncation: bool | str | None = None,
        max_length: int | None = None,
    ) -> list[int]:
        """Token ids of one text (or a pair), framed with special tokens."""
        return self(
            text, text_pair, add_special_tokens=add_special_tokens, truncation=truncation,
            max_length=max_length, return_attention_mask=False, return_token_type_ids=False,
        )["input_ids"]

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool | None = None,
        return_token_type_ids: bool | None = None,
    ) -> BatchEncoding:
        """Tokenize a text or a batch of texts (optionally with pairs) for a model."""
        batched = isinstance(text, (list, tuple))
        texts = list(text) if batched else [text]
        if text_pair is None:
            pairs: list[str | None] = [None] * len(texts)
        elif batched:
            if not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(texts):
                raise TokenizerInputError(
                    f"text_pair must be a list as long as text ({len(texts)}), got "
                    f"{type(text_pair).__name__}"
                    + (f" of length {len(text_pair)}" if isinstance(text_pair, (list, tuple))
                       else "")
                )
            pairs = list(text_pair)
        else:
            # As transformers does: an empty pair beside a single text means no pair.
            pairs = [text_pair or None]
        for i, (a, b) in enumerate(zip(texts, pairs, strict=True)):
            where = f"text[{i}]" if batched else "text"
            check_text(a, where)
            if b is not None:
                check_text(b, where.replace("text", "text_pair"))

        padding_strategy = batching.padding_strategy(padding)
        truncation_strategy = batching.truncation_strategy(truncation, max_length)
        if truncation_strategy != "do_not_truncate" or padding_strategy == "max_length":
            max_length = self._resolve_max_length(max_length, truncation_strategy,
                                                  padding_strategy)
        want_mask = ("attention_mask" in self.model_input_names
                     if return_attention_mask is None else return_attention_mask)
        want_types = ("token_type_ids" in self.model_input_names
                      if return_token_type_ids is None else return_token_type_ids)

        rows = [
            self._prepare_for_model(
                self._encode_text(a), None if b is None else self._encode_text(b),
                add_special_tokens, truncation_strategy, max_length,
            )
            for a, b in zip(texts, pairs, strict=True)
        ]
        input_ids = [r[0] for r in rows]
        token_types = [r[1] for r in rows]
        masks = [[1] * len(ids) for ids in input_ids]

        if padding_strategy != "do_not_pad":
            target = (max_length if padding_strategy == "max_length"
                      else max((len(ids) for ids in input_ids), default=0))
            if pad_to_multiple_of:
                target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
            side = padding_side or self.padding_side
            if side not in ("left", "right"):
                raise TokenizerConfigError(f"padding_side={side!r}; allowed: 'left' or 'right'")
            if any(len(ids) < target for ids in input_ids) and self.pad_token_id is None:
                raise TokenizerConfigError(
                    f"padding needs a pad token and {type(self).__name__} has none; "
                    "set tok.pad_token (for example tok.pad_token = tok.eos_token)"
                )
            input_ids = [batching.pad(ids, target, self.pad_token_id, side) for ids in input_ids]
            masks = [batching.pad(m, target, 0, side) for m in masks]
            token_types = [batching.pad(t, target, 0, side) for t in token_types]

        out = BatchEncoding(input_ids=input_ids)
        if want_types:
            out["token_type_ids"] = token_types
        if want_mask:
            out["attention_mask"] = masks
        if not batched:
            for key in out:
                out[key] = out[key][0]
        if return_tensors is not None:
            out = batching.to_tensors(out, return_tensors, batched)
        return out

    def _resolve_max_length(self, max_length: int | None, truncation: str, padding: str) -> int:
        if max_length is None:
            if self.model_max_length >= NO_MAX_LENGTH:
                needs = "padding='max_length'" if padding == "max_length" else "truncation"
                raise TokenizerConfigError(
                    f"{needs} needs max_length, and {type(self).__name__} has no "
                    "model_max_length to fall back on; pass max_length=N"
                )
            return self.model_max_length
        if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)):
            raise TokenizerConfigError(f"max_length={max_length!r}; allowed: an int >= 0")
        if max_length < 0:
            raise TokenizerConfigError(f"max_length={max_length}; allowed: an int >= 0")
        return int(max_length)

    def _prepare_for_model(
        self,
        ids: list[int],
        pair_ids: list[int] | None,
        add_special_tokens: bool,
        truncation: str,
        max_length: int | None,
    ) -> tuple[list[int], list[int]]:
        if truncation != "do_not_truncate" and max_length is not None:
            n_special = self.num_special_tokens_to_add(pair_ids is not None) \
                if add_special_tokens else 0
            if max_length < n_special:
                framed = self.convert_ids_to_tokens(self.build_inputs_with_special_tokens(
                    [], None if pair_ids is None else []))
                raise TokenizerConfigError(
                    f"max_length={max_length} is smaller than the {n_special} special tokens "
                    f"{type(self).__name__} adds ({' '.join(framed)})"
                )
            ids, pair_ids = batching.truncate(ids, pair_ids, max_length - n_special,
                                              truncation, self.truncation_side)
        if add_special_tokens:
            return (self.build_inputs_with_special_tokens(ids, pair_ids),
                    self.create_token_type_ids_from_sequences(ids, pair_ids))
        joined = ids + (pair_ids or [])
        return joined, [0] * len(ids) + [1] * len(pair_ids or [])

    # ------------------------------------------------------------------ decoding
    def decode(self, ids: Any, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool | None = None) -> str:
        """Text of a sequence of ids (a list, a numpy array or a MindSpore tensor)."""
        id_list = as_id_list(ids)
        if skip_special_tokens:
            special = set(self.all_special_ids)
            id_list = [i for i in id_list if i not in special]
        text = self._decode_ids(id_list)
        cleanup = (self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None
                   else clean_up_tokenization_spaces)
        return clean_up_tokenization(text) if cleanup else text

    def _decode_ids(self, ids: list[int]) -> str:
        """Text of ids (special ones already removed if asked); families may override."""
        return self._decode_tokens([self._id_to_token_strict(i) for i in ids])

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None) -> list[str]:
        if hasattr(sequences, "asnumpy"):
            sequences = sequences.asnumpy()
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces)
                for s in sequences]

    # ------------------------------------------------------------------ files
    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "tokenizer_class": type(self).__name__,
            "added_tokens_decoder": {
                str(i): t.to_json() for i, t in sorted(self._added.items())
            },
        }
        config.update({role: token for role, token in self._special.items()})
        if self._additional_special:
            config["additional_special_tokens"] = list(self._additional_special)
        config.update(
            padding_side=self.padding_side,
            truncation_side=self.truncation_side,
            model_max_length=self.model_max_length,
            clean_up_tokenization_spaces=self.clean_up_tokenization_spaces,
        )
        config.update(self._config_extras())
        return config

    def save_pretrained(self, save_directory: str | Path) -> list[Path]:
        """Write the vocabulary files, tokenizer_config.json and special_tokens_map.json."""
        files = self._vocabulary_files()
        with _files.AtomicDirectoryWriter(save_directory) as writer:
            written = [writer.write_bytes(name, data) for name, data in files.items()]
            written.append(writer.write_json(TOKENIZER_CONFIG_FILE, self._config()))
            written.append(writer.write_json(SPECIAL_TOKENS_MAP_FILE, self.special_tokens_map))
        return written

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, **kwargs: Any) -> PreTrainedTokenizer:
        """Load from a directory of tokenizer files, or from a preset name (see ``presets``)."""
        if cls is PreTrainedTokenizer:
            from mf_tokenize.auto import AutoTokenizer  # noqa: PLC0415 - avoids a cycle

            return AutoTokenizer.from_pretrained(name_or_path, **kwargs)
        directory, preset = presets.resolve(name_or_path)
        settings = dict(preset.settings) if preset else {}
        if preset and cls is not PreTrainedTokenizer and preset.tokenizer_class != cls.__name__:
            raise TokenizerConfigError(
                f"preset {preset.name!r} is a {preset.tokenizer_class}, not a {cls.__name__}; "
                f"load it with {preset.tokenizer_class} or AutoTokenizer"
            )
        settings.update(read_settings(directory))
        settings.update(kwargs)
        settings.setdefault("name_or_path", str(name_or_path))
        return cls._load(directory, **cls._known_kwargs(settings))

    @classmethod
    def _known_kwargs(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """Keep the settings this class accepts; tokenizer configs carry many others."""
        accepted: set[str] = set()
        for klass in cls.__mro__:
            if "__init__" in klass.__dict__:
                for name, param in inspect.signature(klass.__dict__["__init__"]).parameters.items():
                    # Options only: the vocabulary itself (vocab, merges, model) comes from
                    # the files, never from a config key that happens to share its name.
                    if param.kind is param.KEYWORD_ONLY and name != "source":
                        accepted.add(name)
        return {k: v for k, v in settings.items() if k in accepted}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name_or_path={self.name_or_path!r}, "
                f"vocab_size={self.vocab_size}, added={len(self._added)}, "
                f"padding_side={self.padding_side!r})")


def _role_properties(role: str) -> tuple[property, property]:
    def get_token(self: PreTrainedTokenizer) -> str | None:
        return self._special[role]

    def set_token(self: PreTrainedTokenizer, value: str | AddedToken | None) -> None:
        self._set_special(role, value)

    def get_id(self: PreTrainedTokenizer) -> int | None:
        token = self._special[role]
        return None if token is None else self._added_ids[token]

    def set_id(self: PreTrainedTokenizer, value: int | None) -> None:
        self._set_special(role, None if value is None else self._id_to_token_strict(int(value)))

    return (property(get_token, set_token, doc=f"The {role.replace('_', ' ')} (or None)."),
            property(get_id, set_id, doc=f"The id of the {role.replace('_', ' ')} (or None)."))


# bos_token / bos_token_id, eos_token / eos_token_id, ...: one pair of properties per role.
for _role in SPECIAL_TOKEN_ROLES:
    _token_property, _id_property = _role_properties(_role)
    setattr(PreTrainedTokenizer, _role, _token_property)
    setattr(PreTrainedTokenizer, f"{_role}_id", _id_property)


def read_settings(directory: Path) -> dict[str, Any]:
    """Settings from tokenizer_config.json and special_tokens_map.json, as constructor kwargs."""
    settings: dict[str, Any] = {}
    config_path = directory / TOKENIZER_CONFIG_FILE
    if config_path.is_file():
        config = _files.read_json(config_path, TOKENIZER_CONFIG_FILE)
        if not isinstance(config, dict):
            raise TokenizerConfigError(f"{config_path} must hold a JSON object")
        settings.update(config)
    map_path = directory / SPECIAL_TOKENS_MAP_FILE
    if map_path.is_file():
        special = _files.read_json(map_path, SPECIAL_TOKENS_MAP_FILE)
        if isinstance(special, dict):
            for key, value in special.items():
                settings.setdefault(key, value)
    decoder = settings.pop("added_tokens_decoder", None) or {}
    try:
        settings["added_tokens"] = {
            int(i): AddedToken.from_json(t) for i, t in decoder.items()
        }
    except (ValueError, AttributeError, TokenizerError):
        raise TokenizerConfigError(
            f"{config_path}: added_tokens_decoder must map ids to tokens, got {decoder!r:.80}"
        ) from None
    extra = settings.pop("extra_special_tokens", None)
    additional = list(settings.get("additional_special_tokens") or [])
    if isinstance(extra, dict):
        extra = list(extra.values())
    for token in extra or []:
        if token not in additional:
            additional.append(token)
    if additional:
        settings["additional_special_tokens"] = additional
    for role in SPECIAL_TOKEN_ROLES:
        if isinstance(settings.get(role), dict):
            settings[role] = AddedToken.from_json(settings[role])
    return settings
