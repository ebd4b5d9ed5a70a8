"""ChatGLM-6B (glm): logits equal an independent numpy forward (2-D positions, prefix-LM mask,
two-half rotary, alpha-scaled residuals), left padding, the KV-cache step path, THUDM/MindFormers
configs, MindFormers .ckpt names, bad input."""

from __future__ import annotations

import json

import mindspore as ms
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mindspore import Tensor
from models_errors import one_line
from models_numpy_refs import glm_logits, glm_positions_and_mask, sharp_weights

from mf_models import GLMChatModel, GLMConfig, GLMForConditionalGeneration, load_config
from mf_models.errors import ModelConfigError, UnknownModelError
from mf_models.registry import preset_config

CONFIG = preset_config("glm_debug")
GMASK, MASK, SOP, PAD = (CONFIG.gmask_token_id, CONFIG.mask_token_id, CONFIG.bos_token_id,
                         CONFIG.pad_token_id)


@pytest.fixture(scope="module")
def model():
    model = GLMForConditionalGeneration.from_config("glm_debug")
    model.load_state_dict(sharp_weights({p.name: p.shape for p in model.get_parameters()}, 5))
    return model


@pytest.fixture(scope="module")
def weights(model):
    return model.state_dict()


def glm_row(rng, context: int, answer: int = 0, marker: int = GMASK) -> list[int]:
    """`context` random tokens, [gMASK] (or [MASK]), <sop>, then `answer` more tokens."""
    body = rng.integers(4, CONFIG.vocab_size, context + answer).tolist()
    return body[:context] + [marker, SOP] + body[context:]


def left_pad(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), PAD, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = row
        mask[i, width - len(row):] = 1
    return ids, mask


# ---- logits equal the numpy equations ---------------------------------------------------------
def test_full_forward_equals_numpy(model, weights):
    rng = np.random.default_rng(0)
    # Tokens after <sop> exercise the causal part, the context the bidirectional part.
    rows = [glm_row(rng, 5, answer=3), glm_row(rng, 2, answer=6)]
    ids, mask = left_pad(rows)
    ours = model(Tensor(ids), None, Tensor(mask)).asnumpy()
    for b, row in enumerate(rows):
        np.testing.assert_allclose(ours[b], glm_logits(weights, CONFIG, row), atol=1e-4, rtol=0)


def test_left_padded_batch_equals_numpy_per_row(model, weights):
    rng = np.random.default_rng(1)
    rows = [glm_row(rng, 7, answer=2), glm_row(rng, 1), glm_row(rng, 4, answer=1, marker=MASK)]
    ids, mask = left_pad(rows)
    ours = model(Tensor(ids), None, Tensor(mask)).asnumpy()
    for b, row in enumerate(rows):
        real = mask[b].astype(bool)
        np.testing.assert_allclose(ours[b][real], glm_logits(weights, CONFIG, row), atol=1e-4,
                                   rtol=0)


def test_explicit_position_ids_give_the_same_logits(model):
    ids, mask = left_pad([glm_row(np.random.default_rng(2), 3, answer=2), [7, 8, GMASK, SOP]])
    positions = model.prefill_positions(mask, ids)
    derived = model(Tensor(ids), None, Tensor(mask)).asnumpy()
    given_ = model(Tensor(ids), None, Tensor(mask), Tensor(positions)).asnumpy()
    np.testing.assert_array_equal(given_, derived)


def test_training_loss_with_labels(model):
    ids, mask = left_pad([glm_row(np.random.default_rng(3), 4, answer=3)] * 2)
    labels = ids.copy()
    labels[:, :6] = -100  # learn the answer only
    loss, logits = model(Tensor(ids), Tensor(labels), Tensor(mask))
    logp = logits.asnumpy().astype(np.float64)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp[:, :-1], ids[:, 1:, None], -1)[..., 0]
    assert abs(float(loss.asnumpy()) - nll[:, 5:].mean()) < 1e-5


# ---- the step API: KV cache equals recomputing everything ---------------------------------------
def greedy_cached(model, ids, mask, new_tokens, max_length):
    batch, length = ids.shape
    step = model.step_function(model.new_cache(batch, max_length))
    key_mask = np.zeros((batch, max_length), np.int32)
    key_mask[:, :length] = mask
    positions = model.prefill_positions(mask, ids)  # the tokens decide GLM's positions
    logits = step(ids, positions, 0, key_mask).asnumpy()
    out = [ids]
    for i in range(new_tokens):
        token = logits[:, -1].argmax(-1).astype(np.int32)[:, None]
        out.append(token)
        positions = model.next_positions(positions)
        key_mask[:, length + i] = 1
        logits = step(token, positions, length + i, key_mask).asnumpy()
    return np.concatenate(out, 1), logits


