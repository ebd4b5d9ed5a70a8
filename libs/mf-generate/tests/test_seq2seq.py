"""generate() on an encoder-decoder (T5): greedy tokens equal transformers' generate() with
and without the cache, streaming, shape buckets, errors."""

from __future__ import annotations

import numpy as np
import pytest
from generate_testing import MODEL_FIXTURES
from safetensors.numpy import load_file

from mf_generate import GenerateConfigError, TextIteratorStreamer, generate
from mf_generate.generation import compiled_buckets

T5 = MODEL_FIXTURES / "t5"


@pytest.fixture(scope="module")
def t5():
    from mf_models import AutoModelForSeq2SeqLM

    import mf_generate  # noqa: F401  (installs model.generate)

    return AutoModelForSeq2SeqLM.from_pretrained(T5 / "hf")


@pytest.fixture(scope="module")
def expected():
    return load_file(str(T5 / "expected.safetensors"))


@pytest.mark.parametrize("use_past", [True, False], ids=["kv_cache", "recompute"])
def test_greedy_tokens_equal_transformers_generate(t5, expected, use_past):
    ids, mask = expected["input_ids"], expected["attention_mask"]  # row 1 right-padded
    greedy = expected["greedy_ids"]  # decoder start token, then 20 new tokens
    ours = generate(t5, ids, attention_mask=mask, max_new_tokens=greedy.shape[1] - 1,
                    eos_token_id=None, use_past=use_past)
    np.testing.assert_array_equal(ours, greedy)


def test_buckets_and_model_generate(t5, expected):
    """A shorter input of the same encoder bucket reuses the compiled step; the decoder's
    sequence (start token first) is what model.generate returns, as in transformers."""
    ids, mask = expected["input_ids"], expected["attention_mask"]
    prompts = [row[m.astype(bool)].tolist() for row, m in zip(ids, mask, strict=True)]
    generate(t5, prompts, max_new_tokens=5, eos_token_id=None)
    before = compiled_buckets(t5)["cache"]
    short = generate(t5, [p[:20] for p in prompts], max_new_tokens=5, eos_token_id=None)
    assert compiled_buckets(t5)["cache"] == before
    assert short.shape == (2, 6) and (short[:, 0] == t5.config.decoder_start_token_id).all()
    one = t5.generate(prompts[1], max_new_tokens=20, eos_token_id=None)
    np.testing.assert_array_equal(one[0], expected["greedy_ids"][1])


def test_streaming_yields_the_generated_text(t5, expected):
    from mf_tokenize import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(T5 / "hf")
    streamer = TextIteratorStreamer(tokenizer, skip_special_tokens=True, timeout=120)
    prompt = expected["input_ids"][0].tolist()
    out = generate(t5, prompt, max_new_tokens=20, eos_token_id=None, streamer=streamer)
    streamed = "".join(streamer)
    assert streamed == tokenizer.decode(out[0], skip_special_tokens=True)
    assert streamed  # the random model's greedy output decodes to some text


def test_lengths_are_checked_before_compiling(t5):
    with pytest.raises(GenerateConfigError, match=r"the input has 65 tokens, more than the "
                                                  r"model's seq_length\(64\)"):
        generate(t5, [5] * 65, max_new_tokens=2)
    with pytest.raises(GenerateConfigError, match=r"exceeds the model's seq_length\(64\)"):
        generate(t5, [5] * 10, max_new_tokens=64)
