"""The shared API (call, padding, truncation, tensors, special tokens) and its bad-input
errors: one line that names the value and what is allowed."""

from __future__ import annotations

import numpy as np
import pytest

from mf_tokenize import (
    BertTokenizer,
    GPT2Tokenizer,
    LlamaTokenizer,
    TokenizerConfigError,
    TokenizerInputError,
)


@pytest.fixture(scope="module")
def bert(bert_dir):
    return BertTokenizer.from_pretrained(bert_dir)


@pytest.fixture(scope="module")
def llama(llama_dir):
    return LlamaTokenizer.from_pretrained(llama_dir, pad_token="<unk>")


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


@pytest.mark.parametrize("bad", [3, None, b"bytes", 1.5, ["ok", 7], ("ok", None)])
def test_non_string_input_is_one_line_error(bert, bad):
    with pytest.raises(TokenizerInputError) as caught:
        bert(bad)
    message = one_line(caught)
    assert "must be a str" in message and type(bad if not isinstance(bad, (list, tuple))
                                               else bad[1]).__name__ in message
    assert caught.value.exit_code == 2 and isinstance(caught.value, TypeError)


def test_other_bad_arguments(bert, llama):
    with pytest.raises(TokenizerInputError, match=r"text_pair\[1\] must be a str"):
        bert(["a", "b"], ["c", 5])
    with pytest.raises(TokenizerInputError, match="text_pair must be a list as long as text"):
        bert(["a", "b"], ["c"])
    with pytest.raises(TokenizerConfigError, match="padding='yes'; allowed: False, True"):
        bert("a", padding="yes")
    with pytest.raises(TokenizerConfigError, match="truncation='some'; allowed"):
        bert("a", truncation="some")
    with pytest.raises(TokenizerConfigError, match="return_tensors='pt'; allowed: None, 'np'"):
        bert("a", return_tensors="pt")
    with pytest.raises(TokenizerConfigError, match="max_length=-1; allowed: an int >= 0"):
        bert("a", max_length=-1)
    with pytest.raises(TokenizerConfigError, match="padding='max_length' needs max_length"):
        llama("a", padding="max_length")
    with pytest.raises(TokenizerConfigError, match="needs sequences of one length"):
        bert(["a", "a b c d"], return_tensors="np")
    with pytest.raises(TokenizerInputError, match="outside the vocabulary"):
        bert.decode([len(bert) + 5])
    with pytest.raises(TokenizerInputError, match="token ids must be ints"):
        bert.decode(["a"])


def test_max_length_smaller_than_the_special_tokens(bert, llama):
    with pytest.raises(TokenizerConfigError) as caught:
        bert("hello", truncation=True, max_length=1)
    assert one_line(caught) == (
        "max_length=1 is smaller than the 2 special tokens BertTokenizer adds ([CLS] [SEP])")
    with pytest.raises(TokenizerConfigError, match="max_length=2 is smaller than the 3 special"):
        bert("a", "b", truncation=True, max_length=2)
    assert bert("hello world", truncation=True, max_length=2)["input_ids"] == [
        bert.cls_token_id, bert.sep_token_id]
    assert llama("hello", truncation=True, max_length=1)["input_ids"] == [llama.bos_token_id]


def test_padding_without_a_pad_token(gpt2_dir):
    tok = GPT2Tokenizer.from_pretrained(gpt2_dir)
    assert tok.pad_token is None
    with pytest.raises(TokenizerConfigError, match="padding needs a pad token.*tok.pad_token"):
        tok(["a", "a b c"], padding=True)
    tok.pad_token = tok.eos_token
    assert tok.pad_token_id == tok.eos_token_id
    assert tok(["a", "a b c"], padding=True)["attention_mask"][0][-1] == 0