def test_kv_cache_greedy_equals_full_recompute(model, weights):
    rng = np.random.default_rng(4)
    ids, mask = left_pad([glm_row(rng, 6), glm_row(rng, 3)])
    cached, last_logits = greedy_cached(model, ids, mask, 12, max_length=24)
    full_ids, full_mask = ids, mask
    for _ in range(12):
        logits = model(Tensor(full_ids), None, Tensor(full_mask)).asnumpy()
        token = logits[:, -1].argmax(-1).astype(np.int32)[:, None]
        full_ids = np.concatenate([full_ids, token], 1)
        full_mask = np.concatenate([full_mask, np.ones_like(token)], 1)
    np.testing.assert_array_equal(cached, full_ids)
    # The last decode step's logits are the numpy model's for the whole generated row.
    for b in range(2):
        row = cached[b][mask[b].astype(bool).tolist() + [True] * 12].tolist()
        np.testing.assert_allclose(last_logits[b, -1], glm_logits(weights, CONFIG, row)[-1],
                                   atol=1e-4, rtol=0)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_positions_follow_thudm_and_extend_one_token_at_a_time(model, data):
    """prefill_positions of a left-padded batch = THUDM's rule per unpadded row; next_positions
    k times = the rule applied to the row with k more tokens."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    rows = [glm_row(rng, data.draw(st.integers(0, 6)), data.draw(st.integers(0, 3)),
                    data.draw(st.sampled_from([GMASK, MASK]))) for _ in range(3)]
    extra = data.draw(st.integers(1, 4))
    ids, mask = left_pad(rows)
    positions = model.prefill_positions(mask, ids)
    steps = [positions]
    for _ in range(extra):
        steps.append(model.next_positions(steps[-1]))
    grown = np.concatenate(steps, -1)  # (B, 2, T + extra)
    for b, row in enumerate(rows):
        pad = ids.shape[1] - len(row)
        longer = row + [9] * extra
        position, block, _ = glm_positions_and_mask(longer, GMASK, MASK, SOP)
        np.testing.assert_array_equal(grown[b, 0, pad:], position)
        np.testing.assert_array_equal(grown[b, 1, pad:], block)
        assert not grown[b, :, :pad].any()  # pads sit at (0, 0)


# ---- GLMChatModel -----------------------------------------------------------------------------
def test_chat_model_builds_prompts_and_matches(model, weights):
    chat = GLMChatModel(CONFIG)
    chat.load_state_dict(weights)
    ids, mask = chat.prompt_inputs([[11, 12, 13], [14]])
    assert ids[1].tolist() == [PAD, PAD, 14, GMASK, SOP] and mask[1].tolist() == [0, 0, 1, 1, 1]
    np.testing.assert_array_equal(chat(Tensor(ids), None, Tensor(mask)).asnumpy(),
                                  model(Tensor(ids), None, Tensor(mask)).asnumpy())


def test_chat_model_refuses_a_prompt_without_gmask():
    chat = GLMChatModel(CONFIG)
    with pytest.raises(ModelConfigError, match=r"prompt row 0 has no \[gMASK\]"):
        chat(Tensor(np.array([[11, 12, SOP]], np.int32)))


# ---- weights: MindFormers' .ckpt names ----------------------------------------------------------
def mindformers_names(config: GLMConfig) -> dict[str, tuple[int, ...]]:
    """MindFormers' GLM checkpoint: THUDM's names with embedding_table and gamma/beta (its
    convert_weight.py), torch's (out, in) Linear shapes."""
    c, f, v = config.hidden_size, config.inner_hidden_size, config.vocab_size
    names = {"transformer.word_embeddings.embedding_table": (v, c), "lm_head.weight": (v, c),
             "transformer.final_layernorm.gamma": (c,), "transformer.final_layernorm.beta": (c,)}
    for i in range(config.num_layers):
        p = f"transformer.layers.{i}."
        names.update({
            p + "input_layernorm.gamma": (c,), p + "input_layernorm.beta": (c,),
            p + "attention.query_key_value.weight": (3 * c, c),
            p + "attention.query_key_value.bias": (3 * c,),
            p + "attention.dense.weight": (c, c), p + "attention.dense.bias": (c,),
            p + "post_attention_layernorm.gamma": (c,), p + "post_attention_layernorm.beta": (c,),
            p + "mlp.dense_h_to_4h.weight": (f, c), p + "mlp.dense_h_to_4h.bias": (f,),
            p + "mlp.dense_4h_to_h.weight": (c, f), p + "mlp.dense_4h_to_h.bias": (c,),
        })
    return names


def test_a_mindformers_ckpt_loads_as_it_is(model, weights, tmp_path):
    expected = mindformers_names(CONFIG)
    assert {n: w.shape for n, w in weights.items()} == expected
    # A checkpoint written by MindSpore alone, under MindFormers' names (with optimizer state).
    rng = np.random.default_rng(6)
    arrays = {n: (rng.standard_normal(s) * 0.05).astype(np.float32) for n, s in expected.items()}
    params = [{"name": n, "data": ms.Tensor(a)} for n, a in arrays.items()]
    params.append({"name": "adam_m.lm_head.weight", "data": ms.Tensor(arrays["lm_head.weight"])})
    ms.save_checkpoint(params, str(tmp_path / "glm.ckpt"))
    loaded = GLMForConditionalGeneration(
        CONFIG.replace(checkpoint_name_or_path=str(tmp_path / "glm.ckpt")))
    row = glm_row(np.random.default_rng(7), 3, answer=2)
    ours = loaded(Tensor(np.array([row], np.int32))).asnumpy()[0]
    np.testing.assert_allclose(ours, glm_logits(arrays, CONFIG, row), atol=1e-4, rtol=0)
    # And our own .ckpt uses exactly those names.
    model.save_pretrained(tmp_path / "ours", fmt="ckpt")
    saved = ms.load_checkpoint(str(tmp_path / "ours" / "model.ckpt"))
    assert {n: tuple(p.shape) for n, p in saved.items()} == expected


