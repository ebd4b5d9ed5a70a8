"""Training data without a model: readers, packing, a seeded resumable order, TokenDataset."""

from mf_train.data.dataset import TokenDataset, load_dataset_from_config, prepare_mindrecord
from mf_train.data.order import START, BatchOrder, DataPosition, rank_share
from mf_train.data.packing import pack_sequences, tokenize_documents
from mf_train.data.protocol import TokenizerLike, check_tokenizer
from mf_train.data.readers import JsonLines, TextFiles, read_mindrecord, write_mindrecord

__all__ = [
    "START",
    "BatchOrder",
    "DataPosition",
    "JsonLines",
    "TextFiles",
    "TokenDataset",
    "TokenizerLike",
    "check_tokenizer",
    "load_dataset_from_config",
    "pack_sequences",
    "prepare_mindrecord",
    "rank_share",
    "read_mindrecord",
    "tokenize_documents",
    "write_mindrecord",
]
