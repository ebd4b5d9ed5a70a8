"""Shared test data: a local mixed-language corpus and vocabularies trained on it.

Nothing is downloaded. English prose and code come from the Python standard library sources;
Chinese sentences are drawn from jieba's bundled dictionary with a fixed seed; the hand-written
lines add emoji, accents, other scripts and runs of spaces, tabs and newlines. Each family's
vocabulary is trained once per session with the reference trainers (Hugging Face tokenizers,
sentencepiece), into a temporary directory.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sysconfig
from pathlib import Path

import pytest

STDLIB = Path(sysconfig.get_paths()["stdlib"])
STDLIB_FILES = ("textwrap.py", "string.py", "json/encoder.py", "json/decoder.py", "argparse.py",
                "difflib.py", "calendar.py", "shlex.py", "fractions.py")

HANDWRITTEN = [
    "Hello world! This is a test.",
    "café naïve résumé Zürich São Paulo Ångström façade jalapeño",
    "Crème brûlée, déjà vu, coöperate, Ελληνικά, русский текст, עברית, العربية, हिन्दी",
    "日本語のテキストとカタカナ、한국어 문장입니다.",
    "😀🎉👍🏽 ✨ emoji 🥰🫠 family 👨‍👩‍👧‍👦 flags 🇨🇳🇫🇷 keycap 1️⃣",
    "a  b   c\t\td\n\n\ne \t \n f    ",
    "    indented line\n\tTabbed\r\nWindows line\u00a0nbsp\u3000ideographic space",
    "Don't do not it's we're I'm you've they'll he'd ΣΑΣ ﬁ ① Ⅻ ¼",
    "def f(x):\n    return x ** 2  # 12345 67.89e-3\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }  // C code",
    "我爱北京天安门，今天天气很好。机器学习和深度学习！",
    "混合 mixed 文本 text 123 四五六 😀",
    "   leading spaces and trailing spaces   ",
    "\n\nstarts with newlines",
    "x" * 300 + " long word",
    "中文" * 100,
    "!!!???...,,,;;;:::",
    "URL https://example.com/path?q=1&r=2#frag and e-mail a.b@c.org",
    "",
    " ",
]


def chinese_sentences(n: int, seed: int = 0) -> list[str]:
    """Random sentences of words from jieba's bundled dictionary (no jieba import needed)."""
    jieba_dir = Path(importlib.util.find_spec("jieba").origin).parent
    lines = (jieba_dir / "dict.txt").read_text(encoding="utf-8").splitlines()
    words = [line.split()[0] for line in lines[:60000]]
    stops = "，。！？；："
    rng = random.Random(seed)
    sentences = []
    for _ in range(n):
        body = "".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
        sentences.append(body + rng.choice(stops))
    return sentences


@pytest.fixture(scope="session")
def training_texts() -> list[str]:
    """About 600 KB of text: stdlib sources, Chinese, and the hand-written lines."""
    texts = [(STDLIB / name).read_text(encoding="utf-8") for name in STDLIB_FILES]
    texts += chinese_sentences(3000)
    texts += HANDWRITTEN * 20
    return texts


@pytest.fixture(scope="session")
def sample_texts() -> list[str]:
    """Texts to compare with the references: lines and paragraphs of every kind."""
    source = (STDLIB / "textwrap.py").read_text(encoding="utf-8")
    lines = source.splitlines()
    paragraphs = source.split("\n\n")
    other = (STDLIB / "colorsys.py").read_text(encoding="utf-8")  # not in training_texts
    return (HANDWRITTEN + lines[:250] + paragraphs[:40] + other.splitlines()[:80]
            + chinese_sentences(150, seed=1) + [other])


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory, training_texts) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=4000, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_texts, trainer)
    out = tmp_path_factory.mktemp("gpt2")
    tok.model.save(str(out))
    return out