def test_padding_sides_lengths_and_multiples(llama):
    texts = ["short", "a somewhat longer text"]
    right = llama(texts, padding=True, padding_side="right")
    left = llama(texts, padding=True)  # LLaMA pads on the left by default
    n_short = len(llama("short")["input_ids"])
    width = len(llama(texts[1])["input_ids"])
    pad = llama.pad_token_id
    assert right["input_ids"][0] == llama("short")["input_ids"] + [pad] * (width - n_short)
    assert left["input_ids"][0] == [pad] * (width - n_short) + llama("short")["input_ids"]
    assert left["attention_mask"][0] == [0] * (width - n_short) + [1] * n_short
    fixed = llama(texts, padding="max_length", max_length=32, truncation=True)
    assert [len(r) for r in fixed["input_ids"]] == [32, 32]
    multiple = llama(texts, padding=True, pad_to_multiple_of=8)
    assert len(multiple["input_ids"][0]) % 8 == 0 >= 0 and len(multiple["input_ids"][0]) >= width
    cut = llama(texts, truncation=True, max_length=3)
    assert [len(r) for r in cut["input_ids"]] == [min(3, n_short), 3]


def test_numpy_tensors(bert):
    out = bert(["a b", "c d e f"], padding=True, return_tensors="np")
    assert isinstance(out["input_ids"], np.ndarray) and out["input_ids"].dtype == np.int64
    assert out["input_ids"].shape == out["attention_mask"].shape == out["token_type_ids"].shape
    single = bert("a b", return_tensors="np")
    assert single.input_ids.shape == (1, len(bert("a b")["input_ids"]))
    assert bert.batch_decode(out["input_ids"], skip_special_tokens=True) == ["a b", "c d e f"]
    assert bert.decode(out["input_ids"][0], skip_special_tokens=True) == "a b"


def test_mindspore_tensors_only_when_asked(bert):
    import sys

    out = bert(["a b", "c"], padding=True, return_tensors="ms")
    assert "mindspore" in sys.modules
    import mindspore

    assert isinstance(out["input_ids"], mindspore.Tensor)
    assert out["input_ids"].shape == (2, len(bert("a b")["input_ids"]))
    assert bert.batch_decode(out["input_ids"], skip_special_tokens=True) == ["a b", "c"]


def test_special_tokens_and_conversions(bert):
    assert bert.special_tokens_map == {"unk_token": "[UNK]", "sep_token": "[SEP]",
                                       "pad_token": "[PAD]", "cls_token": "[CLS]",
                                       "mask_token": "[MASK]"}
    assert set(bert.all_special_ids) == {bert.convert_tokens_to_ids(t)
                                        for t in bert.all_special_tokens}
    tokens = bert.tokenize("Hello [MASK] world")
    assert "[MASK]" in tokens
    ids = bert.convert_tokens_to_ids(tokens)
    assert bert.convert_ids_to_tokens(ids) == tokens
    assert bert.convert_tokens_to_ids("definitely-not-a-token") == bert.unk_token_id
    assert bert.encode("Hello [MASK] world") == [bert.cls_token_id, *ids, bert.sep_token_id]
    assert bert.get_vocab()["[MASK]"] == bert.mask_token_id
    assert bert.num_special_tokens_to_add() == 2 and bert.num_special_tokens_to_add(True) == 3


def test_add_tokens(gpt2_dir):
    tok = GPT2Tokenizer.from_pretrained(gpt2_dir)
    size = len(tok)
    assert tok.add_tokens(["<a>", "<b>", "<a>"]) == 2
    assert tok.convert_tokens_to_ids(["<a>", "<b>"]) == [size, size + 1]
    assert tok.encode("x<a>y<b>") == [*tok.encode("x"), size, *tok.encode("y"), size + 1]
    assert tok.add_special_tokens({"additional_special_tokens": ["<c>"]}) == 1
    assert tok.decode(tok.encode("q<c>r"), skip_special_tokens=True) == "qr"
    with pytest.raises(TokenizerConfigError, match="unknown special token role 'foo_token'"):
        tok.add_special_tokens({"foo_token": "<f>"})
