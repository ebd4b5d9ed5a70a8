"""What every causal LM shares: the step API, the training loss, weights in and out.

A family module subclasses `CausalLM` and writes `forward_step` (single-device math). The rest
is here, once:

* the training forward, `model(input_ids, labels=None, attention_mask=None)` -> (loss, logits);
* the step API for mf-generate: `new_cache(batch, max_length)` and `step_function(cache)`, a
  compiled callable `(input_ids, positions, slot, key_mask) -> logits` over the static cache,
  plus `prefill_positions` / `next_positions`, the family's position rule;
* from `PreTrainedModel`: `from_config`, `from_pretrained`, `save_pretrained`,
  `num_parameters`.
"""

from __future__ import annotations

import numpy as np
from mindspore import Tensor, nn, ops
from mindspore import dtype as mstype

from mf_models.errors import ModelConfigError
from mf_models.generate_seam import GenerationMixin
from mf_models.models.pretrained import PreTrainedModel
from mf_models.modules.kv_cache import KVCache
from mf_models.modules.losses import cross_entropy, token_nll  # token_nll: mf-train's too

__all__ = ["CausalLM", "StepFunction", "token_nll"]


class CausalLM(PreTrainedModel, GenerationMixin):
    """Base of every decoder-only LM. Subclasses set `config_class` and write `forward_step`.
    `generate` (GenerationMixin) runs mf_generate's loop, found through its entry point."""

    def __init__(self, config, seed: int = 0):
        super().__init__(config, seed)
        self.ignore_index = config.ignore_token_id
        # Key/value heads a KV cache holds per layer: this process's share once a
        # model-parallel plan has split the heads (mf_models.parallel.shard_model).
        self.cache_heads = config.kv_heads

    # ---- the family's math ------------------------------------------------------------------
    def forward_step(self, input_ids, positions, cache=None, slot=0, key_mask=None,
                     last_only: bool = False):
        """Logits (B, T or 1, vocab) float32 for tokens (B, T) at `positions` (B, T).

        With a cache the new keys/values go to slots [slot, slot + T) and queries attend over
        all max_length slots allowed by `key_mask` (B, max_length) and causality; without one
        `key_mask` is (B, T). `last_only` applies the LM head to the last position only.
        """
        raise NotImplementedError

    # ---- the cache-free forward in pieces, for pipeline stages --------------------------------
    # A pipeline stage runs some of these; one process running all of them computes exactly
    # forward_step(input_ids, positions, None, 0, key_mask):
    #     x = embed(input_ids, positions); inputs = layer_inputs(positions, key_mask)
    #     for i in range(config.num_layers): x = run_layer(i, x, inputs)
    #     logits = head(x)
    # Families that write them can be split over pipeline stages and model-parallel ranks.
    def embed(self, input_ids, positions):
        """The hidden states (B, T, C) entering layer 0."""
        raise NotImplementedError(f"{type(self).__name__} does not split into pipeline pieces")

    def layer_inputs(self, positions, key_mask):
        """A tuple of what every layer reads besides its input (masks, rotary tables)."""
        raise NotImplementedError(f"{type(self).__name__} does not split into pipeline pieces")

    def run_layer(self, i: int, x, inputs):
        """Layer i on hidden states x (B, T, C), without a cache."""
        raise NotImplementedError(f"{type(self).__name__} does not split into pipeline pieces")

    def head(self, x):
        """Final norm and LM head: logits (B, T, vocab) float32 from the last layer's output."""
        raise NotImplementedError(f"{type(self).__name__} does not split into pipeline pieces")

    @classmethod
    def splits_into_pieces(cls) -> bool:
        """Whether this family writes the pieces above (so it runs model- and pipeline-parallel)."""
        return all(getattr(cls, name) is not getattr(CausalLM, name)
                   for name in ("embed", "layer_inputs", "run_layer", "head"))

    # ---- positions: the family's rule, so GLM's 2-D positions plug into the same loop ---------
    def prefill_positions(self, attention_mask: np.ndarray,
                          input_ids: np.ndarray | None = None) -> np.ndarray:
        """Positions (B, T) int32 of a left-padded prompt: 0 at each row's first real token.

        `input_ids` is for families whose positions depend on the tokens (GLM's [gMASK]); such
        a family returns (B, 2, T) and overrides `next_positions` to match.
        """
        mask = np.asarray(attention_mask, dtype=np.int64)
        return np.clip(np.cumsum(mask, axis=-1) - 1, 0, None).astype(np.int32)

    def next_positions(self, positions: np.ndarray) -> np.ndarray:
        """Positions (B, 1) of the next token, given the positions fed last (B, T)."""
        return (np.asarray(positions)[..., -1:] + 1).astype(np.int32)

    # ---- training forward -------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        # Checked here, not in construct: graph mode cannot raise our exception types, and a
        # compiled caller (mf-train's train step) parses construct and never runs this.
        ids = args[0] if args else kwargs.get("input_ids")
        if ids is not None:
            self.check_token_ids(ids)
        return super().__call__(*args, **kwargs)

    def construct(self, input_ids, labels=None, attention_mask=None):
        """(loss, logits) if labels are given, else logits (B, T, vocab).

        Labels are the targets of the same positions as input_ids (HF convention): logits at t
        predict labels at t + 1; label -100 (config.ignore_token_id) is ignored.
        """
        if attention_mask is None:
            attention_mask = ops.ones_like(input_ids)
        mask = ops.cast(attention_mask, mstype.int32)
        positions = ops.relu(ops.cumsum(mask, -1) - 1)  # (B, T): left padding starts at 0
        logits = self.forward_step(input_ids, positions, None, 0, mask, False)
        if labels is None:
            return logits
        return self.loss(logits, labels), logits

    def loss(self, logits, labels):
        """Mean cross-entropy of logits[:, :-1] against labels[:, 1:], ignoring ignore_index."""
        vocab = logits.shape[-1]
        shifted = logits[:, :-1, :].reshape(-1, vocab)  # (B*(T-1), V)
        targets = labels[:, 1:].reshape(-1)  # (B*(T-1),)
        return cross_entropy(shifted, targets, self.ignore_index)

    # ---- step API -----------------------------------------------------------------------------
    def new_cache(self, batch_size: int, max_length: int | None = None,
                  dtype: str | None = None) -> KVCache:
        """A zeroed cache for one (batch_size, max_length) bucket."""
        cfg = self.config
        max_length = max_length or cfg.max_positions
        if max_length > cfg.max_positions:
            raise ModelConfigError(
                f"max_length({max_length}) is longer than the model's seq_length"
                f"({cfg.max_positions})")
        if batch_size < 1 or max_length < 1:
            raise ModelConfigError(f"batch_size({batch_size}) and max_length({max_length}) "
                                   "must be >= 1")
        return KVCache(cfg.num_layers, batch_size, self.cache_heads, max_length, cfg.head_dim,
                       dtype or cfg.compute_dtype)

    def step_function(self, cache: KVCache | None, last_only: bool = True) -> StepFunction:
        """The compiled step over `cache`: compiles once per input shape (prefill length, 1).

        With `cache=None` it is the compiled full recompute (use_past=False): key_mask is then
        (B, T) and slot must be 0; it compiles once per sequence length. Asking twice for the
        same cache returns the same (already compiled) function.
        """
        # One compiled function per (cache, last_only): asking again must not compile again.
        owner = self if cache is None else cache
        memo = owner.__dict__.setdefault("_step_functions", {})
        key = (id(self), last_only)
        if key not in memo:
            memo[key] = StepFunction(self, cache, last_only)
        return memo[key]

    def check_positions(self, positions: np.ndarray) -> None:
        top = int(np.max(positions)) if np.size(positions) else 0
        if top >= self.config.max_positions:
            raise ModelConfigError(
                f"position {top} is beyond the model's seq_length({self.config.max_positions}); "
                f"prompt plus new tokens must fit in {self.config.max_positions}")



