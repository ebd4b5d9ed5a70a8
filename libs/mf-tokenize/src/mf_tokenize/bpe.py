"""Byte-pair encoding: the merge loop, byte-level alphabet and vocab/merges files.

Shared by the byte-level families (GPT-2, BLOOM) and CLIP. Semantics follow Hugging Face
``tokenizers``' BPE model: the pair with the lowest merge rank is merged first, leftmost first
among equal ranks; a symbol missing from the vocabulary becomes the unknown token if there is
one and is dropped otherwise.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from mf_tokenize import _files
from mf_tokenize.errors import CorruptVocabError

# The pre-tokenization pattern of GPT-2 (openai/gpt-2 src/encoder.py), also used by
# tokenizers' ByteLevel pre-tokenizer: contractions, letters, numbers, other symbols, each
# with at most one leading space; whitespace runs keep their last space for the next word.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# Words longer than this (in symbols) use the heap merge, O(n log n) instead of O(n^2).
_HEAP_MERGE_FROM = 48
# Bound on the word cache; cleared when full (a few MB of text has ~1e5 distinct words).
_CACHE_LIMIT = 500_000


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table.

    Printable Latin-1 bytes stand for themselves; the other 68 bytes (controls, space,
    0x7f-0xa0, 0xad) are mapped to U+0100 onwards, so no token holds whitespace.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def to_byte_level(text: str) -> str:
    """Text as byte-level symbols: each UTF-8 byte becomes one printable character.

    Decoding the bytes as Latin-1 gives one character per byte, which ``str.translate`` maps
    in C; far faster than a Python loop over the bytes.
    """
    return text.encode("utf-8").decode("latin-1").translate(bytes_to_unicode())


def byte_level_decode(tokens: Iterable[str], errors: str = "replace") -> str:
    """Text of byte-level tokens, as tokenizers' ByteLevel decoder does it.

    A token whose characters are all byte-level symbols turns into those bytes; any other
    token (an added token such as ``<pad>`` written with other characters) keeps its UTF-8.
    """
    table = unicode_to_bytes()
    out = bytearray()
    for token in tokens:
        try:
            out.extend(table[c] for c in token)
        except KeyError:
            out.extend(token.encode("utf-8"))
    return out.decode("utf-8", errors=errors)


def read_merges_file(path: Path) -> list[tuple[str, str]]:
    """Merges from a ``merges.txt``: an optional ``#version`` line, then ``left right``."""
    merges = []
    for number, line in enumerate(_files.read_text(path, "merges file").split("\n"), 1):
        line = line.rstrip("\r")
        if not line or line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise CorruptVocabError(
                f"merges file {path} line {number}: expected 'left right', got {line[:60]!r}"
            )
        merges.append((parts[0], parts[1]))
    return merges


def read_vocab_json(path: Path) -> dict[str, int]:
    vocab = _files.read_json(path, "vocabulary file")
    if not isinstance(vocab, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in vocab.items()
    ):
        raise CorruptVocabError(f"vocabulary file {path} must map each token to an int id")
    return vocab


def parse_merges(raw: list, source: str) -> list[tuple[str, str]]:
    """Merges from tokenizer.json: ``"left right"`` strings or ``[left, right]`` pairs."""
    merges = []
    for number, item in enumerate(raw):
        if isinstance(item, str):
            parts = item.split(" ")
        elif isinstance(item, list):
            parts = item
        else:
            parts = []
        if len(parts) != 2 or not all(isinstance(p, str) and p for p in parts):
            raise CorruptVocabError(f"{source}: merge {number} is not a pair, got {item!r:.60}")
        merges.append((parts[0], parts[1]))
    return merges


def merges_file_text(merges: list[tuple[str, str]]) -> str:
    return "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)


def vocab_json_text(vocab: dict[str, int]) -> str:
    ordered = dict(sorted(vocab.items(), key=lambda kv: kv[1]))
    return json.dumps(ordered, ensure_ascii=False, indent=2) + "\n"


