"""Train tokenizers from local text: a byte-level BPE (GPT-2 files) and a SentencePiece model
(LLaMA style), each from an iterator of strings with a chosen vocabulary size."""

from __future__ import annotations

import heapq
import io
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import regex

from mf_tokenize import bpe
from mf_tokenize.errors import TokenizerConfigError, TokenizerInputError
from mf_tokenize.gpt2 import GPT2Tokenizer
from mf_tokenize.llama import LlamaTokenizer


def _check_texts(texts: Iterable[str]) -> Iterator[str]:
    if isinstance(texts, str):
        raise TokenizerInputError("texts must be an iterable of strings, not one str")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TokenizerInputError(
                f"texts[{i}] must be a str, got {type(text).__name__} {text!r:.40}"
            )
        yield text


def train_bpe(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    special_tokens: tuple[str, ...] = ("<|endoftext|>",),
    min_frequency: int = 2,
) -> GPT2Tokenizer:
    """Train a GPT-2 style byte-level BPE; save vocab.json + merges.txt if ``out_dir`` is given.

    The vocabulary holds the 256 byte symbols, then one token per merge, then
    ``special_tokens`` (GPT-2 keeps ``<|endoftext|>`` last). Merging stops at ``vocab_size``
    or when no pair occurs ``min_frequency`` times. Ties between equally frequent pairs go to
    the pair of older tokens, so the result does not depend on dict order.
    """
    n_special = len(special_tokens)
    if not isinstance(vocab_size, int) or vocab_size < 256 + n_special:
        raise TokenizerConfigError(
            f"vocab_size={vocab_size!r} is too small: 256 byte symbols + {n_special} special "
            f"tokens = {256 + n_special} is the least"
        )
    pattern = regex.compile(bpe.GPT2_PATTERN)
    word_counts: Counter[str] = Counter()
    for text in _check_texts(texts):
        word_counts.update(pattern.findall(text))

    # Ids 0..255 are the byte symbols in GPT-2's order (printable bytes first).
    token_of: list[str] = list(bpe.bytes_to_unicode().values())
    id_of = {s: i for i, s in enumerate(token_of)}
    words = [[id_of[c] for c in bpe.to_byte_level(w)] for w in word_counts]
    counts = list(word_counts.values())

    pair_count: defaultdict[tuple[int, int], int] = defaultdict(int)
    where: defaultdict[tuple[int, int], set[int]] = defaultdict(set)
    for index, (word, count) in enumerate(zip(words, counts, strict=True)):
        for pair in zip(word, word[1:], strict=False):
            pair_count[pair] += count
            where[pair].add(index)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)

    merges: list[tuple[str, str]] = []
    target_merges = vocab_size - n_special - 256
    while len(merges) < target_merges and heap:
        negative, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -negative:
            continue  # stale entry; the current count was pushed again
        if -negative < min_frequency:
            break
        new_id = len(token_of)
        token_of.append(token_of[pair[0]] + token_of[pair[1]])
        merges.append((token_of[pair[0]], token_of[pair[1]]))
        delta: defaultdict[tuple[int, int], int] = defaultdict(int)
        for index in where.pop(pair):
            words[index] = _merge_word(words[index], pair, new_id, counts[index], delta, where,
                                       index)
        del pair_count[pair]
        delta.pop(pair, None)
        for p, change in delta.items():
            if change:
                count = pair_count.get(p, 0) + change
                if count > 0:
                    pair_count[p] = count
                    heapq.heappush(heap, (-count, p))
                else:
                    pair_count.pop(p, None)

    vocab = {token: i for i, token in enumerate(token_of)}
    for token in special_tokens:
        if token in vocab:
            raise TokenizerConfigError(f"special token {token!r} is also a learned token")
        vocab[token] = len(vocab)
    first = special_tokens[0] if special_tokens else None
    tokenizer = GPT2Tokenizer(vocab, merges, unk_token=first, bos_token=first, eos_token=first,
                              additional_special_tokens=list(special_tokens[1:]))
    if out_dir is not None:
        tokenizer.save_pretrained(out_dir)
    return tokenizer


