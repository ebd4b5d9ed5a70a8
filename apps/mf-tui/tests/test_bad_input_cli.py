"""Issue 10's bad inputs through the real `mf` command: one line, exit 2 for what the user
gave (weights, YAML, sizes, text), exit 1 and `mf: error: <what>: <path>` for the machine's
failures, never `internal error`."""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mf_tui import cli


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mf: error: "), err
    return lines[0][len("mf: error: "):]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tokenizer, text prepared into MindRecord, a run YAML, and a saved model directory
    (weights, config, tokenizer) of the YAML's model."""
    from mf_models import AutoModelForCausalLM, LlamaConfig
    from mf_tokenize import LlamaTokenizer, train_sentencepiece

    root = tmp_path_factory.mktemp("bad_input")
    words = ["def", "return", "value", "class", "import", "self", "print", "list", "item"]
    lines = [f"{words[i % 9]} {words[(i * 7) % 9]}_{i % 13} = {words[(i * 5) % 9]}({i % 7})\n"
             for i in range(600)]
    (root / "text").mkdir()
    (root / "text" / "a.txt").write_text("".join(lines))
    (root / "text" / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    train_sentencepiece(lines, 300, root / "tokenizer")
    data = root / "train.mindrecord"
    assert cli.main(["data", "prepare", str(root / "text"), str(data), "--tokenizer",
                     str(root / "tokenizer"), "--seq-length", "16"]) == 0
    (root / "run.yaml").write_text(textwrap.dedent(f"""\
        output_dir: {root / "out"}
        runner_config: {{epochs: 1, batch_size: 2, max_steps: 1}}
        train_dataset:
          data_loader: {{type: MindDataset, dataset_dir: "{data}"}}
        eval_dataset:
          data_loader: {{type: MindDataset, dataset_dir: "{data}", num_samples: 2}}
        model:
          model_config: {{type: LlamaConfig, seq_length: 16, vocab_size: 300, hidden_size: 16,
                          num_layers: 1, num_heads: 2, intermediate_size: 32}}
        processor:
          tokenizer: {{type: LlamaTokenizer, vocab_file: "{root / 'tokenizer'}/tokenizer.model"}}
        """))
    config = LlamaConfig(seq_length=16, vocab_size=300, hidden_size=16, num_layers=1,
                         num_heads=2, intermediate_size=32)
    model_dir = root / "model"
    AutoModelForCausalLM.from_config(config).save_pretrained(model_dir)
    LlamaTokenizer.from_pretrained(root / "tokenizer").save_pretrained(model_dir)
    return root


def bad_copy(made, tmp_path, kind: str):
    """The model directory with its weights truncated, NaN-poisoned or swapped for a pickle."""
    from safetensors.numpy import load_file, save_file

    target = tmp_path / kind
    shutil.copytree(made / "model", target)
    weights = target / "model.safetensors"
    if kind == "truncated":
        weights.write_bytes(weights.read_bytes()[:-64])
    elif kind == "nan":
        arrays = load_file(str(weights))
        arrays["model.norm_out.weight"][0] = np.inf
        save_file(arrays, str(weights))
    elif kind == "pickle":
        weights.unlink()
        (target / "pytorch_model.bin").write_bytes(b"\x80\x04 never unpickled")
    return target


@pytest.mark.parametrize("kind,message", [
    ("truncated", "{dir}/model.safetensors is truncated or corrupt: "),
    ("nan", "{dir}/model.safetensors: tensor model.norm_out.weight holds 1 NaN or inf"),
    ("pickle", "no weights in {dir}: only pytorch_model.bin, a pickle file, which mf never "
               "loads"),
])
def test_bad_weights_get_one_message_on_every_command(made, tmp_path, capsys, kind, message):
    directory = bad_copy(made, tmp_path, kind)
    expected = message.format(dir=directory)
    config = str(made / "run.yaml")
    commands = [
        ["model", "convert", str(directory), str(tmp_path / "converted")],
        ["generate", str(directory), "def", "--max-new-tokens", "2"],
        ["eval", config, "--checkpoint", str(directory)],
        ["finetune", config, "--options", f"load_checkpoint={directory}",
         f"output_dir={tmp_path / 'ft'}"],
    ]
    for argv in commands:
        code, _, err = run(capsys, *argv)
        assert code == 2, (argv, err)
        assert one_error(err).startswith(expected) or expected in one_error(err), (argv, err)
    assert not (tmp_path / "converted").exists()


def test_a_billion_laughs_yaml_is_refused_in_one_line(tmp_path, capsys):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "train", str(path))
    assert code == 2
    assert one_error(err).startswith(f"{path}: YAML aliases would expand this document")


