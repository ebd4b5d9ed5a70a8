"""T5 against transformers: logits, loss and encoder output of a tiny random checkpoint
(tests/fixtures/make_text_fixtures.py) loaded through our importer; t5-small's relative
position buckets; the cached step API equals the full forward; round trips and errors.
(Greedy generation against transformers, with and without the cache: mf-generate's tests.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from mf_models import AutoModel, AutoModelForSeq2SeqLM, T5Config, preset_config
from mf_models.errors import ModelConfigError
from mf_models.weights.convert import convert

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "t5"


@pytest.fixture(scope="module")
def model():
    return AutoModelForSeq2SeqLM.from_pretrained(FIXTURES / "hf")


@pytest.fixture(scope="module")
def expected():
    return load_file(str(FIXTURES / "expected.safetensors"))


def test_logits_loss_and_encoder_output_match_transformers(model, expected):
    assert model.load_report == []
    out = model(expected["input_ids"], expected["attention_mask"],
                expected["decoder_input_ids"], labels=expected["labels"])
    np.testing.assert_allclose(out.logits.asnumpy(), expected["logits"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(out.loss.asnumpy().reshape(1), expected["loss"], atol=1e-4)
    np.testing.assert_allclose(out.encoder_last_hidden_state.asnumpy(),
                               expected["encoder_last_hidden_state"], atol=1e-4, rtol=0)
    # Labels alone: the decoder reads them shifted right (row 0 has no -100 to replace).
    shifted = model(expected["input_ids"], expected["attention_mask"], labels=expected["labels"])
    np.testing.assert_allclose(shifted.logits.asnumpy()[0], expected["logits"][0], atol=1e-4)


def test_relative_buckets_are_t5_smalls(expected):
    config = preset_config("t5_small")
    rel = np.arange(-300, 301)
    for name, bidirectional in (("bidirectional", True), ("causal", False)):
        table = config.relative_buckets(bidirectional)  # index: rel clipped to +-D, plus D
        distance = config.relative_attention_max_distance
        ours = table[np.clip(rel, -distance, distance) + distance]
        np.testing.assert_array_equal(ours, expected[f"buckets_{name}"])


@pytest.mark.slow  # two compiles; mf-generate's test_seq2seq checks the cache by default
def test_cached_steps_equal_the_full_forward(model, expected):
    """Encode once (cross K/V written into the cache), then the decoder one token per step:
    the logits of every step equal the full forward's at that position."""
    ids, mask = expected["input_ids"], expected["attention_mask"]
    decoder = expected["decoder_input_ids"][:, :6]
    full = model(ids, mask, decoder).logits.asnumpy()  # (2, 6, V)
    cache = model.new_cache(2, 8, ids.shape[1])
    memory = model.encode_function(cache)(ids, mask)
    np.testing.assert_allclose(memory.asnumpy(), expected["encoder_last_hidden_state"],
                               atol=1e-4, rtol=0)
    step = model.step_function(cache)
    assert model.step_function(cache) is step  # compiled once per cache
    key_mask = np.zeros((2, 8), np.int32)
    for t in range(6):
        key_mask[:, t] = 1
        logits = step(decoder[:, t:t + 1], t, key_mask, mask).asnumpy()
        np.testing.assert_allclose(logits[:, 0], full[:, t], atol=1e-4, rtol=0)


def test_save_and_convert_round_trips(model, expected, tmp_path):
    model.save_pretrained(tmp_path / "mf")
    again = AutoModel.from_pretrained(tmp_path / "mf")
    assert type(again).__name__ == "T5ForConditionalGeneration"
    assert again.config == model.config
    convert(tmp_path / "mf", tmp_path / "hf")
    original = load_file(str(FIXTURES / "hf" / "model.safetensors"))
    exported = load_file(str(tmp_path / "hf" / "model.safetensors"))
    shared = set(original) & set(exported)
    assert "shared.weight" in shared and len(shared) == len(exported)
    for name in shared:
        np.testing.assert_array_equal(exported[name], original[name])


def test_presets_and_errors(model, expected):
    small = preset_config("t5_small")
    assert small.parameter_count == 60_506_624  # transformers' count for google-t5/t5-small
    assert small.head_dim == 64 and small.family == "t5"
    debug = T5Config.from_name("t5_debug")
    assert debug.inner_dim != debug.hidden_size  # heads need not split hidden_size
    with pytest.raises(ModelConfigError, match="feed_forward_proj='gated-gelu' is not supported"):
        T5Config.from_name("t5_debug", feed_forward_proj="gated-gelu")
    with pytest.raises(ModelConfigError, match="needs decoder_input_ids or labels"):
        model(expected["input_ids"])
    with pytest.raises(ModelConfigError, match=r"token id 9999 is outside the vocabulary"):
        model(expected["input_ids"], labels=np.full((2, 3), 9999))
    with pytest.raises(ModelConfigError, match=r"encoder_length\(9999\) must be in"):
        model.new_cache(1, 8, 9999)
