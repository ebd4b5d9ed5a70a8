"""Bad text and bad files for every family (issue 10 parts 5-6, issue 11).

A lone surrogate is how Python carries bytes that are not UTF-8 (`"$(printf 'abc\\xff')"` in
sys.argv arrives as 'abc\\udcff'); it reached sentencepiece and came back as a C++ cast error.
"""

from __future__ import annotations

import os
import stat

import pytest

from mf_tokenize import (
    AutoTokenizer,
    BertTokenizer,
    GPT2Tokenizer,
    LlamaTokenizer,
    TokenizerConfigError,
    TokenizerInputError,
)

FAMILIES = [("llama_dir", LlamaTokenizer), ("gpt2_dir", GPT2Tokenizer),
            ("bert_dir", BertTokenizer)]
UNDECODABLE = b"abc\xff\xfe".decode("utf-8", "surrogateescape")  # 'abc\udcff\udcfe'


def one_line(err) -> str:
    message = str(err.value)
    assert message and "\n" not in message and err.value.exit_code == 2
    return message


@pytest.mark.parametrize("fixture,cls", FAMILIES)
def test_a_lone_surrogate_is_mf_tokenize_s_own_one_line_error(request, fixture, cls):
    tok = cls.from_pretrained(request.getfixturevalue(fixture))
    calls = {
        "text": lambda: tok.encode(UNDECODABLE),
        "text[1]": lambda: tok(["fine", "x" + "\ud800"]),
        "text_pair": lambda: tok("fine", UNDECODABLE),
    }
    for where, call in calls.items():
        with pytest.raises(TokenizerInputError) as err:
            call()
        message = one_line(err)
        assert message.startswith(f"{where} holds a lone surrogate")
        assert "decode the input as UTF-8" in message
    with pytest.raises(TokenizerInputError, match=r"at character 3"):
        tok.tokenize(UNDECODABLE)
    # Real non-ASCII text (the check's slow path) still encodes as before.
    ids = tok.encode("naïve 中文 😀", add_special_tokens=False)
    assert ids and all(isinstance(i, int) for i in ids)


@pytest.mark.parametrize("name", ["vocab.bin", "merges.PT", "t.pth", "t.pkl", "t.pickle"])
def test_pickle_files_are_refused_by_the_one_guard(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x80\x04 never unpickled")
    with pytest.raises(TokenizerConfigError) as err:
        AutoTokenizer.from_pretrained(tmp_path / name)
    assert one_line(err).startswith(f"refusing to load {tmp_path / name}: a pickle file")


def test_a_model_checkpoint_is_not_a_tokenizer(tmp_path):
    (tmp_path / "model.ckpt").write_bytes(b"\x00")
    with pytest.raises(TokenizerConfigError) as err:
        AutoTokenizer.from_pretrained(tmp_path / "model.ckpt")
    assert "is a model checkpoint, not a tokenizer file" in one_line(err)


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640)])
def test_saved_files_follow_the_umask_not_0600(llama_dir, tmp_path, umask, mode):
    tok = LlamaTokenizer.from_pretrained(llama_dir)
    old = os.umask(umask)
    try:
        written = tok.save_pretrained(tmp_path / "tok")
    finally:
        os.umask(old)
    assert written and {stat.S_IMODE(p.stat().st_mode) for p in written} == {mode}
    assert not [p for p in (tmp_path / "tok").iterdir() if p.name.startswith(".")]
    assert LlamaTokenizer.from_pretrained(tmp_path / "tok").encode("hello") == tok.encode("hello")