@pytest.fixture(scope="session")
def bloom_dir(tmp_path_factory, training_texts) -> Path:
    """A tokenizer.json shaped like bigscience/bloom's (its Split pattern, ByteLevel without
    GPT-2's pattern, ByteLevel post-processor and decoder)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(" ?[^(\\s|[.,!?…。，、।۔،])]+"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=4000, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_texts, trainer)
    out = tmp_path_factory.mktemp("bloom")
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "BloomTokenizerFast", "padding_side": "left", "unk_token": "<unk>",
        "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}))
    return out


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory, training_texts) -> Path:
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    from mf_tokenize.clip import CLIP_PATTERN

    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>", unk_token="<|endoftext|>"))
    tok.normalizer = normalizers.Sequence([
        normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    trainer = trainers.BpeTrainer(vocab_size=4000, end_of_word_suffix="</w>",
                                  special_tokens=["<|startoftext|>", "<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_texts, trainer)
    out = tmp_path_factory.mktemp("clip")
    tok.model.save(str(out))
    return out


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory, training_texts) -> Path:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=4000, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.train_from_iterator(training_texts, trainer)
    out = tmp_path_factory.mktemp("bert")
    tok.model.save(str(out))
    return out


def _train_sentencepiece(texts, prefix: Path, **options) -> Path:
    import sentencepiece as spm

    lines = [line for text in texts for line in text.splitlines() if line.strip()]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=str(prefix), num_threads=2, minloglevel=2,
        **options)
    return prefix.with_suffix(".model")


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory, training_texts) -> Path:
    """LLaMA's SentencePiece settings (from its published tokenizer.model)."""
    out = tmp_path_factory.mktemp("llama")
    _train_sentencepiece(
        training_texts, out / "tokenizer", vocab_size=4000, model_type="bpe", byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False, split_digits=True,
        allow_whitespace_only_pieces=True, character_coverage=0.99, unk_id=0, bos_id=1,
        eos_id=2, pad_id=-1)
    # What huggyllama/llama-7b's tokenizer_config.json says (transformers 5 adds no BOS
    # without it).
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}))
    return out


@pytest.fixture(scope="session")
def t5_dir(tmp_path_factory, training_texts) -> Path:
    """T5's SentencePiece settings: unigram, nmt_nfkc, pad 0 / eos 1 / unk 2, no BOS."""
    out = tmp_path_factory.mktemp("t5")
    _train_sentencepiece(
        training_texts, out / "spiece", vocab_size=4000, model_type="unigram",
        character_coverage=0.99, pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
    return out


GLM_BLANKS = [f"<|blank_{i}|>" for i in range(2, 81)]
GLM_SYMBOLS = ["<n>", "<|tab|>", *GLM_BLANKS, "[MASK]", "[gMASK]", "[sMASK]", "<unused_0>",
               "<sop>", "<eop>", "<ENC>", "<dBLOCK>"]


@pytest.fixture(scope="session")
def glm_dir(tmp_path_factory, training_texts) -> Path:
    """A model with ChatGLM-6B's whitespace and command pieces as user-defined symbols."""
    out = tmp_path_factory.mktemp("glm")
    _train_sentencepiece(
        training_texts, out / "ice_text", vocab_size=4000, model_type="bpe",
        byte_fallback=True, character_coverage=0.99, user_defined_symbols=GLM_SYMBOLS,
        unk_id=0, bos_id=1, eos_id=2, pad_id=3)
    return out


@pytest.fixture(scope="session")
def glm2_dir(tmp_path_factory, training_texts) -> Path:
    out = tmp_path_factory.mktemp("glm2")
    _train_sentencepiece(
        training_texts, out / "tokenizer", vocab_size=4000, model_type="bpe",
        byte_fallback=True, character_coverage=0.99, normalization_rule_name="identity",
        remove_extra_whitespaces=False, unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
    return out


@pytest.fixture(scope="session")
def pangu_dir(tmp_path_factory) -> Path:
    """SentencePiece trained on jieba-segmented text, as PanGu-Alpha's vocab.model was."""
    from mf_tokenize.pangu import PanguAlphaTokenizer

    texts = chinese_sentences(1500, seed=2) + HANDWRITTEN * 3
    segmented = [PanguAlphaTokenizer.segment(t) for t in texts]
    out = tmp_path_factory.mktemp("pangu")
    _train_sentencepiece(
        segmented, out / "vocab", vocab_size=3000, model_type="bpe", byte_fallback=True,
        character_coverage=0.99, normalization_rule_name="identity",
        remove_extra_whitespaces=False, control_symbols=["<eod>", "<eot>", "<pad>"],
        unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1)
    return out
