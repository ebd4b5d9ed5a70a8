"""ChatGLM2-6B (glm2): logits equal an independent numpy forward (multi-query attention, rotary
on adjacent pairs of half of each head, SwiGLU, RMSNorm), left padding, the KV-cache step path,
THUDM/MindFormers configs, MindFormers .ckpt names, bad input."""

from __future__ import annotations

import json

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor
from models_errors import one_line
from models_greedy import greedy_recompute, greedy_with_cache
from models_numpy_refs import glm2_logits, sharp_weights

from mf_models import ChatGLM2Config, ChatGLM2ForConditionalGeneration, load_config
from mf_models.errors import ModelConfigError, UnknownModelError
from mf_models.registry import preset_config

CONFIG = preset_config("glm2_debug")


@pytest.fixture(scope="module")
def model():
    model = ChatGLM2ForConditionalGeneration.from_config("glm2_debug")
    model.load_state_dict(sharp_weights({p.name: p.shape for p in model.get_parameters()}, 11))
    return model


@pytest.fixture(scope="module")
def weights(model):
    return model.state_dict()


def left_padded(lengths: list[int], seed: int) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = [rng.integers(4, CONFIG.vocab_size, n).tolist() for n in lengths]
    width = max(lengths)
    ids = np.zeros((len(rows), width), np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = row
        mask[i, width - len(row):] = 1
    return rows, ids, mask


def test_full_forward_equals_numpy(model, weights):
    rows, ids, mask = left_padded([9, 9], seed=0)
    ours = model(Tensor(ids), None, Tensor(mask)).asnumpy()
    for b, row in enumerate(rows):
        np.testing.assert_allclose(ours[b], glm2_logits(weights, CONFIG, row), atol=1e-4, rtol=0)


def test_left_padded_batch_equals_numpy_per_row(model, weights):
    rows, ids, mask = left_padded([10, 3, 7], seed=1)
    ours = model(Tensor(ids), None, Tensor(mask)).asnumpy()
    for b, row in enumerate(rows):
        real = mask[b].astype(bool)
        np.testing.assert_allclose(ours[b][real], glm2_logits(weights, CONFIG, row), atol=1e-4,
                                   rtol=0)


def test_kv_cache_greedy_equals_full_recompute(model, weights):
    rows, ids, mask = left_padded([7, 4], seed=2)
    cached = greedy_with_cache(model, ids, mask, 12, max_length=24)
    np.testing.assert_array_equal(cached, greedy_recompute(model, ids, mask, 12))
    # The cache holds one (key, value) pair per group, not per head: (B, G, S, D).
    cache = model.new_cache(2, 24)
    assert cache.shape == (2, CONFIG.multi_query_group_num, 24, CONFIG.kv_channels)
    # The numpy model continues the rows the same way (greedy, its own recompute).
    for b, row in enumerate(rows):
        seq = list(row)
        for _ in range(12):
            seq.append(int(glm2_logits(weights, CONFIG, seq)[-1].argmax()))
        assert seq == cached[b][mask[b].astype(bool).tolist() + [True] * 12].tolist()


# ---- weights: MindFormers' .ckpt names ----------------------------------------------------------
def mindformers_names(config: ChatGLM2Config) -> dict[str, tuple[int, ...]]:
    """MindFormers' ChatGLM2 checkpoint: THUDM's names, word_embeddings.weight renamed to
    embedding_table (its convert_weight.py); torch's (out, in) Linear shapes."""
    c, f, v, d = config.hidden_size, config.ffn_hidden_size, config.vocab_size, config.head_dim
    qkv = (config.num_heads + 2 * config.multi_query_group_num) * d
    names = {"transformer.embedding.embedding_table": (v, c),
             "transformer.encoder.final_layernorm.weight": (c,),
             "transformer.output_layer.weight": (v, c)}
    for i in range(config.num_layers):
        p = f"transformer.encoder.layers.{i}."
        names.update({
            p + "input_layernorm.weight": (c,), p + "post_attention_layernorm.weight": (c,),
            p + "self_attention.query_key_value.weight": (qkv, c),
            p + "self_attention.query_key_value.bias": (qkv,),
            p + "self_attention.dense.weight": (c, config.num_heads * d),
            p + "mlp.dense_h_to_4h.weight": (2 * f, c), p + "mlp.dense_4h_to_h.weight": (c, f),
        })
    return names


def test_a_mindformers_ckpt_loads_as_it_is(model, weights, tmp_path):
    expected = mindformers_names(CONFIG)
    assert {n: w.shape for n, w in weights.items()} == expected
    arrays = sharp_weights(expected, seed=12)
    ms.save_checkpoint([{"name": n, "data": ms.Tensor(a)} for n, a in arrays.items()],
                       str(tmp_path / "glm2.ckpt"))
    loaded = ChatGLM2ForConditionalGeneration(
        CONFIG.replace(checkpoint_name_or_path=str(tmp_path / "glm2.ckpt")))
    row = [5, 17, 99, 300, 8]
    np.testing.assert_allclose(loaded(Tensor(np.array([row], np.int32))).asnumpy()[0],
                               glm2_logits(arrays, CONFIG, row), atol=1e-4, rtol=0)
    model.save_pretrained(tmp_path / "ours", fmt="ckpt")
    saved = ms.load_checkpoint(str(tmp_path / "ours" / "model.ckpt"))
    assert {n: tuple(p.shape) for n, p in saved.items()} == expected


def test_a_converted_checkpoints_rotary_buffer_is_recomputed_not_loaded(tmp_path):
    """MindFormers' convert_weight.py copies THUDM's whole state_dict, rotary `inv_freq` buffer
    included; we compute the angles ourselves, so even a strict load skips that tensor."""
    arrays = sharp_weights(mindformers_names(CONFIG), seed=13)
    inv_freq = 1.0 / 10000 ** (np.arange(0, CONFIG.rotary_dim, 2) / CONFIG.rotary_dim)
    arrays["transformer.rotary_pos_emb.inv_freq"] = inv_freq.astype(np.float32)
    CONFIG.save_pretrained(tmp_path)
    ms.save_checkpoint([{"name": n, "data": ms.Tensor(a)} for n, a in arrays.items()],
                       str(tmp_path / "model.ckpt"))
    loaded = ChatGLM2ForConditionalGeneration.from_pretrained(tmp_path)
    assert loaded.load_report == []
    row = [5, 6, 7]
    np.testing.assert_allclose(loaded(Tensor(np.array([row], np.int32))).asnumpy()[0],
                               glm2_logits(arrays, CONFIG, row), atol=1e-4, rtol=0)
    # Any other stray tensor is still named by a strict load.
    arrays["transformer.stray"] = inv_freq.astype(np.float32)
    ms.save_checkpoint([{"name": n, "data": ms.Tensor(a)} for n, a in arrays.items()],
                       str(tmp_path / "model.ckpt"))
    with pytest.raises(ModelConfigError, match="1 unexpected, first transformer.stray"):
        ChatGLM2ForConditionalGeneration.from_pretrained(tmp_path)


# ---- configs ----------------------------------------------------------------------------------
THUDM_CHATGLM2 = {  # THUDM/chatglm2-6b config.json
    "_name_or_path": "THUDM/chatglm2-6b", "model_type": "chatglm",
    "architectures": ["ChatGLMModel"], "add_bias_linear": False, "add_qkv_bias": True,
    "apply_query_key_layer_scaling": True, "apply_residual_connection_post_layernorm": False,
    "attention_dropout": 0.0, "attention_softmax_in_fp32": True, "bias_dropout_fusion": True,
    "ffn_hidden_size": 13696, "fp32_residual_connection": False, "hidden_dropout": 0.0,
    "hidden_size": 4096, "kv_channels": 128, "layernorm_epsilon": 1e-05,
    "multi_query_attention": True, "multi_query_group_num": 2, "num_attention_heads": 32,
    "num_layers": 28, "original_rope": True, "padded_vocab_size": 65024,
    "post_layer_norm": True, "rmsnorm": True, "seq_length": 32768, "use_cache": True,
    "torch_dtype": "float16", "transformers_version": "4.27.1", "tie_word_embeddings": False,
    "eos_token_id": 2, "pad_token_id": 0}


def test_glm2_6b_preset_has_the_published_size():
    config = preset_config("glm2_6b")
    assert config.parameter_count == 6_243_584_000  # ChatGLM2-6B's published count
    assert (config.kv_heads, config.head_dim, config.rotary_dim) == (2, 128, 64)


def test_thudm_config_json_reads_as_chatglm2(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(THUDM_CHATGLM2))
    config = load_config(tmp_path)  # model_type "chatglm", told apart from ChatGLM-6B by keys
    assert type(config) is ChatGLM2Config
    assert config == preset_config("glm2_6b").replace(name="")


def test_mindformers_run_yaml_reads(tmp_path):
    (tmp_path / "run.yaml").write_text(
        "model:\n  model_config:\n    type: ChatGLM2Config\n    num_layers: 2\n"
        "    padded_vocab_size: 1024\n    hidden_size: 64\n    ffn_hidden_size: 96\n"
        "    kv_channels: 16\n    num_attention_heads: 4\n    seq_length: 193\n"
        "    multi_query_group_num: 2\n    rmsnorm: True\n    use_flash_attention: False\n")
    config = load_config(tmp_path / "run.yaml")
    assert isinstance(config, ChatGLM2Config)
    assert (config.vocab_size, config.num_heads, config.seq_length) == (1024, 4, 193)




# ---- bad input --------------------------------------------------------------------------------
def test_unknown_preset_suggests_glm2_6b():
    with pytest.raises(UnknownModelError) as err:
        preset_config("glm2-6b")
    assert one_line(err) == "'glm2-6b' is not a supported model; did you mean 'glm2_6b'?"


def test_heads_that_do_not_divide_hidden_size():
    with pytest.raises(ModelConfigError) as err:
        ChatGLM2Config.from_name("glm2_debug", num_heads=6)
    assert one_line(err) == "num_heads(6) must divide hidden_size(64): 64 / 6 = 10.6667"


def test_groups_that_do_not_divide_heads():
    with pytest.raises(ModelConfigError) as err:
        ChatGLM2Config.from_name("glm2_debug", multi_query_group_num=3)
    assert one_line(err) == "multi_query_group_num(3) must divide num_heads(4): 4 / 3 = 1.33333"


def test_prompt_longer_than_seq_length(model):
    with pytest.raises(ModelConfigError) as err:
        model(Tensor(np.full((1, CONFIG.seq_length + 1), 9, np.int32)))
    assert one_line(err) == (f"sequence length {CONFIG.seq_length + 1} is longer than the "
                              f"model's seq_length({CONFIG.seq_length})")