class StepFunction(nn.Cell):
    """`model.forward_step` over one cache, compiled with `ms.jit`.

    Call with numpy or Tensor inputs: input_ids (B, T), positions (B, T), slot (int or int32
    tensor: the first cache slot written), key_mask (B, max_length) with 1 for real tokens.
    A Python int slot is turned into a tensor here, so a new slot never recompiles.
    With no cache it is the compiled full forward over the inputs alone.
    """

    def __init__(self, model: CausalLM, cache: KVCache | None, last_only: bool = True):
        # auto_prefix=False: holding the model must not rename its parameters to "model.*".
        super().__init__(auto_prefix=False)
        import mindspore as ms

        self.model = model
        self.cache = cache
        self.last_only = last_only
        self._compiled = ms.jit(self.construct)

    def construct(self, input_ids, positions, slot, key_mask):
        return self.model.forward_step(input_ids, positions, self.cache, slot, key_mask,
                                       self.last_only)

    def __call__(self, input_ids, positions, slot, key_mask):
        ids = int32_tensor(input_ids)
        pos = int32_tensor(positions)
        mask = int32_tensor(key_mask)
        batch, length = ids.shape[0], ids.shape[-1]
        cache = self.cache
        if cache is None:  # full recompute: every key is one of the inputs
            if mask.shape != ids.shape[:2] or int(slot) != 0:
                raise ModelConfigError(
                    f"without a cache key_mask {tuple(mask.shape)} must match input_ids "
                    f"{tuple(ids.shape)} and slot({int(slot)}) must be 0")
            self.model.check_positions(pos.asnumpy())
            self.model.check_token_ids(ids)
            return self._compiled(ids, pos, Tensor(0, mstype.int32), mask)
        if batch != cache.batch_size or mask.shape != (cache.batch_size, cache.max_length):
            raise ModelConfigError(
                f"input batch {batch} and key_mask {tuple(mask.shape)} must match the cache "
                f"(batch_size={cache.batch_size}, max_length={cache.max_length})")
        start = int(slot)
        if start < 0 or start + length > cache.max_length:
            raise ModelConfigError(
                f"slot({start}) + tokens({length}) = {start + length} exceeds the cache "
                f"max_length({cache.max_length})")
        self.model.check_positions(pos.asnumpy())
        self.model.check_token_ids(ids)
        return self._compiled(ids, pos, Tensor(start, mstype.int32), mask)


def int32_tensor(x) -> Tensor:
    if isinstance(x, Tensor):
        return x if x.dtype == mstype.int32 else x.astype(mstype.int32)
    return Tensor(np.asarray(x, dtype=np.int32))
