"""Streamers with real tokenizers trained here (byte-level BPE and SentencePiece with byte
fallback) on Chinese, emoji and English: text comes out complete and final, never half a
character, CJK as soon as it is whole, and in total exactly what decoding gives."""

from __future__ import annotations

import queue
import threading

import numpy as np
import pytest
import transformers
from generate_testing import train_tokenizer

from mf_generate import GenerateConfigError, TextIteratorStreamer, TextStreamer, generate
from mf_generate.streamers import REPLACEMENT

TEXTS = [
    "今天天气很好 😀 Hello world\n第二行，中国的首都是哪个城市？",
    "中国的首都是哪个城市？北京。",
    "Emoji 🎉🎉 and 👍🏽 end",
    "Hello world\n\nMixed 中文 and 表情 😀",
]


@pytest.fixture(scope="module", params=["bpe", "sentencepiece"])
def tokenizer(request):
    return train_tokenizer(request.param)


class Recorder(TextStreamer):
    """A TextStreamer that keeps its chunks instead of printing them."""

    def __init__(self, tokenizer, **kwargs):
        super().__init__(tokenizer, **kwargs)
        self.chunks: list[str] = []
        self.ended = 0

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.chunks.append(text)
        self.ended += stream_end


def _stream(streamer, prompt, new):
    """Drive a streamer the way generate() does: the prompt, then one token per step."""
    streamer.put(np.asarray([prompt]))
    after_each = []
    for token in new:
        streamer.put(np.asarray([token]))
        after_each.append("".join(streamer.chunks))
    streamer.end()
    return after_each


def _split(tokenizer, text, prompt_tokens=3):
    ids = tokenizer.encode(text, add_special_tokens=False)
    return ids[:prompt_tokens], ids[prompt_tokens:]


@pytest.mark.parametrize("text", TEXTS)
def test_streamed_text_is_exactly_the_decoded_text(tokenizer, text):
    prompt, new = _split(tokenizer, text)
    streamer = Recorder(tokenizer)
    _stream(streamer, prompt, new)
    assert "".join(streamer.chunks) == tokenizer.decode(prompt + new) == text
    assert streamer.ended == 1


@pytest.mark.parametrize("text", TEXTS)
def test_never_half_a_character_and_nothing_taken_back(tokenizer, text):
    prompt, new = _split(tokenizer, text)
    streamer = Recorder(tokenizer)
    shown = _stream(streamer, prompt, new)
    for so_far in shown:
        assert REPLACEMENT not in so_far
        assert text.startswith(so_far)  # what was printed is final


def test_cjk_comes_out_as_soon_as_each_character_is_whole(tokenizer):
    text = "今天天气很好中国的首都是哪个城市"
    prompt, new = _split(tokenizer, text, prompt_tokens=1)
    streamer = Recorder(tokenizer)
    shown = _stream(streamer, prompt, new)
    for i, so_far in enumerate(shown):
        whole = tokenizer.decode(prompt + new[: i + 1]).rstrip(REPLACEMENT)
        assert so_far.startswith(whole)  # every whole character is out
        assert text.startswith(so_far)
    # The byte pieces really did split characters somewhere (else this proves little).
    pieces = [tokenizer.decode(prompt + new[: i + 1]) for i in range(len(new))]
    assert any(p.endswith(REPLACEMENT) for p in pieces)


def test_words_are_held_until_a_space_as_hugging_face_does(tokenizer):
    prompt, new = _split(tokenizer, "Hello world, this is a small test")
    streamer = Recorder(tokenizer)
    shown = _stream(streamer, prompt, new)
    for so_far in shown:
        assert so_far == "" or so_far.endswith(" ")


@pytest.mark.parametrize("text", TEXTS)
def test_same_text_in_total_as_transformers_text_streamer(tokenizer, text):
    prompt, new = _split(tokenizer, text)

    class HFRecorder(transformers.TextStreamer):
        chunks: list[str] = []

        def on_finalized_text(self, text, stream_end=False):
            self.chunks.append(text)

    theirs = HFRecorder(tokenizer)
    theirs.chunks = []
    theirs.put(np.asarray([prompt]))
    for token in new:
        theirs.put(np.asarray([token]))
    theirs.end()
    ours = Recorder(tokenizer)
    _stream(ours, prompt, new)
    assert "".join(ours.chunks) == "".join(theirs.chunks)


def test_skip_prompt_keeps_the_space_before_the_first_new_word(tokenizer):
    text = "Hello world, this is a small test"
    prompt, new = _split(tokenizer, text, prompt_tokens=1)
    streamer = Recorder(tokenizer, skip_prompt=True)
    _stream(streamer, prompt, new)
    full, head = tokenizer.decode(prompt + new), tokenizer.decode(prompt)
    assert "".join(streamer.chunks) == full[len(head):]


def test_iterator_streamer_hands_text_to_another_thread(tokenizer):
    text = TEXTS[0]
    prompt, new = _split(tokenizer, text)
    streamer = TextIteratorStreamer(tokenizer, timeout=10)

    def produce():
        streamer.put(np.asarray([prompt]))
        for token in new:
            streamer.put(np.asarray([token]))
        streamer.end()

    thread = threading.Thread(target=produce)
    thread.start()
    received = list(streamer)
    thread.join()
    assert "".join(received) == text
    assert all(received)


def test_iterator_streamer_times_out_when_nothing_comes(tokenizer):
    streamer = TextIteratorStreamer(tokenizer, timeout=0.05)
    with pytest.raises(queue.Empty):
        next(iter(streamer))


def test_a_streamer_takes_one_sequence(tokenizer):
    with pytest.raises(GenerateConfigError, match="a streamer takes one sequence, got a batch "
                                                  "of 2"):
        TextStreamer(tokenizer).put(np.zeros((2, 3), np.int64))


def test_generate_streams_prompt_then_every_new_token(llama, tokenizer, capsys):
    prompt = tokenizer.encode("中国的首都是", add_special_tokens=False)
    streamer = TextStreamer(tokenizer)
    out = generate(llama, [prompt], streamer=streamer, max_new_tokens=12, eos_token_id=None)
    assert out.shape == (1, len(prompt) + 12)
    assert capsys.readouterr().out == tokenizer.decode(out[0].tolist()) + "\n"
