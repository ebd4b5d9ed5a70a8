"""Data without a model: readers, packing, seeded resumable order, MindRecord, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from train_fixtures import ByteTokenizer

from mf_train.data import (
    START,
    BatchOrder,
    DataPosition,
    TokenDataset,
    load_dataset_from_config,
    pack_sequences,
    prepare_mindrecord,
    rank_share,
    tokenize_documents,
)
from mf_train.errors import DatasetNotFoundError, DatasetTooShortError, TrainConfigError
from mf_train.run_yaml import run_config_from_mapping

# --- packing ----------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(docs=st.lists(st.lists(st.integers(0, 1000), max_size=40), max_size=12),
       seq_length=st.integers(1, 17))
def test_packing_is_the_stream_cut_into_equal_samples(docs, seq_length):
    samples = pack_sequences(docs, seq_length)
    stream = [t for doc in docs for t in doc]
    width = seq_length + 1
    assert samples.shape == (len(stream) // width, width)
    assert samples.dtype == np.int32
    assert samples.reshape(-1).tolist() == stream[:samples.size]  # nothing reordered or lost


def test_documents_end_with_eos():
    ids = list(tokenize_documents(["ab", "c"], ByteTokenizer()))
    assert ids == [[97, 98, 256], [99, 256]]
    assert pack_sequences(ids, 2).tolist() == [[97, 98, 256]]


def test_tokenizer_protocol_errors():
    class NoEos:
        eos_token_id = None

        def encode(self, text):
            return [1]

    with pytest.raises(TrainConfigError, match="eos_token_id = None"):
        list(tokenize_documents(["a"], NoEos()))
    with pytest.raises(TrainConfigError, match="has no encode"):
        list(tokenize_documents(["a"], object()))
    with pytest.raises(TrainConfigError, match="seq_length = 0"):
        pack_sequences([[1, 2]], 0)


# --- order ------------------------------------------------------------------------------------

def test_each_epoch_visits_every_sample_once_in_a_seeded_order():
    order = BatchOrder(num_samples=50, global_batch_size=8, seed=3)
    assert order.batches_per_epoch == 6  # 50 // 8, remainder dropped
    epoch0 = np.concatenate([order.batch_indices(DataPosition(0, b)) for b in range(6)])
    assert len(set(epoch0.tolist())) == 48
    assert not np.array_equal(order.permutation(0), order.permutation(1))  # reshuffled per epoch
    again = BatchOrder(num_samples=50, global_batch_size=8, seed=3)
    assert np.array_equal(again.permutation(1), order.permutation(1))  # same seed, same order
    assert not np.array_equal(BatchOrder(50, 8, seed=4).permutation(0), order.permutation(0))
    assert np.array_equal(BatchOrder(50, 8, shuffle=False).permutation(0), np.arange(50))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), batch=st.integers(1, 9), seed=st.integers(0, 2**32 - 1),
       epochs=st.integers(1, 3), data=st.data())
def test_resuming_at_any_position_yields_the_remaining_batches(n, batch, seed, epochs, data):
    samples = np.arange(n * 3, dtype=np.int32).reshape(n, 3)
    dataset = TokenDataset(samples)
    order = dataset.order(batch, seed)
    full = list(dataset.batches(order, num_epochs=epochs))
    assert len(full) == order.batches_per_epoch * epochs
    if not full:
        return
    k = data.draw(st.integers(0, len(full) - 1))
    resumed_at = full[k][0]
    resumed = list(dataset.batches(order, start=resumed_at, num_epochs=epochs))
    assert [p for p, _ in resumed] == [p for p, _ in full[k:]]
    for (_, a), (_, b) in zip(resumed, full[k:], strict=True):
        assert np.array_equal(a, b)
    # the position survives the JSON of a checkpoint
    assert DataPosition.from_dict(json.loads(json.dumps(resumed_at.to_dict()))) == resumed_at


def test_a_position_past_an_epoch_end_starts_the_next_epoch():
    order = BatchOrder(20, 5, seed=0)  # 4 batches per epoch: 0..3
    assert next(order.positions(DataPosition(2, 3))) == DataPosition(2, 3)
    assert next(order.positions(DataPosition(2, 4))) == DataPosition(3, 0)
    assert order.advance(DataPosition(2, 3)) == DataPosition(3, 0)
    assert next(order.positions(DataPosition(1, 9))) == DataPosition(2, 0)


@given(world=st.sampled_from([1, 2, 4]), per_rank=st.integers(1, 4), seed=st.integers(0, 99))
def test_ranks_together_read_the_single_process_global_batch(world, per_rank, seed):
    samples = np.arange(40 * 2, dtype=np.int32).reshape(40, 2)
    dataset = TokenDataset(samples)
    order = dataset.order(world * per_rank, seed)
    single = [b for _, b in dataset.batches(order, num_epochs=1)]
    shares = [[b for _, b in dataset.batches(order, num_epochs=1, rank=r, world_size=world)]
              for r in range(world)]
    for step, whole in enumerate(single):
        assert np.array_equal(np.concatenate([shares[r][step] for r in range(world)]), whole)


def test_rank_share_errors():
    with pytest.raises(TrainConfigError, match="does not split over 3 ranks"):
        rank_share(np.arange(8), 0, 3)
    with pytest.raises(TrainConfigError, match="rank 2 is outside a world of 2"):
        rank_share(np.arange(8), 2, 2)


# --- readers and bad input --------------------------------------------------------------------

def test_text_directory_reads_files_in_sorted_order_and_reports_non_utf8(tmp_path):
    (tmp_path / "b.txt").write_text("bbbb")
    (tmp_path / "a.txt").write_text("aaaa")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_bytes(b"\xff\xfe bad")
    (tmp_path / "ignored.md").write_text("zzzz")
    dataset = TokenDataset.from_text(tmp_path, ByteTokenizer(), seq_length=4)
    assert dataset.samples.tolist() == [[97] * 4 + [256], [98] * 4 + [256]]
    assert dataset.notes and "not UTF-8" in dataset.notes[0] and "c.txt" in dataset.notes[0]


def test_jsonl_reads_the_text_field_and_names_bad_lines(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text('{"text": "hi", "id": 1}\n\n{"text": "yo"}\n')
    assert TokenDataset.from_jsonl(good, ByteTokenizer(), 2).samples.tolist() == [
        [104, 105, 256], [121, 111, 256]]
    cases = {'{"text": "a"}\n{broken\n': r"bad.jsonl:2: not valid JSON",
             '{"content": "a"}\n': r"bad.jsonl:1: no 'text' field \(text_key\); fields here: "
                                   r"content",
             '[1, 2]\n': r"bad.jsonl:1: expected a JSON object per line",
             '{"text": 5}\n': r"bad.jsonl:1: field 'text' is int"}
    for text, pattern in cases.items():
        bad = tmp_path / "bad.jsonl"
        bad.write_text(text)
        with pytest.raises(TrainConfigError, match=pattern) as info:
            TokenDataset.from_jsonl(bad, ByteTokenizer(), 2)
        assert info.value.exit_code == 2


@pytest.mark.parametrize("build", [
    lambda p: TokenDataset.from_text(p, ByteTokenizer(), 4),
    lambda p: TokenDataset.from_jsonl(p, ByteTokenizer(), 4),
    lambda p: TokenDataset.from_mindrecord(p),
])
def test_a_missing_path_is_a_one_line_exit_2_error(tmp_path, build):
    with pytest.raises(DatasetNotFoundError, match=r"dataset .*nowhere does not exist$") as info:
        build(tmp_path / "nowhere")
    assert isinstance(info.value, FileNotFoundError) and info.value.exit_code == 2


def test_an_empty_directory_says_what_it_looked_for(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"holds no files ending in .txt"):
        TokenDataset.from_text(tmp_path, ByteTokenizer(), 4)


def test_a_dataset_too_short_for_one_batch_spells_out_the_batch(tmp_path):
    (tmp_path / "t.txt").write_text("x" * 30)  # 31 tokens: 3 samples of 9 (seq 8 + 1)
    dataset = TokenDataset.from_text(tmp_path, ByteTokenizer(), 8)
    with pytest.raises(DatasetTooShortError) as info:
        dataset.check_fills_a_batch(8, "batch_size(4) * data_parallel(2) * micro_batch_num(1)")
    message = str(info.value)
    assert message.startswith(f"dataset {tmp_path} holds 3 sample(s) of 9 tokens, fewer than "
                              "one global batch of 8 = batch_size(4) * data_parallel(2)")
    assert info.value.exit_code == 2 and "\n" not in message
    dataset.check_fills_a_batch(3)  # exactly one batch is enough


# --- MindRecord and mindspore.dataset ---------------------------------------------------------

def test_mindrecord_round_trip_and_mindspore_pipeline(tmp_path):
    import mindspore.dataset as ds

    source = tmp_path / "corpus"
    source.mkdir()
    for i in range(5):
        (source / f"doc{i}.txt").write_text(f"document number {i} " * 7)
    out = tmp_path / "data" / "train.mindrecord"
    prepared = prepare_mindrecord(source, out, ByteTokenizer(), seq_length=16)
    assert sorted(p.name for p in out.parent.iterdir()) == ["train.mindrecord",
                                                             "train.mindrecord.db"]
    loaded = TokenDataset.from_mindrecord(out, seq_length=16)
    assert np.array_equal(loaded.samples, prepared.samples)
    with pytest.raises(TrainConfigError, match=r"samples of 17 tokens, but seq_length\(32\)"):
        TokenDataset.from_mindrecord(out, seq_length=32)
    # a user's own mindspore.dataset object reads the same rows
    user = ds.MindDataset(str(out), columns_list=["input_ids"], shuffle=False)
    assert np.array_equal(TokenDataset.from_mindspore(user).samples, prepared.samples)
    # handed to MindSpore, the batches keep our order, from a resumed position too
    order = loaded.order(4, seed=11)
    start = DataPosition(1, 2)
    ours = [b for _, b in loaded.batches(order, start=start, num_epochs=3)]
    pipeline = loaded.to_mindspore(order, start=start, num_epochs=3)
    theirs = [row[0] for row in pipeline.create_tuple_iterator(output_numpy=True, num_epochs=1)]
    assert len(theirs) == len(ours) > 0
    for a, b in zip(ours, theirs, strict=True):
        assert np.array_equal(a, b)


def test_generator_input(tmp_path):
    rows = [np.arange(i, i + 5) for i in range(6)]
    dataset = TokenDataset.from_generator(lambda: iter(rows))
    assert len(dataset) == 6 and dataset.sample_length == 5
    same = TokenDataset.from_generator({"input_ids": r} for r in rows)
    assert np.array_equal(same.samples, dataset.samples)
    with pytest.raises(TrainConfigError, match="one length"):
        TokenDataset.from_generator([np.arange(3), np.arange(4)])


def test_run_yaml_dataset_sections(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"body": "z" * 20}) + "\n" for _ in range(4)))
    cfg = run_config_from_mapping({"train_dataset": {"data_loader": {
        "type": "JsonLinesDataset", "dataset_dir": str(corpus), "text_key": "body"}}})
    dataset = load_dataset_from_config(cfg.train_dataset, ByteTokenizer(), seq_length=20)
    assert len(dataset) == 4 and dataset.sample_length == 21
    with pytest.raises(TrainConfigError, match="needs a tokenizer"):
        load_dataset_from_config(cfg.train_dataset, None, seq_length=20)
    missing = run_config_from_mapping({"train_dataset": {"data_loader": {
        "type": "MindDataset", "dataset_dir": str(tmp_path / "none.mindrecord")}}})
    with pytest.raises(DatasetNotFoundError):
        load_dataset_from_config(missing.train_dataset, None, seq_length=20)
    empty = run_config_from_mapping({})
    with pytest.raises(DatasetNotFoundError, match="path is empty; set dataset_dir"):
        load_dataset_from_config(empty.train_dataset, None, seq_length=20)


def test_start_is_the_first_batch():
    assert START == DataPosition(0, 0)
