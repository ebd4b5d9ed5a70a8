"""T5 (Raffel et al. 2020, arXiv:1910.10683): a shared embedding -> an encoder of pre-norm
blocks (RMS LayerNorm, bidirectional self-attention, ReLU MLP) -> a decoder of blocks with
causal self-attention, cross-attention over the encoder output and the MLP -> the LM head,
tied to the shared embedding (its input scaled by hidden_size ** -0.5).

Positions enter only as a learned per-head bias on the attention scores, looked up by the
bucket of the key-minus-query distance (`T5RelativeBias`), computed in each stack's first
block and shared by the others. Attention scores are not scaled by 1/sqrt(d). No biases.

Single-device math in reading order; the math is Hugging Face's `modeling_t5.py`. Parameter
names and shapes are MindFormers' (its t5 convert_weight.py): `t5_model.tfm_encoder.blocks.{i}`
with q/k/v `dense1/2/3` (out, in) and `projection` / MLP (in, out).

The step API for generation (mf-generate drives it):

    cache = model.new_cache(batch, max_length, encoder_length)
    memory = model.encode_function(cache)(input_ids, attention_mask)   # writes cross K/V once
    logits = model.step_function(cache)(decoder_ids, slot, key_mask, attention_mask)

`encode_function` runs the encoder and writes every decoder layer's cross-attention keys and
values into the cache; each step then writes its own self-attention keys and values at slot
`slot` and reads the rest, so a step compiles once per (batch, max_length, encoder_length).
"""

from __future__ import annotations

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore import dtype as mstype

from mf_models.configs.t5 import T5Config
from mf_models.errors import ModelConfigError
from mf_models.generate_seam import GenerationMixin
from mf_models.models.base import int32_tensor
from mf_models.models.pretrained import TaskModel
from mf_models.modules.attention import attend, causal_allowed, keys_allowed, mask_to_bias
from mf_models.modules.kv_cache import KVCache, cache_index, cache_write
from mf_models.modules.layers import (
    DTYPE,
    Embedding,
    MappingMLP,
    RMSNorm,
    linear,
    normal,
    tied_logits,
    tied_table,
)
from mf_models.modules.losses import cross_entropy
from mf_models.outputs import Seq2SeqLMOutput


def _norm(config: T5Config) -> RMSNorm:
    """T5's LayerNorm: scale only, no mean subtraction (RMSNorm), named `gamma`."""
    return RMSNorm(config.hidden_size, config.layer_norm_epsilon, config.param_init_type,
                   config.layernorm_compute_type, param_name="gamma")


class T5RelativeBias(nn.Cell):
    """A learned bias per head for every key-minus-query distance bucket: (1, H, T, S)."""

    def __init__(self, config: T5Config, rng: np.random.Generator, bidirectional: bool):
        super().__init__()
        shape = (config.relative_attention_num_buckets, config.num_heads)
        self.embeddings_table = Parameter(
            normal(shape, config.initializer_range, config.param_init_type, rng),
            name="embeddings_table")
        self.distance = config.relative_attention_max_distance
        # bucket of rel + D for rel in [-D, D]: a constant of the graph, not a weight
        self.bucket_of = Tensor(config.relative_buckets(bidirectional))

    def construct(self, query_positions, key_len: int):
        t = query_positions.shape[-1]
        keys = ops.arange(key_len, dtype=mstype.int32).reshape(1, key_len)
        rel = keys - query_positions.reshape(t, 1)  # (T, S)
        rel = ops.clip(rel, -self.distance, self.distance) + self.distance
        buckets = ops.gather(self.bucket_of, rel, 0)  # (T, S)
        bias = ops.gather(self.embeddings_table, buckets, 0)  # (T, S, H)
        return ops.cast(bias.transpose(2, 0, 1), mstype.float32).reshape(1, -1, t, key_len)


