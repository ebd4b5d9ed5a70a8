"""ChatGLM (GLM-6B), ChatGLM2 and PanGu-Alpha. transformers 5 has no class for these
families (their tokenizers live in the model repositories), so each test restates the
published rules of the family's tokenizer code and runs them with sentencepiece (and jieba)
directly, as the reference."""

from __future__ import annotations

import pytest

from mf_tokenize import ChatGLM2Tokenizer, ChatGLMTokenizer, PanguAlphaTokenizer


def _texts(sample_texts):
    return sample_texts + ["tabs\tand\t\tmore", " " * 85 + "x", "a" + " " * 161 + "b",
                           "line\n\nbreaks\n", "[gMASK] in text <sop>"]


# ---------------------------------------------------------------------------- GLM-6B
def published_glm_encode(sp, text, num_image_tokens):
    """THUDM/chatglm-6b tokenization_chatglm.py, SPTokenizer.encode with its defaults."""
    text = text.replace("\n", "<n>")
    text = text.replace("\t", "<|tab|>")
    for i in range(80, 1, -1):
        text = text.replace(" " * i, f"<|blank_{i}|>")
    return [i + num_image_tokens for i in sp.encode(text)]


def published_glm_decode(sp, ids, num_image_tokens):
    text = sp.decode([i - num_image_tokens for i in ids if i >= num_image_tokens])
    text = text.replace("<n>", "\n").replace("<|tab|>", "\t")
    for i in range(2, 81):
        text = text.replace(f"<|blank_{i}|>", " " * i)
    return text


@pytest.mark.parametrize("num_image_tokens", [0, 20000])
def test_glm_follows_the_published_rules(glm_dir, sample_texts, num_image_tokens):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(glm_dir / "ice_text.model"))
    tok = ChatGLMTokenizer.from_pretrained(glm_dir, num_image_tokens=num_image_tokens)
    gmask = sp.piece_to_id("[gMASK]") + num_image_tokens
    sop = sp.piece_to_id("<sop>") + num_image_tokens
    for text in _texts(sample_texts):
        body = published_glm_encode(sp, text, num_image_tokens)
        ids = tok(text)["input_ids"]
        assert ids == [*body, gmask, sop], text
        assert tok.decode(ids) == published_glm_decode(sp, ids, num_image_tokens)
        assert tok.decode(body) == published_glm_decode(sp, body, num_image_tokens)
    assert tok.vocab_size == num_image_tokens + sp.get_piece_size()
    assert tok.padding_side == "left"
    assert tok.convert_tokens_to_ids("<eop>") == sp.piece_to_id("<eop>") + num_image_tokens


def test_glm_pair_and_whitespace_tokens(glm_dir):
    tok = ChatGLMTokenizer.from_pretrained(glm_dir)
    a, b = tok.encode("question", add_special_tokens=False), tok.encode("answer",
                                                                         add_special_tokens=False)
    gmask, sop, eop = (tok.convert_tokens_to_ids(t) for t in ("[gMASK]", "<sop>", "<eop>"))
    assert tok.encode("question", "answer") == [*a, gmask, sop, *b, eop]
    assert tok.convert_tokens_to_ids("<|blank_4|>") in tok.encode("a    b")
    assert tok.decode(tok.encode("a    b\tc\nd", add_special_tokens=False)) == "a    b\tc\nd"
    # Published preprocess_text options (both off in chatglm-6b's tokenizer_config.json).
    squeezed = ChatGLMTokenizer.from_pretrained(glm_dir, remove_space=True, do_lower_case=True)
    assert squeezed.encode("  Hello   World \n") == tok.encode("hello world")


# ---------------------------------------------------------------------------- GLM2
def test_glm2_follows_the_published_rules(glm2_dir, sample_texts):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(glm2_dir / "tokenizer.model"))
    n = sp.vocab_size()
    tok = ChatGLM2Tokenizer.from_pretrained(glm2_dir)
    # THUDM/chatglm2-6b SPTokenizer: [MASK] [gMASK] [sMASK] sop eop take ids n .. n+4.
    assert [tok.get_command(t) for t in ("[MASK]", "[gMASK]", "[sMASK]", "sop", "eop")] == \
        list(range(n, n + 5))
    assert tok.pad_token_id == sp.unk_id() and tok.eos_token_id == sp.eos_id()
    for text in _texts(sample_texts):
        ids = tok(text)["input_ids"]
        assert ids == [n + 1, n + 3, *sp.encode(text)], text
        # Published decode: command tokens, BOS/EOS/pad turn into "" (convert_id_to_token).
        assert tok.decode(ids + [sp.eos_id()]) == sp.decode(sp.encode(text))
    assert tok.encode("q", "a") == [n + 1, n + 3, *sp.encode("q"), *sp.encode("a"), sp.eos_id()]
    batch = tok(["short", "a longer text here"], padding=True)
    assert batch["input_ids"][0][0] == sp.unk_id() and batch["attention_mask"][0][0] == 0


# ---------------------------------------------------------------------------- PanGu-Alpha
def test_pangu_follows_the_published_rules(pangu_dir, sample_texts):
    import jieba
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(pangu_dir / "vocab.model"))
    tok = PanguAlphaTokenizer.from_pretrained(pangu_dir)
    translator = str.maketrans(" \n", "\u2582\u2583")  # PanGu-Alpha JIEBATokenizer
    texts = [t for t in _texts(sample_texts) if t][:160]
    for text in texts:
        seg = " ".join(x.translate(translator) for x in jieba.cut(text, cut_all=False))
        ids = tok.encode(text)
        assert ids == sp.encode(seg), text
        published = sp.decode(ids).replace(" ", "").replace("\u2582", " ").replace("\u2583", "\n")
        assert tok.decode(ids) == published
    assert tok.eos_token == "<eod>" and tok.eos_token_id == sp.piece_to_id("<eod>")
    assert tok.encode("你好世界") == sp.encode(" ".join(jieba.cut("你好世界")))
    eos = PanguAlphaTokenizer.from_pretrained(pangu_dir, add_eos_token=True)
    assert eos.encode("你好")[-1] == sp.piece_to_id("<eod>")
