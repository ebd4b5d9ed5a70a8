"""`generate(model, input_ids, ...)`: the decoding loop over mf-models' step API.

The model owns the math (`new_cache`, `step_function`, `prefill_positions`, `next_positions`);
this module owns the loop: left-pad the prompts, prefill once, then one-token steps over the
static KV cache (or, with use_past=False, the compiled full recompute over a fixed window),
choosing each token on the host (`processors`). Compiled step functions are kept per model and
shape bucket (`buckets`), so another prompt length or another call does not recompile.
"""

from __future__ import annotations

import dataclasses
import time
import weakref
from collections import OrderedDict
from typing import Any

import numpy as np

from mf_generate import buckets, processors
from mf_generate.config import GenerationConfig
from mf_generate.errors import GenerateConfigError

# Cache buckets kept per model: each holds a (batch, kv_heads, length, head_dim) buffer per
# layer for keys and values (LLaMA-7B, batch 8, 2048 slots: 8.6 GB), so they are bounded by
# count and bytes; the least recently used goes first, the one in use always stays.
MAX_CACHED_BUCKETS = 4
MAX_CACHED_BYTES = 2 * 2**30


@dataclasses.dataclass
class GenerateOutput:
    """What `generate(..., return_dict=True)` returns.

    sequences: (B, prompt + new) int32, the left-padded prompt then the new tokens, `fill_id`
        after a row's EOS. attention_mask: 1 where `sequences` holds a real token (prompt and
        generated, EOS included). prompt_length: the prompt columns of `sequences`.
    Timings (seconds; the first call of a new bucket includes its compile): prefill_s, the
    prompt pass (time to first token); decode_s, the steps after it; new_tokens, the steps run.
    """

    sequences: np.ndarray
    attention_mask: np.ndarray
    prompt_length: int
    new_tokens: int
    prefill_s: float
    decode_s: float

    def new_token_ids(self, row: int) -> np.ndarray:
        """The tokens row `row` generated, EOS included, padding after it dropped."""
        tail = self.sequences[row, self.prompt_length:]
        return tail[self.attention_mask[row, self.prompt_length:].astype(bool)]


def generate(model, input_ids, generation_config: GenerationConfig | None = None,
             streamer=None, *, attention_mask=None, return_dict: bool = False,
             **overrides: Any):
    """Continue each prompt; returns the token ids (B, prompt + new), prompt included.

    input_ids: one prompt (list of ints or 1-D array), a batch as a list of lists of unequal
        lengths, or a (B, T) array / Tensor with an optional `attention_mask` (1 = real token;
        padding on either side is re-packed to the left).
    generation_config: a `GenerationConfig`; default: `from_model_config(model.config)`.
        Keyword overrides (max_new_tokens=..., top_k=..., seed=...) apply on top.
    streamer: an object with put(ids) and end() (TextStreamer, TextIteratorStreamer); batch 1.
    """
    config = generation_config or GenerationConfig.from_model_config(model.config)
    if overrides:
        config = config.replace(**overrides)
    ids, mask = pack_prompts(input_ids, attention_mask, config.fill_id)
    batch, length = ids.shape
    max_positions = model.config.max_positions
    if streamer is not None and batch != 1:
        raise GenerateConfigError(f"a streamer needs batch size 1, got {batch} prompts")
    seq2seq = getattr(model, "is_encoder_decoder", False)
    if seq2seq:
        # The prompt is the encoder's input; the decoder starts from decoder_start_token_id
        # and max_length counts it (transformers' rule).
        check_encoder_length(length, max_positions)
        new = config.new_tokens_for(1)
        check_lengths(1, new, max_positions)
    else:
        check_lengths(length, None, max_positions)
        new = config.new_tokens_for(length)
        check_lengths(length, new, max_positions)
    model.check_token_ids(ids)
    loop = (_Seq2SeqLoop if seq2seq else _DecodeLoop)(model, config, ids, mask, new)
    try:
        if streamer is not None:
            streamer.put(loop.ids[0, loop.mask[0].astype(bool)])  # a decoder's prompt
        result = loop.run(streamer)
    finally:
        if streamer is not None:
            streamer.end()
    return result if return_dict else result.sequences


def check_lengths(prompt_tokens: int, new_tokens: int | None, max_positions: int) -> None:
    """One-line errors for a prompt (plus new tokens) the model's positions cannot hold."""
    if prompt_tokens >= max_positions:
        raise GenerateConfigError(
            f"the prompt has {prompt_tokens} tokens, longer than the model's positions allow: "
            f"seq_length({max_positions}) leaves no room for a new token")
    if new_tokens is not None and prompt_tokens + new_tokens > max_positions:
        raise GenerateConfigError(
            f"prompt({prompt_tokens}) + max_new_tokens({new_tokens}) = "
            f"{prompt_tokens + new_tokens} tokens exceeds the model's seq_length({max_positions})")