class T5Attention(nn.Cell):
    def __init__(self, config: T5Config, rng: np.random.Generator,
                 relative_bias: bool | None = None):
        """relative_bias: None for no bias table (every block but a stack's first, and
        cross-attention); True / False for a bidirectional / causal one."""
        super().__init__()
        c, inner = config.hidden_size, config.inner_dim
        self.num_heads, self.head_dim = config.num_heads, config.d_kv
        self.dense1 = linear(config, rng, c, inner, bias=False)  # query
        self.dense2 = linear(config, rng, c, inner, bias=False)  # key
        self.dense3 = linear(config, rng, c, inner, bias=False)  # value
        self.projection = linear(config, rng, inner, c, transpose_b=False, bias=False)
        self.bias_generator = (None if relative_bias is None
                               else T5RelativeBias(config, rng, relative_bias))
        self.softmax_dtype = DTYPE[config.softmax_compute_type]

    def heads(self, x):
        b, t, _ = x.shape
        return x.reshape(b, t, self.num_heads, self.head_dim).swapaxes(1, 2)  # (B, H, T, D)

    def keys_values(self, h):
        return self.heads(self.dense2(h)), self.heads(self.dense3(h))  # (B, H, S, D) each

    def construct(self, x, k, v, bias):
        q = self.heads(self.dense1(x))  # (B, H, T, D)
        # No 1/sqrt(D): T5 folds it into the initialisation of q (Mesh TensorFlow).
        # scale positionally: with `scale=1.0` as a keyword, MindSpore 2.10 cannot
        # differentiate a block called in a loop ("MultitypeFuncGraph ... type_type", measured)
        return self.projection(attend(q, k, v, bias, self.softmax_dtype, 1.0))


class T5EncoderBlock(nn.Cell):
    def __init__(self, config: T5Config, rng: np.random.Generator, first: bool):
        super().__init__()
        self.layernorm1 = _norm(config)
        self.attention = T5Attention(config, rng, True if first else None)
        self.layernorm2 = _norm(config)
        self.output = MappingMLP(config, rng, config.feed_forward_proj, bias=False)

    def construct(self, x, bias):
        h = self.layernorm1(x)
        k, v = self.attention.keys_values(h)
        x = x + self.attention(h, k, v, bias)
        return x + self.output(self.layernorm2(x))


class T5DecoderBlock(nn.Cell):
    def __init__(self, config: T5Config, rng: np.random.Generator, first: bool):
        super().__init__()
        self.layernorm1 = _norm(config)
        self.attention = T5Attention(config, rng, False if first else None)
        self.cross_attention_layernorm = _norm(config)
        self.cross_attention = T5Attention(config, rng)
        self.layernorm2 = _norm(config)
        self.output = MappingMLP(config, rng, config.feed_forward_proj, bias=False)

    def construct(self, x, self_bias, cross_k, cross_v, cross_bias, key_buffer, value_buffer,
                  index):
        h = self.layernorm1(x)
        k, v = self.attention.keys_values(h)  # (B, H, T, D)
        if key_buffer is not None:  # the cache's (B, H, S, D), this step written at `index`
            k = cache_write(key_buffer, index, k)
            v = cache_write(value_buffer, index, v)
        x = x + self.attention(h, k, v, self_bias)
        x = x + self.cross_attention(self.cross_attention_layernorm(x), cross_k, cross_v,
                                     cross_bias)
        return x + self.output(self.layernorm2(x))


class T5Stack(nn.Cell):
    def __init__(self, blocks: list[nn.Cell]):
        super().__init__()
        self.blocks = nn.CellList(blocks)


