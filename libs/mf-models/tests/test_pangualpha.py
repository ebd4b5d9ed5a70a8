"""PanGu-Alpha: logits equal an independent numpy forward (learned positions, the top query
layer whose query is a learned position embedding, tied head), left padding, the KV-cache step
path, presets, MindFormers .ckpt names, bad input."""

from __future__ import annotations

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor
from models_errors import one_line
from models_greedy import greedy_recompute, greedy_with_cache
from models_numpy_refs import pangualpha_logits, sharp_weights

from mf_models import PanguAlphaConfig, PanguAlphaHeadModel, load_config
from mf_models.errors import ModelConfigError, UnknownModelError
from mf_models.registry import preset_config

CONFIG = preset_config("pangualpha_debug")
WORD_TABLE = "backbone.embedding.word_embedding.embedding_table"


def pangu_weights(shapes, seed: int) -> dict[str, np.ndarray]:
    """sharp_weights with a 10x smaller word table: the head reuses it on a residual stream
    that no LayerNorm tames, and logits of ~100 would leave fp32 no room for 1e-4."""
    weights = sharp_weights(shapes, seed)
    weights[WORD_TABLE] *= np.float32(0.1)
    return weights


@pytest.fixture(scope="module")
def model():
    model = PanguAlphaHeadModel.from_config("pangualpha_debug")
    model.load_state_dict(pangu_weights({p.name: p.shape for p in model.get_parameters()}, 21))
    return model


@pytest.fixture(scope="module")
def weights(model):
    return model.state_dict()