@pytest.mark.parametrize("argv,message", [
    (["--world-size", "1000000000000"], "world_size(1000000000000) is more than mf plans for"),
    (["--world-size", "1000000000000", "--data-parallel", "-1"], "world_size(1000000000000)"),
    (["--model", "llama_7b", "--num-layers", "99999999"], "num_layers(99999999) is more than"),
    (["--model", "llama_7b", "--vocab-size", "10000000000"], "vocab_size(10000000000) is more"),
    (["--model", "llama_7b", "--seq-length", "10000000000"], "seq_length(10000000000) is more"),
    (["--model", "llama_7b", "--batch-size", "10000000000"], "batch_size(10000000000) is more"),
    (["--micro-batch-num", "10000000000"], "micro_batch_num(10000000000) is more"),
])
def test_parallel_check_bounds_every_count(capsys, argv, message):
    code, out, err = run(capsys, "parallel", "check", *argv)
    assert code == 2 and out == ""
    assert one_error(err).startswith(message)


def test_parallel_check_answers_for_the_largest_world(capsys):
    code, out, _ = run(capsys, "parallel", "check", "--world-size", "1048576",
                       "--data-parallel", "-1")
    assert code == 0
    assert "[0, 1, 2, 3, 4, 5, ..., 1048575]" in out and "(1048572 more)" in out


def test_data_prepare_reports_skipped_files(made, capsys):
    code, out, _ = run(capsys, "data", "prepare", str(made / "text"),
                       str(made / "again.mindrecord"), "--tokenizer", str(made / "tokenizer"),
                       "--seq-length", "16")
    assert code == 0
    assert out.splitlines()[-1] == (f"note: skipped 1 file(s), e.g. {made / 'text' / 'latin1.txt'}"
                                    ": not UTF-8 (byte 0xe9 at offset 3)")


def test_data_prepare_says_why_nothing_is_left(made, tmp_path, capsys):
    (tmp_path / "only.txt").write_bytes(b"abc\xff\xfe")
    code, _, err = run(capsys, "data", "prepare", str(tmp_path), str(tmp_path / "o.mindrecord"),
                       "--tokenizer", str(made / "tokenizer"), "--seq-length", "16")
    assert code == 2
    assert one_error(err) == (f"dataset {tmp_path} has no text left to read: skipped 1 file(s), "
                              f"e.g. {tmp_path / 'only.txt'}: not UTF-8 (byte 0xff at offset 3)")


UNDECODABLE = b"abc\xff\xfe".decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("argv,position", [
    (["generate", "gpt2", UNDECODABLE], 3),
    (["predict", "run.yaml", "--input", UNDECODABLE], 4),
    (["train", "run.yaml", "--options", f"output_dir={UNDECODABLE}"], 4),
])
def test_undecodable_command_line_text_is_refused_naming_it(capsys, argv, position):
    code, _, err = run(capsys, *argv)
    assert code == 2
    message = one_error(err)
    assert message.startswith(f"argument {position} '") and "abc\\xff\\xfe' is not UTF-8 text" \
        in message


def test_undecodable_bytes_from_the_shell_are_refused(tmp_path):
    # The bytes a shell passes for "$(printf 'abc\xff\xfe')", through the real sys.argv.
    result = subprocess.run([sys.executable, "-m", "mf_tui.cli", "generate", "gpt2",
                             b"abc\xff\xfe"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("mf: error: argument 3 'abc\\xff\\xfe' is not UTF-8 text "
                                     "(character 3); mf reads prompts, paths and options as "
                                     "UTF-8")


@pytest.mark.parametrize("code,what", [(errno.ENOSPC, "No space left on device"),
                                       (errno.EROFS, "Read-only file system"),
                                       (errno.EACCES, "Permission denied")])
def test_a_machine_failure_is_mf_error_what_path_with_exit_1(made, tmp_path, capsys,
                                                             monkeypatch, code, what):
    import mf_train.data

    target = tmp_path / "out.mindrecord"

    def fail(*args, **kwargs):
        raise OSError(code, what, str(target))

    monkeypatch.setattr(mf_train.data, "prepare_mindrecord", fail)
    status, _, err = run(capsys, "data", "prepare", str(made / "text"), str(target),
                         "--tokenizer", str(made / "tokenizer"), "--seq-length", "16")
    assert status == 1
    assert err.splitlines()[0] == f"mf: error: {what}: {target}"
    assert "internal error" not in err


def test_a_real_os_error_reaches_the_user_as_one_line(made, tmp_path, capsys):
    (tmp_path / "a_file").write_text("mine")
    target = tmp_path / "a_file" / "out.mindrecord"  # a directory that is a file
    status, _, err = run(capsys, "data", "prepare", str(made / "text"), str(target),
                         "--tokenizer", str(made / "tokenizer"), "--seq-length", "16")
    assert status == 1
    assert err.splitlines()[0].startswith("mf: error: ") and str(tmp_path / "a_file") in err
    assert (tmp_path / "a_file").read_text() == "mine"