class T5Model(nn.Cell):
    """The shared embedding, both stacks and their final norms (MindFormers' `t5_model`)."""

    def __init__(self, config: T5Config, rng: np.random.Generator):
        super().__init__()
        self.tfm_embedding_lookup = Embedding(config.vocab_size, config.hidden_size,
                                              std=config.initializer_range,
                                              param_dtype=config.param_init_type, rng=rng)
        self.tfm_encoder = T5Stack([T5EncoderBlock(config, rng, i == 0)
                                    for i in range(config.num_layers)])
        self.encoder_layernorm = _norm(config)
        self.tfm_decoder = T5Stack([T5DecoderBlock(config, rng, i == 0)
                                    for i in range(config.num_decoder_layers)])
        self.decoder_layernorm = _norm(config)
        self.compute_dtype = DTYPE[config.compute_dtype]
        self.num_decoder_layers = config.num_decoder_layers

    def encode(self, input_ids, attention_mask, table=None):
        """The encoder's output (B, S, C); positions 0..S-1 whatever the padding (T5 pads on
        the right; masked keys are never attended to)."""
        s = input_ids.shape[1]
        x = ops.cast(self.tfm_embedding_lookup(input_ids, table), self.compute_dtype)
        blocks = self.tfm_encoder.blocks
        positions = ops.arange(s, dtype=mstype.int32)
        bias = blocks[0].attention.bias_generator(positions, s) + mask_to_bias(
            keys_allowed(attention_mask, s))  # (B, H, S, S)
        for block in blocks:
            x = block(x, bias)
        return self.encoder_layernorm(x)

    def cross_keys_values(self, memory):
        """Every decoder layer's cross-attention (k, v) of the encoder output (B, S, C)."""
        return [block.cross_attention.keys_values(memory) for block in self.tfm_decoder.blocks]

    def decode(self, decoder_ids, slot, key_mask, cross, encoder_mask, cache=None, table=None):
        """Decoder output (B, T, C) for tokens at slots [slot, slot + T).

        key_mask (B, S_self) marks the self-attention keys (cache slots, or the T inputs
        without a cache); `cross` is the list of per-layer (k, v) over the encoder output
        whose padding `encoder_mask` (B, S_enc) marks.
        """
        t = decoder_ids.shape[1]
        x = ops.cast(self.tfm_embedding_lookup(decoder_ids, table), self.compute_dtype)
        blocks = self.tfm_decoder.blocks
        s = key_mask.shape[-1]
        positions = ops.arange(t, dtype=mstype.int32) + slot
        self_bias = blocks[0].attention.bias_generator(positions, s) + mask_to_bias(
            causal_allowed(slot, t, s, key_mask))  # (B, H, T, S)
        cross_bias = mask_to_bias(keys_allowed(encoder_mask, t))  # (B, 1, T, S_enc)
        index = None if cache is None else cache_index(cache, slot, t)
        for i in range(self.num_decoder_layers):
            k, v = cross[i]
            if cache is None:
                x = blocks[i](x, self_bias, k, v, cross_bias, None, None, None)
            else:
                x = blocks[i](x, self_bias, k, v, cross_bias, cache.keys[i], cache.values[i],
                              index)
        return self.decoder_layernorm(x)


class Seq2SeqCache:
    """The decoder's self-attention cache (max_length slots) and the cross-attention keys and
    values of one encoder bucket (encoder_length), both preallocated and written in place."""

    def __init__(self, config: T5Config, batch_size: int, max_length: int, encoder_length: int,
                 dtype: str):
        layers, heads, d = config.num_decoder_layers, config.num_heads, config.d_kv
        self.batch_size, self.max_length = batch_size, max_length
        self.encoder_length = encoder_length
        self.self_attention = KVCache(layers, batch_size, heads, max_length, d, dtype)
        self.cross_attention = KVCache(layers, batch_size, heads, encoder_length, d, dtype)

    @property
    def nbytes(self) -> int:
        return self.self_attention.nbytes + self.cross_attention.nbytes


