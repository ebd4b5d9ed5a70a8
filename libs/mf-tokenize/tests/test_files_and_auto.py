"""Saving and loading the standard files, AutoTokenizer, presets, and one-line errors for
missing or corrupt vocabulary files."""

from __future__ import annotations

import json
import shutil

import pytest

from mf_tokenize import (
    AutoTokenizer,
    BertTokenizer,
    BloomTokenizer,
    ChatGLM2Tokenizer,
    ChatGLMTokenizer,
    CLIPTokenizer,
    CorruptVocabError,
    GPT2Tokenizer,
    LlamaTokenizer,
    PanguAlphaTokenizer,
    T5Tokenizer,
    TokenizerConfigError,
    UnknownTokenizerError,
    VocabFileNotFoundError,
)

FAMILIES = {
    "gpt2": (GPT2Tokenizer, "GPT2Tokenizer", ["vocab.json", "merges.txt"]),
    "bloom": (BloomTokenizer, None, ["tokenizer.json"]),
    "clip": (CLIPTokenizer, "CLIPTokenizer", ["vocab.json", "merges.txt"]),
    "bert": (BertTokenizer, "BertTokenizer", ["vocab.txt"]),
    "llama": (LlamaTokenizer, "LlamaTokenizer", ["tokenizer.model"]),
    "t5": (T5Tokenizer, "T5Tokenizer", ["spiece.model"]),
    "glm": (ChatGLMTokenizer, None, ["ice_text.model"]),
    "glm2": (ChatGLM2Tokenizer, None, ["tokenizer.model"]),
    "pangu": (PanguAlphaTokenizer, None, ["vocab.model"]),
}

PROBES = ["Hello world!  Two  spaces", "中文和English混合 😀", "\tcode = f(x)\n", "x</s>y<pad>"]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_save_then_load_gives_the_same_tokenizer(family, request, tmp_path):
    cls, reference_class, files = FAMILIES[family]
    source = request.getfixturevalue(f"{family}_dir")
    tok = cls.from_pretrained(source)
    tok.add_tokens(["<new_token>"])
    written = {p.name for p in tok.save_pretrained(tmp_path / "saved")}
    assert written == {*files, "tokenizer_config.json", "special_tokens_map.json"}
    assert not [p for p in (tmp_path / "saved").iterdir() if p.name.endswith(".tmp")]
    again = AutoTokenizer.from_pretrained(tmp_path / "saved")
    assert type(again) is cls
    assert again.special_tokens_map == tok.special_tokens_map
    assert len(again) == len(tok)
    for text in [*PROBES, "with <new_token> inside"]:
        assert again(text) == tok(text), text
    if reference_class is not None:  # transformers reads what we wrote
        import transformers

        reference = getattr(transformers, reference_class).from_pretrained(
            str(tmp_path / "saved"))
        for text in PROBES:
            assert tok(text)["input_ids"] == reference(text)["input_ids"], text


def test_bloom_save_writes_a_tokenizer_json_the_rust_library_reads(bloom_dir, tmp_path):
    from tokenizers import Tokenizer

    tok = BloomTokenizer.from_pretrained(bloom_dir)
    tok.save_pretrained(tmp_path)
    rust = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    for text in PROBES:
        assert rust.encode(text).ids == tok.encode(text)


def test_a_failed_save_leaves_the_directory_as_it_was(gpt2_dir, tmp_path, monkeypatch):
    target = tmp_path / "out"
    target.mkdir()
    (target / "vocab.json").write_text("old")
    tok = GPT2Tokenizer.from_pretrained(gpt2_dir)
    monkeypatch.setattr(GPT2Tokenizer, "_config", lambda self: {"bad": object()})
    with pytest.raises(TypeError):
        tok.save_pretrained(target)
    assert sorted(p.name for p in target.iterdir()) == ["vocab.json"]
    assert (target / "vocab.json").read_text() == "old"


# ---------------------------------------------------------------------------- AutoTokenizer
def test_auto_tokenizer_picks_the_class(gpt2_dir, bloom_dir, bert_dir, llama_dir, glm2_dir,
                                        tmp_path):
    assert type(AutoTokenizer.from_pretrained(gpt2_dir)) is GPT2Tokenizer  # from the files
    assert type(AutoTokenizer.from_pretrained(bloom_dir)) is BloomTokenizer  # BloomTokenizerFast
    assert type(AutoTokenizer.from_pretrained(bert_dir)) is BertTokenizer
    assert type(AutoTokenizer.from_pretrained(llama_dir)) is LlamaTokenizer
    # chatglm2-6b's tokenizer_config.json also says "ChatGLMTokenizer".
    glm2 = tmp_path / "glm2"
    shutil.copytree(glm2_dir, glm2)
    (glm2 / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "ChatGLMTokenizer"}))
    assert type(AutoTokenizer.from_pretrained(glm2)) is ChatGLM2Tokenizer