# ---- configs ----------------------------------------------------------------------------------
def test_glm_6b_preset_has_the_published_size():
    config = preset_config("glm_6b")
    # THUDM's ChatGLM-6B counts 6,173,286,400 weights with lm_head tied to the embedding;
    # MindFormers keeps lm_head.weight as its own parameter.
    assert config.parameter_count == 6_173_286_400 + 130528 * 4096
    assert (config.num_layers, config.head_dim, config.ffn_hidden_size) == (28, 128, 16384)


def test_thudm_config_json_reads_and_drops_unknown_keys(tmp_path):
    thudm = {  # THUDM/chatglm-6b config.json
        "architectures": ["ChatGLMModel"], "model_type": "chatglm",
        "auto_map": {"AutoModel": "modeling_chatglm.ChatGLMForConditionalGeneration"},
        "bos_token_id": 130004, "eos_token_id": 130005, "mask_token_id": 130000,
        "gmask_token_id": 130001, "pad_token_id": 3, "hidden_size": 4096,
        "inner_hidden_size": 16384, "layernorm_epsilon": 1e-05, "max_sequence_length": 2048,
        "num_attention_heads": 32, "num_layers": 28, "position_encoding_2d": True,
        "pre_seq_len": None, "prefix_projection": False, "quantization_bit": 0,
        "torch_dtype": "float16", "transformers_version": "4.27.1", "use_cache": True,
        "vocab_size": 130528}
    (tmp_path / "config.json").write_text(json.dumps(thudm))
    config = load_config(tmp_path)
    assert type(config) is GLMConfig
    assert config == preset_config("glm_6b").replace(name="")


def test_mindformers_run_yaml_reads(tmp_path):
    (tmp_path / "run.yaml").write_text(
        "model:\n  model_config:\n    type: GLMConfig\n    vocab_size: 130528\n"
        "    hidden_size: 64\n    num_layers: 2\n    num_heads: 4\n    inner_hidden_size: 256\n"
        "    seq_length: 512\n    hidden_size_per_attention_head:\n    layernorm_order: post\n"
        "    position_encoding_2d: True\n    is_enhanced_encoder: True\n  arch:\n"
        "    type: GLMChatModel\n")
    config = load_config(tmp_path / "run.yaml")
    assert isinstance(config, GLMConfig) and (config.seq_length, config.head_dim) == (512, 16)




# ---- bad input --------------------------------------------------------------------------------
def test_unknown_preset_suggests_glm_6b():
    with pytest.raises(UnknownModelError) as err:
        preset_config("glm6b")
    assert one_line(err) == "'glm6b' is not a supported model; did you mean 'glm_6b'?"


def test_heads_that_do_not_divide_hidden_size():
    with pytest.raises(ModelConfigError) as err:
        GLMConfig.from_name("glm_debug", num_heads=5)
    assert one_line(err) == "num_heads(5) must divide hidden_size(64): 64 / 5 = 12.8"


def test_prompt_without_gmask(model):
    ids, mask = left_pad([glm_row(np.random.default_rng(8), 3), [21, 22, 23, SOP]])
    with pytest.raises(ModelConfigError) as err:
        model.prefill_positions(mask, ids)
    assert one_line(err) == (f"prompt row 1 has no [gMASK] (gmask_token_id {GMASK}) before "
                              f"<sop>: a GLM prompt ends with [gMASK] <sop> (ids {GMASK}, {SOP})")


def test_prompt_without_sop(model):
    with pytest.raises(ModelConfigError) as err:
        model.prefill_positions(np.ones((1, 3), np.int32), np.array([[21, 22, GMASK]]))
    assert one_line(err).startswith(f"prompt row 0 has no <sop> (bos_token_id {SOP})")


def test_prompt_longer_than_seq_length(model):
    too_long = np.full((1, CONFIG.seq_length + 1), 9, np.int32)
    with pytest.raises(ModelConfigError) as err:
        model(Tensor(too_long))
    assert one_line(err) == (f"sequence length {CONFIG.seq_length + 1} is longer than the "
                              f"model's seq_length({CONFIG.seq_length})")


def test_step_positions_must_be_two_dimensional(model):
    step = model.step_function(model.new_cache(1, 4))
    with pytest.raises(ModelConfigError) as err:
        step(np.ones((1, 2), np.int32), np.zeros((1, 2), np.int32), 0, np.ones((1, 4), np.int32))
    assert "GLM positions are (batch, 2, tokens)" in one_line(err)