class T5ForConditionalGeneration(TaskModel, GenerationMixin):
    """MindFormers' `T5ForConditionalGeneration`: text in, text out (translation, ...)."""

    config_class = T5Config
    output_class = Seq2SeqLMOutput
    is_encoder_decoder = True

    def __init__(self, config: T5Config, seed: int = 0):
        super().__init__(config, seed)
        self.t5_model = T5Model(config, self.rng)
        self.lm_head = None if config.tie_word_embeddings else linear(
            config, self.rng, config.hidden_size, config.vocab_size, bias=False)
        self.compute_dtype = DTYPE[config.compute_dtype]
        self.load_checkpoint_from_config()

    # ---- the forward of training and of a plain call -------------------------------------------
    def construct(self, input_ids, attention_mask=None, decoder_input_ids=None,
                  decoder_attention_mask=None, labels=None):
        """(loss, logits, encoder output) with labels, else (logits, encoder output).

        Without decoder_input_ids the decoder reads the labels shifted right behind
        decoder_start_token_id (-100 read as pad), as transformers does.
        """
        if attention_mask is None:
            attention_mask = ops.ones_like(input_ids)
        if decoder_input_ids is None:
            decoder_input_ids = self.shift_right(labels)
        if decoder_attention_mask is None:
            decoder_attention_mask = ops.ones_like(decoder_input_ids)
        model = self.t5_model
        memory = model.encode(input_ids, attention_mask)
        h = model.decode(decoder_input_ids, 0, decoder_attention_mask,
                         model.cross_keys_values(memory), attention_mask)
        logits = self.head(h, model.tfm_embedding_lookup.table)
        if labels is None:
            return logits, memory
        vocab = logits.shape[-1]
        return cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1)), logits, memory

    def shift_right(self, labels):
        cfg = self.config
        start = ops.full((labels.shape[0], 1), cfg.decoder_start_token_id, dtype=labels.dtype)
        shifted = ops.concat([start, labels[:, :-1]], 1)
        return ops.where(shifted == cfg.ignore_token_id, ops.full_like(shifted, cfg.pad_token_id),
                         shifted)

    def head(self, h, table):
        """Logits (B, T, V) float32 of decoder outputs h (B, T, C)."""
        if self.lm_head is not None:
            return ops.cast(self.lm_head(h), mstype.float32)
        h = h * (self.config.hidden_size ** -0.5)  # T5 rescales before its tied head
        return ops.cast(tied_logits(h, ops.cast(table, h.dtype)), mstype.float32)

    def check_inputs(self, arguments) -> None:
        super().check_inputs(arguments)
        for name in ("decoder_input_ids", "labels"):
            value = arguments.get(name)
            if value is not None:
                array = value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)
                if name == "labels":  # ignored positions hold -100
                    array = np.where(array == self.config.ignore_token_id, 0, array)
                self.check_token_ids(array)
        if arguments.get("decoder_input_ids") is None and arguments.get("labels") is None:
            raise ModelConfigError("T5 needs decoder_input_ids or labels (the decoder's input "
                                   "is the labels shifted right)")

    # ---- the step API (mf-generate) ------------------------------------------------------------
    def new_cache(self, batch_size: int, max_length: int | None = None,
                  encoder_length: int | None = None, dtype: str | None = None) -> Seq2SeqCache:
        cfg = self.config
        max_length = max_length or cfg.max_positions
        encoder_length = encoder_length or cfg.max_positions
        for name, value in (("max_length", max_length), ("encoder_length", encoder_length)):
            if not 1 <= value <= cfg.max_positions:
                raise ModelConfigError(f"{name}({value}) must be in [1, seq_length"
                                       f"({cfg.max_positions})]")
        if batch_size < 1:
            raise ModelConfigError(f"batch_size({batch_size}) must be >= 1")
        return Seq2SeqCache(cfg, batch_size, max_length, encoder_length,
                            dtype or cfg.compute_dtype)

    def encode_function(self, cache: Seq2SeqCache) -> EncodeFunction:
        memo = cache.__dict__.setdefault("_encode", {})
        if id(self) not in memo:
            memo[id(self)] = EncodeFunction(self, cache)
        return memo[id(self)]

    def step_function(self, cache: Seq2SeqCache | None, last_only: bool = True):
        owner = self if cache is None else cache
        memo = owner.__dict__.setdefault("_step_functions", {})
        key = (id(self), last_only)
        if key not in memo:
            memo[key] = (Seq2SeqStepFunction if cache is not None else Seq2SeqRecompute)(
                self, cache, last_only)
        return memo[key]


class EncodeFunction(nn.Cell):
    """Compiled: run the encoder over (input_ids, attention_mask) (B, S_enc) and write every
    decoder layer's cross-attention keys and values into the cache. Returns the encoder
    output (B, S_enc, C)."""

    def __init__(self, model: T5ForConditionalGeneration, cache: Seq2SeqCache):
        super().__init__(auto_prefix=False)  # keep the model's parameter names
        import mindspore as ms

        self.model, self.cache = model, cache.cross_attention
        self.shape = (cache.batch_size, cache.encoder_length)
        self._compiled = ms.jit(self.construct)

    def construct(self, input_ids, attention_mask):
        model = self.model.t5_model
        memory = model.encode(input_ids, attention_mask)
        index = cache_index(self.cache, 0, input_ids.shape[1])
        for i, (k, v) in enumerate(model.cross_keys_values(memory)):
            memory = ops.depend(memory, cache_write(self.cache.keys[i], index, k))
            memory = ops.depend(memory, cache_write(self.cache.values[i], index, v))
        return memory

    def __call__(self, input_ids, attention_mask):
        ids, mask = int32_tensor(input_ids), int32_tensor(attention_mask)
        if tuple(ids.shape) != self.shape or tuple(mask.shape) != self.shape:
            raise ModelConfigError(f"input_ids {tuple(ids.shape)} and attention_mask "
                                   f"{tuple(mask.shape)} must be the cache's (batch_size, "
                                   f"encoder_length) = {self.shape}")
        self.model.check_token_ids(ids)
        return self._compiled(ids, mask)