def test_presets_resolve_under_mf_home(gpt2_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MF_HOME", str(tmp_path))
    shutil.copytree(gpt2_dir, tmp_path / "gpt2")
    tok = AutoTokenizer.from_pretrained("gpt2")
    assert type(tok) is GPT2Tokenizer and tok.model_max_length == 1024
    assert GPT2Tokenizer.from_pretrained("gpt2").encode("hi") == tok.encode("hi")
    with pytest.raises(TokenizerConfigError, match="'gpt2' is a GPT2Tokenizer, not a Bert"):
        BertTokenizer.from_pretrained("gpt2")


def test_a_preset_without_files_says_which_files_go_where(tmp_path, monkeypatch):
    monkeypatch.setenv("MF_HOME", str(tmp_path))
    with pytest.raises(VocabFileNotFoundError) as caught:
        AutoTokenizer.from_pretrained("llama_7b")
    message = str(caught.value)
    assert "\n" not in message
    assert "tokenizer.model" in message and str(tmp_path / "llama_7b") in message
    assert caught.value.exit_code == 2 and isinstance(caught.value, FileNotFoundError)
    with pytest.raises(VocabFileNotFoundError, match="vocab.json and merges.txt"):
        AutoTokenizer.from_pretrained("clip_vit_b_32")


def test_unknown_names_and_paths(tmp_path):
    with pytest.raises(UnknownTokenizerError, match="did you mean llama_7b"):
        AutoTokenizer.from_pretrained("llama_7")
    with pytest.raises(VocabFileNotFoundError, match="tokenizer directory not found"):
        AutoTokenizer.from_pretrained(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TokenizerConfigError, match="no tokenizer_config.json"):
        AutoTokenizer.from_pretrained(tmp_path / "empty")
    (tmp_path / "model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(TokenizerConfigError, match="a pickle file"):
        AutoTokenizer.from_pretrained(tmp_path / "model.bin")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "tokenizer_config.json").write_text('{"tokenizer_class": "FooTokenizer"}')
    with pytest.raises(UnknownTokenizerError, match="'FooTokenizer' is not supported"):
        AutoTokenizer.from_pretrained(tmp_path / "odd")


# ---------------------------------------------------------------------------- bad files
def _copy(src, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    return out


def test_missing_and_corrupt_byte_level_files(gpt2_dir, tmp_path):
    d = _copy(gpt2_dir, tmp_path)
    (d / "merges.txt").unlink()
    with pytest.raises(VocabFileNotFoundError, match=r"merges file not found: .*merges.txt"):
        GPT2Tokenizer.from_pretrained(d)
    shutil.copy(gpt2_dir / "merges.txt", d / "merges.txt")
    (d / "vocab.json").write_text('{"a": 0, ')
    with pytest.raises(CorruptVocabError, match=r"vocab.json is not valid JSON \(line 1"):
        GPT2Tokenizer.from_pretrained(d)
    (d / "vocab.json").write_text('["not", "a", "dict"]')
    with pytest.raises(CorruptVocabError, match="must map each token to an int id"):
        GPT2Tokenizer.from_pretrained(d)


def test_merges_that_do_not_match_the_vocab(gpt2_dir, tmp_path):
    d = _copy(gpt2_dir, tmp_path)
    vocab = json.loads((d / "vocab.json").read_text())
    merges = (d / "merges.txt").read_text().splitlines()
    left, right = merges[5].split(" ")
    del vocab[left + right]
    (d / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(CorruptVocabError) as caught:
        GPT2Tokenizer.from_pretrained(d)
    assert "merges do not match the vocab" in str(caught.value)
    assert repr(left + right) in str(caught.value) and "\n" not in str(caught.value)
    (d / "merges.txt").write_text("#version: 0.2\na b c\n")
    with pytest.raises(CorruptVocabError, match="merges.txt line 2: expected 'left right'"):
        GPT2Tokenizer.from_pretrained(d)


def test_corrupt_sentencepiece_and_other_files(llama_dir, bert_dir, bloom_dir, tmp_path):
    d = _copy(llama_dir, tmp_path)
    (d / "tokenizer.model").write_bytes(b"\x0a\x05hello-this-is-not-a-model")
    with pytest.raises(CorruptVocabError, match=r"tokenizer.model is not a SentencePiece model"):
        LlamaTokenizer.from_pretrained(d)
    (d / "tokenizer.model").unlink()
    with pytest.raises(VocabFileNotFoundError, match="tokenizer.model"):
        LlamaTokenizer.from_pretrained(d)
    b = tmp_path / "bert"
    b.mkdir()
    (b / "vocab.txt").write_text("[UNK]\nhello\nhello\n")
    with pytest.raises(CorruptVocabError, match="'hello' appears on lines 2 and 3"):
        BertTokenizer.from_pretrained(b)
    j = tmp_path / "json"
    j.mkdir()
    raw = json.loads((bloom_dir / "tokenizer.json").read_text())
    raw["model"] = {"type": "WordPiece", "vocab": {}}
    (j / "tokenizer.json").write_text(json.dumps(raw))
    with pytest.raises(CorruptVocabError, match="model type 'WordPiece' is not supported"):
        BloomTokenizer.from_pretrained(j)
    (j / "tokenizer_config.json").write_text("{oops")
    with pytest.raises(CorruptVocabError, match="tokenizer_config.json .* is not valid JSON"):
        BloomTokenizer.from_pretrained(j)


def test_byte_level_tokenizer_json_without_vocab_json(gpt2_dir, tmp_path):
    """A GPT-2 style tokenizer.json alone: GPT2Tokenizer reads its model, and AutoTokenizer's
    generic byte-level reader gives the same ids as the Rust library."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    rust = Tokenizer(models.BPE.from_file(str(gpt2_dir / "vocab.json"),
                                          str(gpt2_dir / "merges.txt")))
    rust.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    rust.decoder = decoders.ByteLevel()
    rust.save(str(tmp_path / "tokenizer.json"))
    gpt2 = GPT2Tokenizer.from_pretrained(tmp_path)
    generic = AutoTokenizer.from_pretrained(tmp_path)
    for text in [*PROBES, "  spaces\t\ttabs\n\nlines  "]:
        assert gpt2.encode(text) == generic.encode(text) == rust.encode(text).ids, text


def test_a_sentencepiece_model_that_is_not_chatglm(llama_dir):
    with pytest.raises(CorruptVocabError, match=r"has no '\[gMASK\]' piece"):
        ChatGLMTokenizer(
            (llama_dir / "tokenizer.model").read_bytes(), source=str(llama_dir / "x.model"))