class BytePairEncoding:
    """The BPE model: a vocabulary, ranked merges and a word cache."""

    def __init__(
        self,
        vocab: dict[str, int],
        merges: list[tuple[str, str]],
        *,
        unk_token: str | None = None,
        end_of_word_suffix: str = "",
        ignore_merges: bool = False,
        source: str = "vocabulary",
    ):
        self.vocab = vocab
        self.merges = merges
        self.unk_token = unk_token
        self.end_of_word_suffix = end_of_word_suffix
        self.ignore_merges = ignore_merges
        self.id_to_token: dict[int, str] = {i: t for t, i in vocab.items()}
        if len(self.id_to_token) != len(vocab):
            raise CorruptVocabError(f"{source}: two tokens share one id")
        self.ranks: dict[tuple[str, str], int] = {}
        for rank, (left, right) in enumerate(merges):
            for part in (left, right, left + right):
                if part not in vocab:
                    raise CorruptVocabError(
                        f"{source}: merge {rank} ({left!r} {right!r}) needs {part!r}, which is "
                        f"not in the vocabulary (the merges do not match the vocab)"
                    )
            self.ranks.setdefault((left, right), rank)
        self.unk_id = None if unk_token is None else vocab.get(unk_token)
        self.cache: dict[str, list[int]] = {}

    def word_ids(self, word: str) -> list[int]:
        """Ids of one pre-tokenized word already written in the model's alphabet."""
        ids = self.cache.get(word)
        if ids is None:
            ids = self._ids_of(self.word_tokens(word))
            if len(self.cache) >= _CACHE_LIMIT:
                self.cache.clear()
            self.cache[word] = ids
        return ids

    def word_tokens(self, word: str) -> list[str]:
        suffix = self.end_of_word_suffix
        if self.ignore_merges and word + suffix in self.vocab:
            return [word + suffix]
        symbols = list(word)
        if suffix and symbols:
            symbols[-1] += suffix
        if len(symbols) < 2:
            return symbols
        if len(symbols) >= _HEAP_MERGE_FROM:
            return _merge_with_heap(symbols, self.ranks)
        return _merge_in_loop(symbols, self.ranks)

    def _ids_of(self, tokens: list[str]) -> list[int]:
        vocab = self.vocab
        ids = []
        for token in tokens:
            token_id = vocab.get(token)
            if token_id is None:
                token_id = self.unk_id
                if token_id is None:  # tokenizers drops what it cannot represent
                    continue
            ids.append(token_id)
        return ids


def _merge_in_loop(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Merge the lowest-ranked pair everywhere, left to right, until no pair has a rank."""
    while len(symbols) > 1:
        best_rank = None
        best = None
        for pair in zip(symbols, symbols[1:], strict=False):
            rank = ranks.get(pair)
            if rank is not None and (best_rank is None or rank < best_rank):
                best_rank, best = rank, pair
        if best is None:
            break
        left, right = best
        merged = left + right
        out = []
        i, n = 0, len(symbols)
        while i < n:
            if i < n - 1 and symbols[i] == left and symbols[i + 1] == right:
                out.append(merged)
                i += 2
            else:
                out.append(symbols[i])
                i += 1
        symbols = out
    return symbols


def _merge_with_heap(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """The same merges for long words: a heap of (rank, position) over a linked list."""
    n = len(symbols)
    nxt = list(range(1, n + 1))
    nxt[-1] = -1
    prev = list(range(-1, n - 1))
    alive = [True] * n
    heap = []
    for i in range(n - 1):
        rank = ranks.get((symbols[i], symbols[i + 1]))
        if rank is not None:
            heap.append((rank, i))
    heapq.heapify(heap)
    while heap:
        rank, i = heapq.heappop(heap)
        j = nxt[i]
        if not alive[i] or j < 0 or ranks.get((symbols[i], symbols[j])) != rank:
            continue  # stale: one side was merged into something else since
        symbols[i] += symbols[j]
        alive[j] = False
        k = nxt[j]
        nxt[i] = k
        if k >= 0:
            prev[k] = i
            rank = ranks.get((symbols[i], symbols[k]))
            if rank is not None:
                heapq.heappush(heap, (rank, i))
        p = prev[i]
        if p >= 0:
            rank = ranks.get((symbols[p], symbols[i]))
            if rank is not None:
                heapq.heappush(heap, (rank, p))
    return [s for s, keep in zip(symbols, alive, strict=True) if keep]
