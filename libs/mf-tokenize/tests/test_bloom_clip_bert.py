"""BLOOM (tokenizer.json), CLIP and BERT: identical to Hugging Face tokenizers/transformers
on vocabularies trained in the session, including pairs, truncation and decoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mf_tokenize import BertTokenizer, BloomTokenizer, CLIPTokenizer


def assert_same_encodings(ours, reference, texts, keys=("input_ids", "attention_mask")):
    for text in texts:
        got, want = ours(text), reference(text)
        for key in keys:
            assert got[key] == want[key], (key, text)
        assert set(got) == set(want) & {"input_ids", "attention_mask", "token_type_ids"}
        for skip in (True, False):
            assert ours.decode(got["input_ids"], skip_special_tokens=skip) == reference.decode(
                want["input_ids"], skip_special_tokens=skip), (skip, text)


# ---------------------------------------------------------------------------- BLOOM
@pytest.fixture(scope="module")
def bloom(bloom_dir):
    return BloomTokenizer.from_pretrained(bloom_dir)


def test_bloom_matches_rust_tokenizers_and_transformers(bloom, bloom_dir, sample_texts):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    rust = Tokenizer.from_file(str(bloom_dir / "tokenizer.json"))
    reference = PreTrainedTokenizerFast(
        tokenizer_file=str(bloom_dir / "tokenizer.json"), unk_token="<unk>", bos_token="<s>",
        eos_token="</s>", pad_token="<pad>", padding_side="left")
    assert_same_encodings(bloom, reference, sample_texts)
    for text in sample_texts[:40]:
        assert bloom.encode(text) == rust.encode(text).ids
    assert bloom.padding_side == "left"
    batch = sample_texts[:6]
    assert bloom(batch, padding=True)["input_ids"] == reference(batch, padding=True)["input_ids"]


def test_bloom_special_tokens_in_text(bloom):
    ids = bloom.encode("a</s>b<pad>")
    assert bloom.eos_token_id in ids and bloom.pad_token_id in ids
    assert bloom.decode(ids, skip_special_tokens=True) == "ab"


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=50))
def test_bloom_round_trip_and_ids_in_vocab(bloom, text):
    ids = bloom.encode(text)
    assert all(0 <= i < len(bloom) for i in ids)
    assert bloom.decode(ids) == text


# ---------------------------------------------------------------------------- CLIP
@pytest.fixture(scope="module")
def clip_pair(clip_dir):
    from transformers import CLIPTokenizer as ReferenceCLIP

    return CLIPTokenizer.from_pretrained(clip_dir), ReferenceCLIP.from_pretrained(str(clip_dir))


def test_clip_matches_transformers(clip_pair, sample_texts):
    ours, reference = clip_pair
    assert_same_encodings(ours, reference, sample_texts)
    ids = ours("A photo of a CAT")["input_ids"]
    assert ids[0] == ours.bos_token_id and ids[-1] == ours.eos_token_id


def test_clip_pairs_and_fixed_length_match_transformers(clip_pair, sample_texts):
    ours, reference = clip_pair
    for a, b in zip(sample_texts[:20], sample_texts[20:40], strict=True):
        assert ours(a, b)["input_ids"] == reference(a, b)["input_ids"]
    batch = sample_texts[:10]
    got = ours(batch, padding="max_length", truncation=True, max_length=77)
    want = reference(batch, padding="max_length", truncation=True, max_length=77)
    assert got["input_ids"] == want["input_ids"]
    assert got["attention_mask"] == want["attention_mask"]


# ---------------------------------------------------------------------------- BERT
@pytest.fixture(scope="module")
def bert_pair(bert_dir):
    from transformers import BertTokenizer as ReferenceBert

    return BertTokenizer.from_pretrained(bert_dir), ReferenceBert.from_pretrained(str(bert_dir))


def test_bert_matches_transformers(bert_pair, sample_texts):
    ours, reference = bert_pair
    assert_same_encodings(ours, reference, sample_texts,
                          keys=("input_ids", "attention_mask", "token_type_ids"))


def test_bert_basic_tokenizer_rules(bert_pair):
    ours, _ = bert_pair
    # Lower-cased, accents stripped, each CJK character and punctuation mark a word.
    assert ours.basic("Héllo, Wörld! 你好") == ["hello", ",", "world", "!", "你", "好"]
    assert ours.basic("a\u200bb\x00c\ufffdd") == ["abcd"]  # format/control chars removed


@pytest.mark.parametrize("strategy", ["longest_first", "only_first", "only_second"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_bert_pair_truncation_matches_transformers(bert_pair, sample_texts, strategy, side):
    ours, reference = bert_pair
    texts = [t for t in sample_texts if len(t) > 20][:24]
    for tok in (ours, reference):
        tok.truncation_side = side
    try:
        for a, b in zip(texts[::2], texts[1::2], strict=True):
            for max_length in (9, 16, 31):
                try:
                    want = reference(a, b, truncation=strategy, max_length=max_length)
                except Exception:  # noqa: BLE001 - the reference refuses; so must we
                    with pytest.raises(ValueError):
                        ours(a, b, truncation=strategy, max_length=max_length)
                    continue
                got = ours(a, b, truncation=strategy, max_length=max_length)
                assert dict(got) == dict(want), (a, b, max_length)
    finally:
        for tok in (ours, reference):
            tok.truncation_side = "right"


def test_bert_batch_of_pairs_with_padding_matches_transformers(bert_pair, sample_texts):
    ours, reference = bert_pair
    a, b = sample_texts[:8], sample_texts[8:16]
    got = ours(a, b, padding=True, truncation=True, max_length=40)
    want = reference(a, b, padding=True, truncation=True, max_length=40)
    assert dict(got) == dict(want)