def left_padded(lengths: list[int], seed: int) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = [rng.integers(7, CONFIG.vocab_size, n).tolist() for n in lengths]
    width = max(lengths)
    ids = np.full((len(rows), width), CONFIG.pad_token_id, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = row
        mask[i, width - len(row):] = 1
    return rows, ids, mask


def test_full_forward_equals_numpy(model, weights):
    rows, ids, mask = left_padded([8, 8], seed=0)
    ours = model(Tensor(ids), None, Tensor(mask)).asnumpy()
    for b, row in enumerate(rows):
        np.testing.assert_allclose(ours[b], pangualpha_logits(weights, CONFIG, row), atol=1e-4,
                                   rtol=0)


def test_left_padded_batch_equals_numpy_per_row(model, weights):
    rows, ids, mask = left_padded([9, 2, 5], seed=1)
    ours = model(Tensor(ids), None, Tensor(mask)).asnumpy()
    for b, row in enumerate(rows):
        real = mask[b].astype(bool)
        np.testing.assert_allclose(ours[b][real], pangualpha_logits(weights, CONFIG, row),
                                   atol=1e-4, rtol=0)


def test_the_top_query_is_the_position_embedding_not_the_hidden_state(model, weights):
    """Swap the top-query table for another: only the top layer's query changes, and the
    logits follow the numpy model with the new table (so it is read, and read there)."""
    row = [11, 12, 13, 14]
    name = "backbone.top_query_embedding.embedding_table"
    changed = dict(weights)
    changed[name] = np.roll(weights[name], 1, axis=0)
    twin = PanguAlphaHeadModel(CONFIG)
    twin.load_state_dict(changed)
    ours = twin(Tensor(np.array([row], np.int32))).asnumpy()[0]
    np.testing.assert_allclose(ours, pangualpha_logits(changed, CONFIG, row), atol=1e-4, rtol=0)
    assert np.abs(ours - pangualpha_logits(weights, CONFIG, row)).max() > 1e-2


def test_kv_cache_greedy_equals_full_recompute(model, weights):
    rows, ids, mask = left_padded([6, 3], seed=2)
    cached = greedy_with_cache(model, ids, mask, 12, max_length=24)
    np.testing.assert_array_equal(cached, greedy_recompute(model, ids, mask, 12))
    for b, row in enumerate(rows):
        seq = list(row)
        for _ in range(12):
            seq.append(int(pangualpha_logits(weights, CONFIG, seq)[-1].argmax()))
        assert seq == cached[b][mask[b].astype(bool).tolist() + [True] * 12].tolist()


# ---- weights: MindFormers' .ckpt names ----------------------------------------------------------
def mindformers_names(config: PanguAlphaConfig) -> dict[str, tuple[int, ...]]:
    """MindFormers' PanguAlphaHeadModel parameters: num_layers - 1 `blocks` and the
    `top_query_layer`, MindFormers' transformer shapes (dense1/2/3 (out, in), projection and
    mapping (in, out)); the head has none (it reuses the word embedding)."""
    c, f, v, p = config.hidden_size, config.ffn_hidden_size, config.vocab_size, config.seq_length

    def layer(prefix):
        names = {}
        for ln in ("layernorm1", "layernorm2"):
            names.update({f"{prefix}.{ln}.gamma": (c,), f"{prefix}.{ln}.beta": (c,)})
        for dense in ("dense1", "dense2", "dense3"):
            names.update({f"{prefix}.attention.{dense}.weight": (c, c),
                          f"{prefix}.attention.{dense}.bias": (c,)})
        names.update({f"{prefix}.attention.projection.weight": (c, c),
                      f"{prefix}.attention.projection.bias": (c,),
                      f"{prefix}.output.mapping.weight": (c, f),
                      f"{prefix}.output.mapping.bias": (f,),
                      f"{prefix}.output.projection.weight": (f, c),
                      f"{prefix}.output.projection.bias": (c,)})
        return names

    names = {"backbone.embedding.word_embedding.embedding_table": (v, c),
             "backbone.embedding.position_embedding.embedding_table": (p, c),
             "backbone.top_query_embedding.embedding_table": (p, c),
             "backbone.layernorm.gamma": (c,), "backbone.layernorm.beta": (c,),
             **layer("backbone.top_query_layer")}
    for i in range(config.num_layers - 1):
        names.update(layer(f"backbone.blocks.{i}"))
    return names


def test_a_mindformers_ckpt_loads_as_it_is(model, weights, tmp_path):
    expected = mindformers_names(CONFIG)
    assert {n: w.shape for n, w in weights.items()} == expected
    arrays = pangu_weights(expected, seed=22)
    ms.save_checkpoint([{"name": n, "data": ms.Tensor(a)} for n, a in arrays.items()],
                       str(tmp_path / "pangu.ckpt"))
    path = str(tmp_path / "pangu.ckpt")
    loaded = PanguAlphaHeadModel(CONFIG.replace(checkpoint_name_or_path=path))
    row = [9, 10, 500, 11]
    np.testing.assert_allclose(loaded(Tensor(np.array([row], np.int32))).asnumpy()[0],
                               pangualpha_logits(arrays, CONFIG, row), atol=1e-4, rtol=0)
    model.save_pretrained(tmp_path / "ours", fmt="ckpt")
    saved = ms.load_checkpoint(str(tmp_path / "ours" / "model.ckpt"))
    assert {n: tuple(p.shape) for n, p in saved.items()} == expected


# ---- configs ----------------------------------------------------------------------------------
def test_presets_have_the_published_sizes():
    small, large = preset_config("pangualpha_2_6b"), preset_config("pangualpha_13b")
    assert round(small.parameter_count / 1e9, 1) == 2.6  # paper table 1: 2.6B
    assert round(large.parameter_count / 1e9) == 13  # paper table 1: 13.1B
    assert (large.num_layers, large.hidden_size, large.ffn_hidden_size) == (40, 5120, 20480)


def test_mindformers_run_yaml_reads(tmp_path):
    (tmp_path / "run.yaml").write_text(
        "model:\n  model_config:\n    type: PanguAlphaConfig\n    batch_size: 16\n"
        "    seq_length: 256\n    vocab_size: 1000\n    hidden_size: 64\n    ffn_hidden_size: 256\n"
        "    num_layers: 3\n    num_heads: 4\n    pad_token_id: 6\n    eos_token_id: 6\n"
        "    post_layernorm_residual: False\n    hidden_act: 'fast_gelu'\n    use_moe: False\n"
        "  arch:\n    type: PanguAlphaHeadModel\n")
    config = load_config(tmp_path / "run.yaml")
    assert isinstance(config, PanguAlphaConfig) and (config.seq_length, config.num_layers) == (
        256, 3)




# ---- bad input --------------------------------------------------------------------------------
def test_unknown_preset_suggests_the_closest():
    with pytest.raises(UnknownModelError) as err:
        preset_config("pangualpha_2.6b")
    assert one_line(err) == ("'pangualpha_2.6b' is not a supported model; did you mean "
                              "'pangualpha_2_6b'?")


def test_heads_that_do_not_divide_hidden_size():
    with pytest.raises(ModelConfigError) as err:
        PanguAlphaConfig(hidden_size=2560, num_heads=48)
    assert one_line(err) == "num_heads(48) must divide hidden_size(2560): 2560 / 48 = 53.3333"


def test_unsupported_activation():
    with pytest.raises(ModelConfigError) as err:
        PanguAlphaConfig.from_name("pangualpha_debug", hidden_act="swish")
    assert one_line(err) == "hidden_act='swish' is not one of fast_gelu, gelu, relu"


def test_prompt_longer_than_seq_length(model):
    with pytest.raises(ModelConfigError) as err:
        model(Tensor(np.full((1, CONFIG.seq_length + 1), 9, np.int32)))
    assert one_line(err) == (f"sequence length {CONFIG.seq_length + 1} is longer than the "
                              f"model's seq_length({CONFIG.seq_length})")
