"""Test helpers of mf-generate (a module name no other package's tests use): models shared
by every test module, built once per session, since each compiled bucket costs ~2 s here."""

from __future__ import annotations

from pathlib import Path

MODEL_FIXTURES = Path(__file__).resolve().parents[2] / "mf-models" / "tests" / "fixtures"
_MODELS: dict = {}


def fixture_model(family: str):
    """The tiny random HF checkpoint of mf-models' parity fixtures, through our importer."""
    if family not in _MODELS:
        from mf_models import AutoModelForCausalLM

        import mf_generate  # noqa: F401  (installs model.generate)

        _MODELS[family] = AutoModelForCausalLM.from_pretrained(MODEL_FIXTURES / family / "hf")
    return _MODELS[family]


# Chinese, emoji and English, plus stdlib source so a tokenizer reaches 512 ids: the
# vocabulary of the llama fixture, so every id the model can produce decodes.
CORPUS = [
    "今天天气很好，我们去公园散步吧。",
    "中国的首都是北京，上海是最大的城市。",
    "我喜欢学习机器学习和自然语言处理。",
    "Hello world, this is a small test of streaming text.",
    "Emoji time 😀🎉 and thumbs 👍🏽 plus hearts ❤️ everywhere.",
    "Mixed 中文 and English 混合 text with 表情 😀 inside.",
    "The quick brown fox jumps over the lazy dog.\nA second line follows here.",
    "I love Beijing, because it is a big city.",
]
FIXTURE_VOCAB = 512


def training_texts() -> list[str]:
    import inspect
    import textwrap

    return CORPUS * 20 + inspect.getsource(textwrap).splitlines()


def train_tokenizer(kind: str):
    """A byte-level BPE ("bpe") or a SentencePiece with byte fallback ("sentencepiece") of
    exactly FIXTURE_VOCAB ids; character coverage below 1 leaves rarer CJK characters as
    byte pieces (three per character), so text often stops in the middle of a character."""
    from mf_tokenize import train_bpe, train_sentencepiece

    if kind == "bpe":
        tokenizer = train_bpe(training_texts(), FIXTURE_VOCAB)
    else:
        tokenizer = train_sentencepiece(training_texts(), FIXTURE_VOCAB, character_coverage=0.98)
    assert len(tokenizer) == FIXTURE_VOCAB
    return tokenizer
