"""Streamers: text out while generate() runs (HF's / MindFormers' `TextStreamer` API).

generate() calls `put(prompt_ids)` once, `put(new_ids)` after each step and `end()` at the
end. A `TextStreamer` decodes the tokens so far and releases only text that cannot change
any more, as Hugging Face's does: everything up to a newline; everything when the text ends
in a CJK character (a CJK piece is a whole word, nothing can join it); otherwise up to the
last space (a word may still grow). On top of HF's rules it never releases a trailing U+FFFD,
which is half a UTF-8 character waiting for its next byte token, and it decodes each chunk
after one token of context, so a SentencePiece word's leading space is kept (HF drops it).
"""

from __future__ import annotations

import queue
import sys
from typing import Any

import numpy as np

from mf_generate.errors import GenerateConfigError

REPLACEMENT = "\ufffd"


class BaseStreamer:
    """What generate() drives."""

    def put(self, value) -> None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError


class TextStreamer(BaseStreamer):
    """Print text to stdout as soon as it is complete.

    tokenizer: anything with `decode(ids, **decode_kwargs)` (mf_tokenize tokenizers).
    skip_prompt: do not print the prompt. decode_kwargs: e.g. skip_special_tokens=True.
    """

    def __init__(self, tokenizer, skip_prompt: bool = False, **decode_kwargs: Any):
        self.tokenizer = tokenizer
        self.skip_prompt = skip_prompt
        self.decode_kwargs = decode_kwargs
        self.token_cache: list[int] = []
        self.context: list[int] = []  # the token decoded before the cache, for its spacing
        self.print_len = 0
        self.next_tokens_are_prompt = True

    def put(self, value) -> None:
        ids = _flat_ids(value)
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            self.context = ids[-1:]
            return
        self.next_tokens_are_prompt = False
        self.token_cache.extend(ids)
        text = self._decode_cache()
        if text.endswith("\n"):  # a line is final: start over after it
            printable = text[self.print_len:]
            self._restart()
        else:
            stable = _without_partial_character(text)
            if stable and is_cjk(ord(stable[-1])):
                end = len(stable)
            else:
                end = stable.rfind(" ") + 1
            printable = text[self.print_len:end] if end > self.print_len else ""
            self.print_len += len(printable)
        self.on_finalized_text(printable)

    def end(self) -> None:
        """Release whatever is left (the last word, even half a character), then stream_end."""
        printable = ""
        if self.token_cache:
            printable = self._decode_cache()[self.print_len:]
            self._restart()
        self.next_tokens_are_prompt = True
        self.on_finalized_text(printable, stream_end=True)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        print(text, flush=True, end="" if not stream_end else None, file=sys.stdout)

    # ---- decoding ---------------------------------------------------------------------------
    def _decode_cache(self) -> str:
        """The cache's text as it reads after the context token (keeps a leading space that
        decoding the cache alone would strip)."""
        if self.context:
            head = self.tokenizer.decode(self.context, **self.decode_kwargs)
            both = self.tokenizer.decode(self.context + self.token_cache, **self.decode_kwargs)
            if both.startswith(head) and not head.endswith(REPLACEMENT):
                return both[len(head):]
        return self.tokenizer.decode(self.token_cache, **self.decode_kwargs)

    def _restart(self) -> None:
        self.context = self.token_cache[-1:]
        self.token_cache = []
        self.print_len = 0


class TextIteratorStreamer(TextStreamer):
    """Hand the text to another thread: iterate over the streamer while generate() runs.

        streamer = TextIteratorStreamer(tok, timeout=30)
        Thread(target=model.generate, args=(ids,), kwargs={"streamer": streamer}).start()
        for text in streamer: ...

    Iteration raises `queue.Empty` when no text arrives within `timeout` seconds (HF's API).
    """

    def __init__(self, tokenizer, skip_prompt: bool = False, timeout: float | None = None,
                 **decode_kwargs: Any):
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue: queue.Queue = queue.Queue()
        self.stop_signal = None
        self.timeout = timeout

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.text_queue.put(text, timeout=self.timeout)
        if stream_end:
            self.text_queue.put(self.stop_signal, timeout=self.timeout)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        value = self.text_queue.get(timeout=self.timeout)
        if value is self.stop_signal:
            raise StopIteration
        return value


def is_cjk(codepoint: int) -> bool:
    """CJK Unified Ideographs and their extensions (and compatibility blocks): the ranges HF's
    streamer treats as whole words, from Unicode's CJK block chart."""
    return (0x4E00 <= codepoint <= 0x9FFF or 0x3400 <= codepoint <= 0x4DBF
            or 0x20000 <= codepoint <= 0x2A6DF or 0x2A700 <= codepoint <= 0x2B73F
            or 0x2B740 <= codepoint <= 0x2B81F or 0x2B820 <= codepoint <= 0x2CEAF
            or 0xF900 <= codepoint <= 0xFAFF or 0x2F800 <= codepoint <= 0x2FA1F)


def _without_partial_character(text: str) -> str:
    """`text` without trailing U+FFFD: bytes of a character whose last byte has not come."""
    return text.rstrip(REPLACEMENT)


def _flat_ids(value) -> list[int]:
    if hasattr(value, "asnumpy"):
        value = value.asnumpy()
    array = np.asarray(value)
    if array.ndim > 1:
        if array.shape[0] != 1:
            raise GenerateConfigError(
                f"a streamer takes one sequence, got a batch of {array.shape[0]}")
        array = array[0]
    return [int(i) for i in array.reshape(-1)]