class Seq2SeqStepFunction(nn.Cell):
    """Compiled decoder step over the cache: (decoder_ids (B, T), slot, key_mask (B,
    max_length), encoder_mask (B, S_enc)) -> logits (B, 1 or T, V). Writes self-attention
    slots [slot, slot + T); reads the cross-attention keys and values `encode` wrote."""

    def __init__(self, model: T5ForConditionalGeneration, cache: Seq2SeqCache, last_only: bool):
        super().__init__(auto_prefix=False)
        import mindspore as ms

        self.model, self.last_only = model, last_only
        self.self_cache, self.cross_cache = cache.self_attention, cache.cross_attention
        self.sizes = (cache.batch_size, cache.max_length, cache.encoder_length)
        self._compiled = ms.jit(self.construct)

    def construct(self, decoder_ids, slot, key_mask, encoder_mask):
        model = self.model.t5_model
        shape = self.cross_cache.shape  # (B, H, S_enc, D)
        cross = [(self.cross_cache.keys[i].reshape(shape), self.cross_cache.values[i]
                  .reshape(shape)) for i in range(model.num_decoder_layers)]
        table = tied_table(model.tfm_embedding_lookup.table, self.self_cache)
        h = model.decode(decoder_ids, slot, key_mask, cross, encoder_mask, self.self_cache,
                         table)
        if self.last_only:
            h = h[:, -1:, :]
        return self.model.head(h, table)

    def __call__(self, decoder_ids, slot, key_mask, encoder_mask):
        ids, keys = int32_tensor(decoder_ids), int32_tensor(key_mask)
        enc = int32_tensor(encoder_mask)
        batch, length, encoder_length = self.sizes
        if (ids.shape[0] != batch or tuple(keys.shape) != (batch, length)
                or tuple(enc.shape) != (batch, encoder_length)):
            raise ModelConfigError(
                f"decoder_ids {tuple(ids.shape)}, key_mask {tuple(keys.shape)} and "
                f"encoder_mask {tuple(enc.shape)} must match the cache (batch_size={batch}, "
                f"max_length={length}, encoder_length={encoder_length})")
        start = int(slot)
        if start < 0 or start + ids.shape[1] > length:
            raise ModelConfigError(f"slot({start}) + tokens({ids.shape[1]}) exceeds the cache "
                                   f"max_length({length})")
        self.model.check_token_ids(ids)
        return self._compiled(ids, Tensor(start, mstype.int32), keys, enc)


class Seq2SeqRecompute(nn.Cell):
    """Compiled full forward, no cache (use_past=False): (input_ids, attention_mask,
    decoder_ids, decoder_mask) -> logits of the last (or every) decoder position. Compiles
    once per shape."""

    def __init__(self, model: T5ForConditionalGeneration, cache: None, last_only: bool):
        super().__init__(auto_prefix=False)
        import mindspore as ms

        self.model, self.last_only = model, last_only
        self._compiled = ms.jit(self.construct)

    def construct(self, input_ids, attention_mask, decoder_ids, decoder_mask):
        model = self.model.t5_model
        memory = model.encode(input_ids, attention_mask)
        h = model.decode(decoder_ids, 0, decoder_mask, model.cross_keys_values(memory),
                         attention_mask)
        if self.last_only:
            h = h[:, -1:, :]
        return self.model.head(h, model.tfm_embedding_lookup.table)

    def __call__(self, input_ids, attention_mask, decoder_ids, decoder_mask):
        arrays = [int32_tensor(a) for a in (input_ids, attention_mask, decoder_ids, decoder_mask)]
        if arrays[0].shape != arrays[1].shape or arrays[2].shape != arrays[3].shape:
            raise ModelConfigError("each mask must have the shape of its ids")
        self.model.check_token_ids(arrays[0])
        self.model.check_token_ids(arrays[2])
        return self._compiled(*arrays)


