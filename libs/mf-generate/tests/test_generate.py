"""generate(): parity with transformers' greedy generate(), KV cache == recompute for every
family, batches of unequal prompts, per-row EOS, seeded sampling, shape buckets, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from generate_testing import MODEL_FIXTURES, fixture_model
from mf_models import FAMILIES, AutoModelForCausalLM, CausalLM, ModelConfigError, ModelError
from safetensors.numpy import load_file

from mf_generate import GenerateConfigError, GenerationConfig, generate
from mf_generate.generation import compiled_buckets, step_bucket

# The decoder families (T5's loop is tested in test_seq2seq.py; BERT does not generate).
DECODERS = sorted(name for name, family in FAMILIES.items()
                  if issubclass(family.model_class(), CausalLM))
HF_FAMILIES = sorted(p.name for p in MODEL_FIXTURES.iterdir()
                     if (p / "hf").is_dir() and p.name in DECODERS)
OTHER_FAMILIES = sorted(set(DECODERS) - set(HF_FAMILIES))


@pytest.mark.parametrize("use_past", [True, False], ids=["kv_cache", "recompute"])
@pytest.mark.parametrize("family", HF_FAMILIES)
def test_greedy_tokens_equal_transformers_generate(family, use_past):
    model = fixture_model(family)
    expected = load_file(str(MODEL_FIXTURES / family / "expected.safetensors"))
    prompt, mask = expected["prompt_ids"], expected["prompt_mask"]  # row 1 left-padded
    new = expected["greedy_ids"].shape[1] - prompt.shape[1]
    ours = generate(model, prompt, attention_mask=mask, max_new_tokens=new, eos_token_id=None,
                    use_past=use_past)
    np.testing.assert_array_equal(ours, expected["greedy_ids"])


@pytest.mark.parametrize("family", OTHER_FAMILIES)
def test_kv_cache_equals_recompute_for_families_without_hf_fixture(family):
    model = AutoModelForCausalLM.from_config(f"{family}_debug", seed=4)
    rng = np.random.default_rng(0)
    prompts = [rng.integers(5, 120, n).tolist() for n in (5, 9)]
    if hasattr(model, "check_prompt"):  # GLM: a prompt ends with [gMASK] <sop>
        prompts = [p + [model.config.gmask_token_id, model.config.bos_token_id]
                   for p in prompts]
    kw = dict(max_new_tokens=12, eos_token_id=None)
    cached = generate(model, prompts, use_past=True, **kw)
    recomputed = generate(model, prompts, use_past=False, **kw)
    np.testing.assert_array_equal(cached, recomputed)


def _prompts(seed: int, lengths=(5, 9)) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(4, 512, n).tolist() for n in lengths]


def test_unequal_prompts_are_left_padded_and_rows_do_not_interact(llama):
    a, b = _prompts(1)
    both = generate(llama, [a, b], max_new_tokens=10, eos_token_id=None, pad_token_id=0)
    assert both.shape == (2, 9 + 10)
    np.testing.assert_array_equal(both[0, :4], 0)  # left padding of the shorter prompt
    np.testing.assert_array_equal(both[0, 4:9], a)
    np.testing.assert_array_equal(both[1, :9], b)
    swapped = generate(llama, [b, a], max_new_tokens=10, eos_token_id=None, pad_token_id=0)
    np.testing.assert_array_equal(swapped[::-1], both)
    twice = generate(llama, [a, a], max_new_tokens=10, eos_token_id=None)
    np.testing.assert_array_equal(twice[0, 5:], both[0, 9:])


def test_right_padded_input_with_a_mask_is_repacked_to_the_left(llama):
    a, b = _prompts(1)
    right = np.zeros((2, 9), np.int64)
    mask = np.zeros((2, 9), np.int64)
    right[0, :5], mask[0, :5] = a, 1
    right[1], mask[1] = b, 1
    ours = generate(llama, right, attention_mask=mask, max_new_tokens=6, eos_token_id=None)
    lists = generate(llama, [a, b], max_new_tokens=6, eos_token_id=None)
    np.testing.assert_array_equal(ours, lists)


def test_each_row_stops_at_its_own_eos_and_is_padded_after_it(llama):
    prompts = _prompts(2)
    free = generate(llama, prompts, max_new_tokens=12, eos_token_id=None)
    new = free[:, 9:]
    # Row 0's 4th new token becomes EOS; take one row 1 never produces before its end.
    eos = int(new[0, 3])
    assert eos not in new[1, :].tolist() or new[1].tolist().index(eos) > 3
    out = generate(llama, prompts, max_new_tokens=12, eos_token_id=[eos, 511], pad_token_id=7,
                   return_dict=True)
    stop = new[0].tolist().index(eos)
    np.testing.assert_array_equal(out.sequences[0, 9:9 + stop + 1], new[0, :stop + 1])
    np.testing.assert_array_equal(out.sequences[0, 9 + stop + 1:], 7)
    np.testing.assert_array_equal(out.new_token_ids(0), new[0, :stop + 1])
    row1_stop = new[1].tolist().index(eos) if eos in new[1].tolist() else 11
    np.testing.assert_array_equal(out.sequences[1, 9:9 + row1_stop + 1],
                                  new[1, :row1_stop + 1])


def test_generation_ends_when_every_row_has_stopped(llama):
    prompts = _prompts(3)
    free = generate(llama, prompts, max_new_tokens=12, eos_token_id=None)[:, 9:]
    eos = sorted({int(free[0, 1]), int(free[1, 2])})
    out = generate(llama, prompts, max_new_tokens=12, eos_token_id=eos)
    last_stop = max(min(free[r].tolist().index(e) for e in eos if e in free[r].tolist())
                    for r in range(2))
    assert out.shape[1] == 9 + last_stop + 1 < 9 + 12


def test_a_seed_fixes_the_sample_and_top_k_1_is_greedy(llama):
    prompts = _prompts(4)
    kw = dict(max_new_tokens=10, eos_token_id=None, do_sample=True, top_k=0)
    first = generate(llama, prompts, seed=11, **kw)
    assert np.array_equal(first, generate(llama, prompts, seed=11, **kw))
    assert not np.array_equal(first, generate(llama, prompts, seed=12, **kw))
    greedy = generate(llama, prompts, max_new_tokens=10, eos_token_id=None)
    top1 = generate(llama, prompts, max_new_tokens=10, eos_token_id=None, do_sample=True,
                    top_k=1, seed=5)
    np.testing.assert_array_equal(top1, greedy)


def test_repetition_penalty_reduces_repeats(llama):
    expected = load_file(str(MODEL_FIXTURES / "llama" / "expected.safetensors"))
    prompt, mask = expected["prompt_ids"], expected["prompt_mask"]
    kw = dict(attention_mask=mask, max_new_tokens=16, eos_token_id=None)
    plain = generate(llama, prompt, **kw)[:, 8:]
    penalised = generate(llama, prompt, repetition_penalty=50.0, **kw)[:, 8:]
    for row in range(2):
        assert len(set(plain[row].tolist())) < 16  # greedy repeats itself here
        assert len(set(penalised[row].tolist())) > len(set(plain[row].tolist()))


def test_another_prompt_length_of_the_bucket_reuses_the_compiled_shapes(llama):
    calls = []
    cache, step = step_bucket(llama, 2, 9 + 10)
    original = type(step).__call__

    def spy(self, ids, positions, slot, key_mask):
        calls.append((np.shape(ids), np.shape(key_mask)))
        return original(self, ids, positions, slot, key_mask)

    type(step).__call__ = spy
    try:
        before = compiled_buckets(llama)["cache"]
        generate(llama, _prompts(6, (3, 9)), max_new_tokens=10, eos_token_id=None)
        generate(llama, _prompts(7, (12, 14)), max_new_tokens=20, eos_token_id=None)
    finally:
        type(step).__call__ = original
    # Prompts of 9 and 14 tokens share the 16-token prefill, both runs the 64-slot cache.
    assert compiled_buckets(llama)["cache"] == before
    assert {shape for shape in calls} == {((2, 16), (2, 64)), ((2, 1), (2, 64))}


def test_model_generate_is_the_functional_generate(llama):
    prompts = _prompts(8)
    config = GenerationConfig(max_new_tokens=5, eos_token_id=None)
    np.testing.assert_array_equal(llama.generate(prompts, config),
                                  generate(llama, prompts, config))


def test_model_generate_needs_no_import_of_mf_generate():
    # A fresh interpreter that never imports mf_generate: the entry point finds it.
    code = ("import sys\n"
            "from mf_models import AutoModelForCausalLM\n"
            "model = AutoModelForCausalLM.from_config('llama_debug')\n"
            "assert 'mf_generate' not in sys.modules\n"
            "print(model.generate([[5, 6, 7]], max_new_tokens=2).tolist())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    ids = json.loads(result.stdout.strip().splitlines()[-1])
    assert ids[0][:3] == [5, 6, 7] and len(ids[0]) == 5


def test_model_generate_without_mf_generate_installed_says_so(llama, monkeypatch):
    import importlib.metadata

    from mf_models import generate_seam

    monkeypatch.setattr(generate_seam, "_generate", None)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [])
    with pytest.raises(ModelError, match="mf-generate, which is not installed") as info:
        llama.generate([[5, 6]])
    assert "\n" not in str(info.value) and info.value.exit_code == 1


def _one_line(exc_info, *fragments):
    text = str(exc_info.value)
    assert "\n" not in text
    for fragment in fragments:
        assert fragment in text
    assert exc_info.value.exit_code == 2


def test_a_prompt_longer_than_the_positions_is_refused(llama):
    with pytest.raises(GenerateConfigError) as info:
        generate(llama, [[5] * 130], max_new_tokens=4)
    _one_line(info, "130 tokens", "seq_length(128)")
    with pytest.raises(GenerateConfigError) as info:
        generate(llama, [[5] * 100], max_new_tokens=40)
    _one_line(info, "prompt(100) + max_new_tokens(40) = 140", "seq_length(128)")


def test_bad_settings_and_inputs_are_one_line_errors(llama):
    with pytest.raises(GenerateConfigError) as info:
        generate(llama, [[5, 6]], max_new_tokens=0)
    _one_line(info, "max_new_tokens=0")
    with pytest.raises(GenerateConfigError) as info:
        generate(llama, [[5, 6]], do_sample=True, top_p=1.5)
    _one_line(info, "top_p=1.5", "(0, 1]")
    with pytest.raises(GenerateConfigError) as info:
        generate(llama, [[5, 6]], do_sample=True, temperature=0.0)
    _one_line(info, "temperature=0.0")
    with pytest.raises(GenerateConfigError) as info:
        generate(llama, [[5, 6], []])
    _one_line(info, "prompt 1 is empty")
    with pytest.raises(GenerateConfigError) as info:
        generate(llama, [[5, 6], [1, 2]], streamer=object())
    _one_line(info, "streamer needs batch size 1")
    with pytest.raises(ModelConfigError, match=r"token id 600 is outside the vocabulary"):
        generate(llama, [[5, 600]])


def test_cached_buckets_are_bounded_by_count_and_bytes(llama, monkeypatch):
    from mf_generate import generation

    monkeypatch.setattr(generation, "_CACHED", type(generation._CACHED)())
    for length in (64, 128):  # new caches only, nothing compiles
        step_bucket(llama, 4, length)
    assert [k for k in compiled_buckets(llama)["cache"]] == [(4, 64), (4, 128)]
    monkeypatch.setattr(generation, "MAX_CACHED_BUCKETS", 1)
    step_bucket(llama, 8, 64)
    assert compiled_buckets(llama)["cache"] == [(8, 64)]
    monkeypatch.setattr(generation, "MAX_CACHED_BUCKETS", 4)
    monkeypatch.setattr(generation, "MAX_CACHED_BYTES", 1)  # only the newest can stay
    step_bucket(llama, 2, 128)
    assert compiled_buckets(llama)["cache"] == [(2, 128)]
