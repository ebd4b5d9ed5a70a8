"""Tokenizers (BPE, SentencePiece, WordPiece) and image processors for the mf model families
(no MindSpore).

    from mf_tokenize import AutoTokenizer
    tok = AutoTokenizer.from_pretrained("llama_7b")        # or a directory of tokenizer files
    batch = tok(["hello", "a longer text"], padding=True, return_tensors="np")
    tok.batch_decode(batch["input_ids"], skip_special_tokens=True)
"""

from importlib.metadata import version as _version

from mf_tokenize import batching
from mf_tokenize.auto import AutoTokenizer, tokenizer_class
from mf_tokenize.base import AddedToken, BatchEncoding, PreTrainedTokenizer
from mf_tokenize.bert import BertTokenizer
from mf_tokenize.bloom import BloomTokenizer
from mf_tokenize.chatglm import ChatGLM2Tokenizer, ChatGLMTokenizer
from mf_tokenize.clip import CLIPTokenizer
from mf_tokenize.errors import (
    CorruptVocabError,
    ImageInputError,
    TokenizerConfigError,
    TokenizerError,
    TokenizerInputError,
    UnknownTokenizerError,
    VocabFileNotFoundError,
)
from mf_tokenize.gpt2 import GPT2Tokenizer

# The image side of a model's input (Pillow is imported only when an image is handled).
from mf_tokenize.image_processing import (
    AutoImageProcessor,
    CLIPImageProcessor,
    ImageProcessor,
    ViTImageProcessor,
)
from mf_tokenize.llama import LlamaTokenizer
from mf_tokenize.pangu import PanguAlphaTokenizer
from mf_tokenize.presets import PRESETS, mf_home
from mf_tokenize.processing import AutoProcessor, CLIPProcessor
from mf_tokenize.t5 import T5Tokenizer
from mf_tokenize.training import train_bpe, train_sentencepiece

__version__ = _version("mf-tokenize")

__all__ = [
    "PRESETS", "AddedToken", "AutoTokenizer", "BatchEncoding", "BertTokenizer", "BloomTokenizer",
    "CLIPTokenizer", "ChatGLM2Tokenizer", "ChatGLMTokenizer", "CorruptVocabError",
    "GPT2Tokenizer", "LlamaTokenizer", "PanguAlphaTokenizer", "PreTrainedTokenizer",
    "T5Tokenizer", "TokenizerConfigError", "TokenizerError", "TokenizerInputError",
    "UnknownTokenizerError", "VocabFileNotFoundError", "batching", "mf_home", "tokenizer_class",
    "train_bpe", "train_sentencepiece",
    "AutoImageProcessor", "AutoProcessor", "CLIPImageProcessor", "CLIPProcessor", "ImageInputError",
    "ImageProcessor", "ViTImageProcessor",
]
