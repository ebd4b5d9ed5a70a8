"""LLaMA and T5: ids are SentencePiece's own (the tokenizers these models were trained with),
framed as the families do, and identical to transformers where transformers follows
SentencePiece. Decoding matches transformers' decoders on the same ids."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mf_tokenize import LlamaTokenizer, T5Tokenizer


@pytest.fixture(scope="module")
def sp_llama(llama_dir):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(llama_dir / "tokenizer.model"))


@pytest.fixture(scope="module")
def llama(llama_dir):
    return LlamaTokenizer.from_pretrained(llama_dir)


@pytest.fixture(scope="module")
def reference_llama(llama_dir):
    from transformers import LlamaTokenizer as ReferenceLlama

    return {legacy: ReferenceLlama.from_pretrained(str(llama_dir), legacy=legacy)
            for legacy in (True, False)}


def test_llama_ids_are_sentencepiece_ids_after_bos(llama, sp_llama, sample_texts):
    for text in sample_texts:
        encoding = llama(text)
        assert encoding["input_ids"] == [sp_llama.bos_id(), *sp_llama.encode(text)], text
        assert encoding["attention_mask"] == [1] * len(encoding["input_ids"])
        assert llama.tokenize(text) == sp_llama.encode(text, out_type=str)
        assert llama.decode(encoding["input_ids"], skip_special_tokens=True) == text


def _starts_a_chunk_with_space(tok, text):
    return any(chunk[:1].isspace() for chunk, _, token_id in tok._split_on_added_tokens(text)
               if token_id is None)


@pytest.mark.parametrize("legacy", [True, False])
def test_llama_matches_transformers(llama_dir, reference_llama, sample_texts, legacy):
    ours = LlamaTokenizer.from_pretrained(llama_dir, legacy=legacy)
    reference = reference_llama[legacy]
    texts = sample_texts + ["x</s>y", "hello <s> world", "a\n</s>\nb", "<s>hi</s>", "</s>"]
    compared = 0
    for text in texts:
        ids = ours(text)["input_ids"]
        for skip in (True, False):  # the decoders agree on every sequence of ids
            assert ours.decode(ids, skip_special_tokens=skip) == reference.decode(
                ids, skip_special_tokens=skip), (text, skip)
        # transformers' Metaspace pre-tokenizer skips SentencePiece's dummy prefix when a
        # chunk already starts with whitespace; we follow SentencePiece there (see above).
        if _starts_a_chunk_with_space(ours, text):
            continue
        assert ids == reference(text)["input_ids"], text
        compared += 1
    assert compared > 200  # most code lines start with indentation and are skipped


def test_llama_framing_options(llama_dir, sp_llama):
    both = LlamaTokenizer.from_pretrained(llama_dir, add_bos_token=True, add_eos_token=True)
    body = sp_llama.encode("hi there")
    assert both.encode("hi there") == [1, *body, 2]
    assert both.encode("hi there", "x") == [1, *body, 2, 1, *sp_llama.encode("x"), 2]
    assert both.encode("hi there", add_special_tokens=False) == body
    assert LlamaTokenizer.from_pretrained(llama_dir, add_bos_token=False).encode("hi") == \
        sp_llama.encode("hi")
    assert both.padding_side == "left"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 3999), max_size=30))
def test_llama_decodes_any_ids_like_transformers(llama, reference_llama, ids):
    # Byte-fallback runs that are not UTF-8 become one U+FFFD per byte, as in tokenizers.
    assert llama.decode(ids) == reference_llama[True].decode(ids)


# ---------------------------------------------------------------------------- T5
@pytest.fixture(scope="module")
def sp_t5(t5_dir):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(t5_dir / "spiece.model"))


@pytest.fixture(scope="module")
def t5(t5_dir):
    return T5Tokenizer.from_pretrained(t5_dir)


@pytest.fixture(scope="module")
def reference_t5(t5_dir):
    from transformers import T5Tokenizer as ReferenceT5

    return ReferenceT5.from_pretrained(str(t5_dir))


def test_t5_ids_are_sentencepiece_ids_then_eos(t5, sp_t5, sample_texts):
    for text in sample_texts:
        assert t5.encode(text) == [*sp_t5.encode(text), sp_t5.eos_id()], text


def test_t5_matches_transformers_up_to_viterbi_ties(t5, sp_t5, reference_t5, sample_texts):
    """transformers runs its own unigram Viterbi; where it picks a different segmentation,
    both must have the same total score (a tie SentencePiece breaks its own way)."""

    def score(ids):
        return sum(sp_t5.get_score(i) for i in ids if i < sp_t5.get_piece_size())

    texts = sample_texts + ["x</s>y", "<extra_id_0> hi <extra_id_1> there", "a <pad> b"]
    ties = 0
    for text in texts:
        got, want = t5(text), reference_t5(text)
        assert got["attention_mask"] == [1] * len(got["input_ids"])
        if got["input_ids"] != want["input_ids"]:
            assert score(got["input_ids"]) == pytest.approx(score(want["input_ids"])), text
            ties += 1
        for skip in (True, False):
            assert t5.decode(got["input_ids"], skip_special_tokens=skip) == reference_t5.decode(
                got["input_ids"], skip_special_tokens=skip), (text, skip)
    assert ties < len(texts) // 20


def test_t5_sentinels(t5, sp_t5, reference_t5):
    size = sp_t5.get_piece_size()
    assert t5.vocab_size == len(t5) == size + 100
    assert t5.convert_tokens_to_ids("<extra_id_0>") == size + 99
    assert t5.convert_tokens_to_ids("<extra_id_99>") == size
    for token in ("<extra_id_0>", "<extra_id_7>", "<extra_id_99>"):
        assert t5.convert_tokens_to_ids(token) == reference_t5.convert_tokens_to_ids(token)
    assert "<extra_id_5>" in t5.all_special_tokens
    assert t5.pad_token_id == 0 and t5.eos_token_id == 1 and t5.unk_token_id == 2
    assert t5.encode("a", "b") == [*sp_t5.encode("a"), 1, *sp_t5.encode("b"), 1]
