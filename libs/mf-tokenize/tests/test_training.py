"""Training from an iterator of strings: the files are standard (transformers and
sentencepiece read them and agree with us) and the vocabulary has the requested size."""

from __future__ import annotations

import pytest

from mf_tokenize import (
    AutoTokenizer,
    GPT2Tokenizer,
    LlamaTokenizer,
    TokenizerConfigError,
    TokenizerInputError,
    train_bpe,
    train_sentencepiece,
)


def test_train_bpe_writes_gpt2_files(training_texts, sample_texts, tmp_path):
    from transformers import GPT2Tokenizer as ReferenceGPT2

    tok = train_bpe(iter(training_texts), 1200, tmp_path)
    assert isinstance(tok, GPT2Tokenizer)
    assert len(tok) == tok.vocab_size == 1200
    assert len(tok.bpe.merges) == 1200 - 256 - 1
    assert tok.eos_token == "<|endoftext|>" and tok.eos_token_id == 1199
    reference = ReferenceGPT2.from_pretrained(str(tmp_path))
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for text in sample_texts[:120]:
        ids = tok.encode(text)
        assert ids == reference(text)["input_ids"] == loaded.encode(text), text
        assert tok.decode(ids) == text
    # Merges learned from the corpus compress it: fewer tokens than bytes.
    text = "\n".join(training_texts[:3])
    assert len(tok.encode(text)) < len(text.encode()) / 2


def test_train_bpe_is_deterministic_and_checks_its_input(training_texts):
    a = train_bpe(training_texts[:5], 400)
    b = train_bpe(list(training_texts[:5]), 400)
    assert a.bpe.merges == b.bpe.merges
    with pytest.raises(TokenizerConfigError, match=r"vocab_size=100 is too small: 256 byte"):
        train_bpe(training_texts, 100)
    with pytest.raises(TokenizerInputError, match="not one str"):
        train_bpe("just a string", 300)
    with pytest.raises(TokenizerInputError, match=r"texts\[1\] must be a str, got int"):
        train_bpe(["ok", 5], 300)


def test_train_sentencepiece_llama_style(training_texts, sample_texts, tmp_path):
    import sentencepiece as spm
    from transformers import LlamaTokenizer as ReferenceLlama

    tok = train_sentencepiece(iter(training_texts), 3000, tmp_path, character_coverage=0.99)
    assert isinstance(tok, LlamaTokenizer)
    assert tok.vocab_size == 3000 and tok.unk_token_id == 0
    assert (tok.bos_token_id, tok.eos_token_id) == (1, 2)
    assert tok.settings.byte_fallback and tok.settings.normalizer_name == "identity"
    assert not tok.settings.remove_extra_whitespaces and tok.settings.model_type == "bpe"
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "tokenizer.model"))
    reference = ReferenceLlama.from_pretrained(str(tmp_path))
    for text in sample_texts[:120]:
        ids = tok.encode(text)
        assert ids == [1, *sp.encode(text)]
        assert tok.decode(ids, skip_special_tokens=True) == text  # lossless (byte fallback)
        if not text[:1].isspace():
            assert ids == reference(text)["input_ids"], text


def test_train_sentencepiece_unigram_and_errors(training_texts):
    tok = train_sentencepiece(training_texts[:4], 600, model_type="unigram")
    assert tok.settings.model_type == "unigram" and tok.vocab_size == 600
    assert tok.decode(tok.encode("def f(x): return x"), skip_special_tokens=True) == \
        "def f(x): return x"
    with pytest.raises(TokenizerConfigError, match="model_type='wordpiece'; allowed"):
        train_sentencepiece(training_texts, 600, model_type="wordpiece")
    with pytest.raises(TokenizerConfigError, match="vocab_size=100 is too small"):
        train_sentencepiece(training_texts, 100)
    with pytest.raises(TokenizerConfigError, match="vocab_size=900000 is more than this text"):
        train_sentencepiece(["tiny corpus"], 900000)
    with pytest.raises(TokenizerConfigError, match="smaller than the .* characters"):
        train_sentencepiece(training_texts, 300)