def check_encoder_length(tokens: int, max_positions: int) -> None:
    if tokens > max_positions:
        raise GenerateConfigError(f"the input has {tokens} tokens, more than the model's "
                                  f"seq_length({max_positions}) allows")


def pack_prompts(input_ids, attention_mask, fill_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Prompts as a left-padded (B, T) int32 array and its mask, T the longest prompt."""
    if hasattr(input_ids, "asnumpy"):
        input_ids = input_ids.asnumpy()
    if attention_mask is not None and hasattr(attention_mask, "asnumpy"):
        attention_mask = attention_mask.asnumpy()
    rows = _rows(input_ids)
    if attention_mask is not None:
        mask_rows = _rows(attention_mask)
        if [len(r) for r in mask_rows] != [len(r) for r in rows]:
            raise GenerateConfigError(
                f"attention_mask rows of lengths {[len(r) for r in mask_rows]} must match the "
                f"input_ids rows of lengths {[len(r) for r in rows]}")
        masks = [np.asarray(m) != 0 for m in mask_rows]
        if len({len(r) for r in rows}) == 1 and _left_padded(np.stack(masks)) and all(
                m.any() for m in masks):
            # Already in the shape we need: keep the prompt exactly as given (pads included).
            return np.stack(rows).astype(np.int32), np.stack(masks).astype(np.int32)
        rows = [row[m] for row, m in zip(rows, masks, strict=True)]
    for i, row in enumerate(rows):
        if len(row) == 0:
            raise GenerateConfigError(f"prompt {i} is empty: every prompt needs at least one "
                                      "token")
    length = max(len(r) for r in rows)
    ids = np.full((len(rows), length), fill_id, np.int32)
    mask = np.zeros((len(rows), length), np.int32)
    for i, row in enumerate(rows):
        ids[i, length - len(row):] = row
        mask[i, length - len(row):] = 1
    return ids, mask


def _left_padded(masks: np.ndarray) -> bool:
    """Whether every row of a boolean (B, T) mask is zeros then ones."""
    return bool((np.diff(masks.astype(np.int8), axis=1) >= 0).all())


def _rows(values) -> list[np.ndarray]:
    if isinstance(values, np.ndarray):
        if values.ndim == 1:
            values = values[None]
        if values.ndim != 2:
            raise GenerateConfigError(f"input_ids must be 1-D or 2-D, got shape {values.shape}")
        rows = list(values)
    elif isinstance(values, (list, tuple)):
        if not values:
            raise GenerateConfigError("input_ids is empty: give at least one prompt")
        rows = list(values) if isinstance(values[0], (list, tuple, np.ndarray)) else [values]
    else:
        raise GenerateConfigError(f"input_ids must be a list, a numpy array or a Tensor, got "
                                  f"{type(values).__name__}")
    out = []
    for i, row in enumerate(rows):
        array = np.asarray(row)
        if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
            raise GenerateConfigError(f"prompt {i} must be a flat list of integer token ids, "
                                      f"got {str(row)[:60]}")
        out.append(array.astype(np.int64))
    return out


class _DecodeLoop:
    """One generate() call: bucketed shapes, prefill, steps, stopping, the output."""

    def __init__(self, model, config: GenerationConfig, ids: np.ndarray, mask: np.ndarray,
                 new: int):
        self.model = model
        self.config = config
        self.ids, self.mask, self.new = ids, mask, new
        self.batch, self.length = ids.shape
        self.rows = buckets.batch_bucket(self.batch)
        self.eos = np.array(config.eos_ids, np.int64)
        self.rng = np.random.default_rng(config.seed)
        self.seen = None
        if config.repetition_penalty != 1.0:
            self.seen = np.zeros((self.batch, model.config.vocab_size), bool)
            for i in range(self.batch):
                self.seen[i, ids[i, mask[i].astype(bool)]] = True

    def run(self, streamer) -> GenerateOutput:
        tokens = np.full((self.batch, self.new), self.config.fill_id, np.int32)
        produced = np.zeros((self.batch, self.new), np.int32)
        done = np.zeros(self.batch, bool)
        steps = self._cached_steps() if self.config.use_past else self._recompute_steps()
        start = time.perf_counter()
        logits = next(steps)
        prefill_s = time.perf_counter() - start
        start = time.perf_counter()
        count = 0
        for n in range(self.new):
            token = self._next_token(logits)
            token = np.where(done, self.config.fill_id, token).astype(np.int32)
            tokens[:, n] = token
            produced[:, n] = ~done
            count = n + 1
            if streamer is not None:
                streamer.put(token[:1])
            if self.seen is not None:
                self.seen[np.arange(self.batch), token] |= ~done
            done |= np.isin(token, self.eos)
            if done.all() or n == self.new - 1:
                break
            logits = steps.send(self._bucket_tokens(token))
        steps.close()
        decode_s = time.perf_counter() - start
        return GenerateOutput(
            sequences=np.concatenate([self.ids, tokens[:, :count]], axis=1),
            attention_mask=np.concatenate([self.mask, produced[:, :count]], axis=1),
            prompt_length=self.length, new_tokens=count, prefill_s=prefill_s,
            decode_s=decode_s)

    def _next_token(self, logits: np.ndarray) -> np.ndarray:
        scores = processors.process(logits[: self.batch], self.seen, self.config)
        return processors.choose(scores, self.config, self.rng)

    # ---- shapes: padded rows repeat the last real row; padded prompt columns are masked -------
    def _bucket_rows(self, length: int, ids=None, mask=None) -> tuple[np.ndarray, np.ndarray]:
        """The prompts (or `ids` / `mask`) left-padded to `length` columns and repeated to the
        batch bucket."""
        ids = self.ids if ids is None else ids
        mask = self.mask if mask is None else mask
        extra_cols = length - ids.shape[1]
        ids = np.pad(ids, ((0, 0), (extra_cols, 0)), constant_values=self.config.fill_id)
        mask = np.pad(mask, ((0, 0), (extra_cols, 0)))
        extra_rows = self.rows - self.batch
        ids = np.concatenate([ids, np.repeat(ids[-1:], extra_rows, 0)])
        mask = np.concatenate([mask, np.repeat(mask[-1:], extra_rows, 0)])
        return ids.astype(np.int32), mask.astype(np.int32)

    def _bucket_tokens(self, token: np.ndarray) -> np.ndarray:
        full = np.concatenate([token, np.repeat(token[-1:], self.rows - self.batch)])
        return full.astype(np.int32)[:, None]  # (rows, 1)

    # ---- the two ways to get logits: generators that take the next token, yield (rows, V) ----
    def _cached_steps(self):
        """Prefill into the static cache, then one-token steps: slot `padded + n` for token n."""
        model = self.model
        cache, step = step_bucket(model, self.rows, self.length + self.new)
        padded = buckets.prompt_bucket(self.length, cache.max_length - self.new)
        ids, mask = self._bucket_rows(padded)
        key_mask = np.zeros((self.rows, cache.max_length), np.int32)
        key_mask[:, :padded] = mask
        positions = model.prefill_positions(mask, ids)
        token = yield _last_logits(step(ids, positions, 0, key_mask))
        slot = padded
        while True:
            positions = model.next_positions(positions)
            key_mask[:, slot] = 1
            token = yield _last_logits(step(token, positions, slot, key_mask))
            slot += 1

    def _recompute_steps(self):
        """Every step runs the whole sequence, right-aligned in a fixed window so the compiled
        full forward sees one shape; positions follow the same rule as the cached path."""
        model = self.model
        window = recompute_window(model, self.rows, self.length + self.new)
        ids, mask = self._bucket_rows(window)
        pad = window - self.length
        positions = model.prefill_positions(mask[:, pad:], ids[:, pad:])
        positions = np.pad(positions, [(0, 0)] * (positions.ndim - 1) + [(pad, 0)])
        step = recompute_step(model)
        while True:
            token = yield _last_logits(step(ids, positions, 0, mask))
            nxt = model.next_positions(positions)
            # Drop one left pad column, append the new token (B, W) / positions (B, ..., W).
            ids = np.concatenate([ids[:, 1:], token], axis=1)
            mask = np.concatenate([mask[:, 1:], np.ones_like(token)], axis=1)
            positions = np.concatenate([positions[..., 1:], nxt], axis=-1)


class _Seq2SeqLoop(_DecodeLoop):
    """An encoder-decoder's generate(): the prompts are the encoder's input (encoded once per
    call, their cross-attention keys and values written into the cache), the decoder's
    sequence starts from decoder_start_token_id and is what comes out."""

    def __init__(self, model, config: GenerationConfig, ids: np.ndarray, mask: np.ndarray,
                 new: int):
        start = config.decoder_start_token_id
        if start is None:
            start = model.config.decoder_start_token_id
        batch = ids.shape[0]
        super().__init__(model, config, np.full((batch, 1), start, np.int64),
                         np.ones((batch, 1), np.int64), new)
        self.encoder_ids, self.encoder_mask = ids, mask
        # Encoder length bucket: the prefill rule (powers of two from 16) within the model.
        self.encoder_length = buckets.prompt_bucket(ids.shape[1], model.config.max_positions)

    def _encoder_rows(self) -> tuple[np.ndarray, np.ndarray]:
        return self._bucket_rows(self.encoder_length, self.encoder_ids, self.encoder_mask)

    def _cached_steps(self):
        """Encode once, then one decoder token per step at slots 0, 1, ..."""
        cache, step = step_bucket(self.model, self.rows, 1 + self.new, self.encoder_length)
        encoder_ids, encoder_mask = self._encoder_rows()
        self.model.encode_function(cache)(encoder_ids, encoder_mask)
        key_mask = np.zeros((self.rows, cache.max_length), np.int32)
        token, _ = self._bucket_rows(1)
        slot = 0
        while True:
            key_mask[:, slot] = 1
            token = yield _last_logits(step(token, slot, key_mask, encoder_mask))
            slot += 1

    def _recompute_steps(self):
        """The whole decoder sequence every step, right-aligned in a fixed window (its
        positions only enter as differences, so the left padding changes nothing)."""
        window = recompute_window(self.model, self.rows, 1 + self.new)
        encoder_ids, encoder_mask = self._encoder_rows()
        ids, mask = self._bucket_rows(window)
        step = recompute_step(self.model)
        while True:
            token = yield _last_logits(step(encoder_ids, encoder_mask, ids, mask))
            ids = np.concatenate([ids[:, 1:], token], axis=1)
            mask = np.concatenate([mask[:, 1:], np.ones_like(token)], axis=1)


def _last_logits(logits) -> np.ndarray:
    return logits.asnumpy()[:, -1, :]  # (rows, V) float32


# ---- compiled step functions kept per model ---------------------------------------------------
# model -> OrderedDict[(rows, cache length)] -> (cache, step); weak, so a dropped model frees
# its caches. Kept outside the model so they never show up among its parameters.
_CACHED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_RECOMPUTE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_WINDOWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def step_bucket(model, rows: int, needed: int, encoder_length: int | None = None):
    """The (cache, step function) for `rows` x at least `needed` slots: a cached bucket when
    one fits (`buckets.reusable`), else a new one of `buckets.cache_bucket(needed)` slots.
    An encoder-decoder's bucket also has its encoder length (cross-attention keys)."""
    table: OrderedDict = _CACHED.setdefault(model, OrderedDict())
    fitting = [key for key in table if key[0] == rows and buckets.reusable(key[1], needed)
               and key[2:] == ((encoder_length,) if encoder_length else ())]
    if fitting:
        key = min(fitting, key=lambda k: k[1])
        table.move_to_end(key)
        return table[key]
    length = buckets.cache_bucket(needed, model.config.max_positions)
    if encoder_length is None:
        cache, key = model.new_cache(rows, length), (rows, length)
    else:
        cache = model.new_cache(rows, length, encoder_length)
        key = (rows, length, encoder_length)
    entry = (cache, model.step_function(cache, last_only=True))
    table[key] = entry
    while len(table) > 1 and (len(table) > MAX_CACHED_BUCKETS or sum(
            cache.nbytes for cache, _ in table.values()) > MAX_CACHED_BYTES):
        table.popitem(last=False)
    return entry


def recompute_window(model, rows: int, needed: int) -> int:
    """The window length of the full recompute: a length already compiled for `rows` when one
    fits, else `buckets.cache_bucket(needed)`."""
    known: set = _WINDOWS.setdefault(model, set())
    fitting = [w for r, w in known if r == rows and buckets.reusable(w, needed)]
    if fitting:
        return min(fitting)
    window = buckets.cache_bucket(needed, model.config.max_positions)
    known.add((rows, window))
    return window


def recompute_step(model):
    step = _RECOMPUTE.get(model)
    if step is None:
        step = _RECOMPUTE[model] = model.step_function(None, last_only=True)
    return step


def compiled_buckets(model) -> dict[str, list[tuple[int, int]]]:
    """The (rows, length) buckets kept for `model`: 'cache' and 'recompute' (for tests/tools)."""
    return {"cache": list(_CACHED.get(model, {})),
            "recompute": sorted(_WINDOWS.get(model, set()))}