def _merge_word(word: list[int], pair: tuple[int, int], new_id: int, count: int,
                delta: defaultdict[tuple[int, int], int],
                where: defaultdict[tuple[int, int], set[int]], index: int) -> list[int]:
    """Merge every occurrence of ``pair`` in one word, left to right, recording how the
    counts of the neighbouring pairs change (only the neighbours of a merge change)."""
    left, right = pair
    out: list[int] = []
    i, n = 0, len(word)
    while i < n:
        if i + 1 < n and word[i] == left and word[i + 1] == right:
            if out:  # (previous, left) becomes (previous, new)
                delta[(out[-1], left)] -= count
                delta[(out[-1], new_id)] += count
                where[(out[-1], new_id)].add(index)
            if i + 2 < n:  # (right, next) becomes (new, next)
                delta[(right, word[i + 2])] -= count
                delta[(new_id, word[i + 2])] += count
                where[(new_id, word[i + 2])].add(index)
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def _sentences(texts: Iterable[str], max_bytes: int) -> Iterator[str]:
    """Each text is one sentence; a text longer than ``max_bytes`` is cut at newlines."""
    for text in _check_texts(texts):
        if len(text.encode("utf-8")) <= max_bytes:
            yield text
            continue
        chunk: list[str] = []
        size = 0
        for line in text.splitlines(keepends=True):
            n = len(line.encode("utf-8"))
            if chunk and size + n > max_bytes:
                yield "".join(chunk)
                chunk, size = [], 0
            chunk.append(line)
            size += n
        if chunk:
            yield "".join(chunk)


def train_sentencepiece(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    model_type: str = "bpe",
    character_coverage: float = 0.9995,
    user_defined_symbols: tuple[str, ...] = (),
    max_sentence_length: int = 16384,
    num_threads: int | None = None,
) -> LlamaTokenizer:
    """Train a LLaMA-style SentencePiece model; save tokenizer.model (+ configs) to ``out_dir``.

    LLaMA's settings (Touvron et al. 2023, and its published tokenizer.model): byte fallback,
    no normalization, whitespace kept as is, digits split, ids ``<unk>`` 0, ``<s>`` 1,
    ``</s>`` 2 and no pad. ``model_type`` is ``"bpe"`` (LLaMA) or ``"unigram"``.
    """
    import sentencepiece as spm  # noqa: PLC0415

    if model_type not in ("bpe", "unigram"):
        raise TokenizerConfigError(f"model_type={model_type!r}; allowed: 'bpe' or 'unigram'")
    if not isinstance(vocab_size, int) or vocab_size < 260:
        raise TokenizerConfigError(
            f"vocab_size={vocab_size!r} is too small: 3 special + 256 byte pieces + at least "
            "1 learned piece = 260 is the least"
        )
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=_sentences(texts, max_sentence_length),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            byte_fallback=True,
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            add_dummy_prefix=True,
            split_digits=True,
            allow_whitespace_only_pieces=True,
            character_coverage=character_coverage,
            user_defined_symbols=list(user_defined_symbols),
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
            max_sentence_length=max_sentence_length,
            num_threads=num_threads or os.cpu_count() or 1,
            minloglevel=2,
        )
    except RuntimeError as exc:
        raise TokenizerConfigError(
            _explain_sentencepiece_failure(str(exc), vocab_size, character_coverage)
        ) from None
    tokenizer = LlamaTokenizer(model.getvalue(), source="trained SentencePiece model")
    if out_dir is not None:
        tokenizer.save_pretrained(Path(out_dir))
    return tokenizer


def _explain_sentencepiece_failure(message: str, vocab_size: int, coverage: float) -> str:
    """One line for the usual ways SentencePiece training fails."""
    chars = regex.search(r"smaller than required_chars\. \d+ vs (\d+)", message)
    if chars:
        return (f"vocab_size={vocab_size} is smaller than the {chars.group(1)} characters and "
                f"meta pieces character_coverage={coverage} keeps; raise vocab_size or lower "
                "character_coverage")
    too_high = regex.search(r"Vocabulary size too high \((\d+)\)", message)
    if too_high:
        return (f"vocab_size={vocab_size} is more than this text can fill; use a smaller "
                "vocab_size or more text")
    last = message.strip().splitlines()[-1] if message.strip() else "unknown error"
    return f"SentencePiece training with vocab_size={vocab_size} failed: {last}"
