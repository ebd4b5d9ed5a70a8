"""`mf train|finetune|eval|predict CONFIG` and `mf data prepare` through the real CLI: one small
job end to end (prepare, train, eval, predict), the default job shortened, and every bad input
of issue 6 as one line, exit code 2 and no output directory."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mf_tui import cli

ROOT = Path(__file__).resolve().parents[3]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ---- one small job end to end -------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Some text, and a SentencePiece tokenizer of 300 pieces trained on it."""
    from mf_tokenize import train_sentencepiece

    root = tmp_path_factory.mktemp("corpus")
    words = ["def", "return", "value", "class", "import", "self", "print", "list", "item"]
    lines = [f"{words[i % 9]} {words[(i * 7) % 9]}_{i % 13} = {words[(i * 5) % 9]}({i % 7})\n"
             for i in range(1500)]
    for part in range(3):
        write(root / "text" / f"part{part}.txt", "".join(lines[part::3]))
    train_sentencepiece(lines, 300, root / "tokenizer")
    return root


def config_text(data: str, output: Path, tokenizer: Path, extra: str = "") -> str:
    return textwrap.dedent(f"""\
        seed: 1
        output_dir: {output}
        runner_config: {{epochs: 1, batch_size: 4, max_steps: 6}}
        lr_schedule: {{type: cosine, learning_rate: 5.0e-3, warmup_steps: 1}}
        train_dataset:
          data_loader: {{type: MindDataset, dataset_dir: "{data}"}}
        eval_dataset:
          data_loader: {{type: MindDataset, dataset_dir: "{data}", num_samples: 8}}
        do_eval: true
        eval_step_interval: 3
        model:
          model_config: {{type: LlamaConfig, seq_length: 32, vocab_size: 300, hidden_size: 32,
                          num_layers: 1, num_heads: 2, intermediate_size: 64}}
        processor:
          tokenizer: {{type: LlamaTokenizer, vocab_file: "{tokenizer}/tokenizer.model"}}
        """) + textwrap.dedent(extra)


@pytest.fixture(scope="module")
def job(corpus, tmp_path_factory):
    """`mf data prepare` then `mf train` on the result."""
    root = tmp_path_factory.mktemp("job")
    data = root / "train.mindrecord"
    code = cli.main(["data", "prepare", str(corpus / "text"), str(data), "--tokenizer",
                     str(corpus / "tokenizer"), "--seq-length", "32"])
    assert code == 0
    config = write(root / "run.yaml", config_text(str(data), root / "out", corpus / "tokenizer"))
    return {"root": root, "data": data, "config": config, "out": root / "out"}


def test_data_prepare_writes_packed_mindrecord(job, corpus):
    from mf_tokenize import AutoTokenizer
    from mf_train.data import read_mindrecord

    samples = read_mindrecord(job["data"])
    assert samples.shape[1] == 33
    tok = AutoTokenizer.from_pretrained(corpus / "tokenizer")
    first = (corpus / "text" / "part0.txt").read_text()
    assert list(samples[0]) == (tok.encode(first) + [tok.eos_token_id])[:33]


def test_train_prints_the_run_and_its_perplexity(job, capsys):
    code, out, err = run(capsys, "train", str(job["config"]))
    assert code == 0, err[-3000:]
    assert "global_batch_size = 4  (derived: batch_size(4) * data_parallel(1)" in err
    assert len(re.findall(r"^step \d/6 \| loss [\d.]+ \| lr ", err, re.M)) == 6
    match = re.search(r"held-out perplexity: ([\d.]+) before training -> ([\d.]+) after 6 "
                      r"steps", out)
    assert match and float(match[2]) < float(match[1])
    assert f"checkpoint {job['out'] / 'checkpoints' / 'checkpoint-6'}" in out
    status = json.loads((job["out"] / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == 6
    job["last_eval"] = float(re.findall(r"eval at step 6: loss [\d.]+, perplexity ([\d.]+)",
                                        err)[-1])


def test_eval_and_predict_use_the_trained_checkpoint(job, capsys):
    code, out, err = run(capsys, "eval", str(job["config"]), "--options",
                         f"load_checkpoint={job['out']}")
    assert code == 0, err[-3000:]
    perplexity = float(re.search(r"^perplexity: ([\d.]+)$", out, re.M)[1])
    assert perplexity == pytest.approx(job["last_eval"], rel=1e-3)
    code, out, err = run(capsys, "predict", str(job["config"]), "--input", "def value",
                         "--max-new-tokens", "5", "-o", f"load_checkpoint={job['out']}")
    assert code == 0, err[-3000:]
    assert out.startswith("def value")


def test_a_checkpoint_is_a_model_directory_for_mf_generate(job, capsys):
    checkpoint = job["out"] / "checkpoints" / "checkpoint-6"
    code, predicted, err = run(capsys, "predict", str(job["config"]), "--input", "def value",
                               "--max-new-tokens", "5", "-o", f"load_checkpoint={checkpoint}")
    assert code == 0, err[-3000:]
    code, generated, err = run(capsys, "generate", str(checkpoint), "def value",
                               "--max-new-tokens", "5")
    assert code == 0, err[-3000:]
    assert generated.strip() == predicted.strip()


def test_lora_finetune_then_eval_and_predict_its_checkpoint(job, corpus, capsys):
    base = job["out"]
    lora_out = job["root"] / "lora"
    text = config_text(str(job["data"]), lora_out, corpus / "tokenizer", f"""\
        load_checkpoint: {base}
        """).replace("intermediate_size: 64}", "intermediate_size: 64,\n"
                     "                          pet_config: {pet_type: lora, lora_rank: 4, "
                     "lora_alpha: 8}}")
    config = write(job["root"] / "run_lora.yaml", text)
    code, out, err = run(capsys, "finetune", str(config), "-o", "lr_schedule.learning_rate=0.05")
    assert code == 0, err[-3000:]
    tuned = float(re.findall(r"eval at step 6: loss [\d.]+, perplexity ([\d.]+)", err)[-1])
    assert tuned != pytest.approx(job["last_eval"], rel=1e-3)  # the LoRA weights moved it

    # --checkpoint: the LoRA run's weights over load_checkpoint's base; without it, the base
    code, out, err = run(capsys, "eval", str(config), "--checkpoint", str(lora_out))
    assert code == 0, err[-3000:]
    assert float(re.search(r"^perplexity: ([\d.]+)$", out, re.M)[1]) == pytest.approx(
        tuned, rel=1e-3)
    code, out, err = run(capsys, "eval", str(config))
    assert code == 0, err[-3000:]
    assert float(re.search(r"^perplexity: ([\d.]+)$", out, re.M)[1]) == pytest.approx(
        job["last_eval"], rel=1e-3)
    code, predicted, err = run(capsys, "predict", str(config), "--input", "def value",
                               "--max-new-tokens", "5", "--checkpoint", str(lora_out))
    assert code == 0, err[-3000:]
    assert predicted.startswith("def value")

    # mf export merges LoRA into the base (W += B A alpha/rank): a plain model directory that
    # generates the LoRA model's text
    merged = job["root"] / "merged"
    code, out, err = run(capsys, "export", str(config), str(merged), "--checkpoint",
                         str(lora_out))
    assert code == 0, err[-3000:]
    from safetensors.numpy import load_file

    assert not any("lora" in name for name in load_file(str(merged / "model.safetensors")))
    code, generated, err = run(capsys, "generate", str(merged), "def value",
                               "--max-new-tokens", "5")
    assert code == 0, err[-3000:]
    assert generated.strip() == predicted.strip()
    code, _, err = run(capsys, "export", str(config), str(merged))
    assert code == 2 and "already holds an earlier model of mf's" in err

    code, _, err = run(capsys, "eval", str(config), "--checkpoint", str(job["root"] / "nope"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err


def test_a_second_run_into_the_same_output_dir_is_refused(job, capsys):
    code, _, err = run(capsys, "train", str(job["config"]))
    assert code == 2
    assert "already holds an earlier job of mf's; resume it" in err
    assert json.loads((job["out"] / "status.json").read_text())["state"] == "finished"


# ---- the default job ---------------------------------------------------------------------------

def test_the_default_job_shortened(tmp_path, capsys, monkeypatch):
    """configs/quickstart.yaml with a smaller model and 3 steps: the same path as the README's
    first command (stdlib data, tokenizer trained and cached, eval, checkpoint, sample)."""
    monkeypatch.chdir(tmp_path)
    options = ["runner_config.max_steps=3", "eval_step_interval=-1",
               "eval_dataset.data_loader.num_samples=8", "model.model_config.num_layers=1",
               "model.model_config.hidden_size=32", "model.model_config.num_heads=2",
               "model.model_config.intermediate_size=64", "model.model_config.vocab_size=512",
               "processor.tokenizer.train_vocab_size=512",
               f"processor.tokenizer.vocab_file={tmp_path / 'tok' / 'tokenizer.model'}",
               "callbacks.2.max_new_tokens=4"]
    code, out, err = run(capsys, "train", str(ROOT / "configs" / "quickstart.yaml"),
                         "--options", *options)
    assert code == 0, err[-3000:]
    assert "trained a SentencePiece tokenizer of 512 pieces" in err
    assert (tmp_path / "tok" / "tokenizer.model").is_file()  # cached for the next run
    assert "--- sample (4 new tokens) ---\ndef " in out
    assert "held-out perplexity:" in out
    assert (tmp_path / "output" / "quickstart" / "checkpoints" / "checkpoint-3").is_dir()


@pytest.mark.slow
def test_the_default_job_as_the_readme_runs_it(tmp_path):
    """`mf train configs/quickstart.yaml`: a few hundred steps, perplexity falls well below
    its start, a checkpoint, a streamed sample (several minutes on 2 cores)."""
    result = subprocess.run([sys.executable, "-m", "mf_tui.cli", "train",
                             str(ROOT / "configs" / "quickstart.yaml")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    before, after = map(float, re.search(r"held-out perplexity: ([\d.]+) before training -> "
                                         r"([\d.]+) after", result.stdout).groups())
    assert after < before / 10
    assert "--- sample (80 new tokens) ---" in result.stdout
    assert (tmp_path / "output" / "quickstart" / "checkpoints" / "checkpoint-300").is_dir()


# ---- bad input ---------------------------------------------------------------------------------

@pytest.fixture
def bad(tmp_path, job, corpus):
    def make(extra: str = "", data: str | None = None, text: str | None = None) -> Path:
        body = text if text is not None else config_text(
            data if data is not None else str(job["data"]), tmp_path / "out",
            corpus / "tokenizer", extra)
        return write(tmp_path / "bad.yaml", body)
    return make


def fails(capsys, tmp_path, argv, pattern):
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert re.search(pattern, lines[0]), lines[0]
    assert not (tmp_path / "out").exists()


def test_malformed_yaml_names_the_line(bad, capsys, tmp_path):
    path = bad(text="seed: 1\nrunner_config:\n  batch_size: [4\n")
    fails(capsys, tmp_path, ["train", str(path)], r"bad\.yaml:4: malformed YAML")


def test_unknown_key_suggests_the_right_one(bad, capsys, tmp_path):
    path = bad(extra="runner_confg: {epochs: 1}\n")
    fails(capsys, tmp_path, ["train", str(path)],
          r"unknown key 'runner_confg'; did you mean 'runner_config'\?")


def test_a_dataset_that_does_not_exist(bad, capsys, tmp_path):
    path = bad(data=str(tmp_path / "missing.mindrecord"))
    fails(capsys, tmp_path, ["train", str(path)], r"dataset .*missing\.mindrecord does not exist")


def test_a_dataset_too_short_for_one_batch(bad, capsys, tmp_path):
    path = bad()
    fails(capsys, tmp_path, ["train", str(path), "--options", "runner_config.batch_size=4096"],
          r"fewer than one global batch of 4096 = batch_size\(4096\) \* data_parallel\(1\)")


def test_a_checkpoint_of_another_model(bad, capsys, tmp_path, job):
    path = bad()
    fails(capsys, tmp_path, ["train", str(path), "--options", f"load_checkpoint={job['out']}",
                             "model.model_config.hidden_size=48"],
          r"model\.\S+: .* shape \(\d+, 32\) != model shape \(\d+, 48\)")


def test_a_resume_into_a_changed_config(bad, capsys, tmp_path, job):
    import shutil

    path = bad()
    shutil.copytree(job["out"], tmp_path / "out")
    before = sorted(p.name for p in (tmp_path / "out").rglob("*"))
    code, _, err = run(capsys, "train", str(path), "--resume", "--options", "seed=2")
    assert code == 2
    assert re.search(r"^mf: error: cannot resume from .*checkpoint-6: seed was 1 there, 2 now",
                     err), err
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == before  # nothing written


def test_stray_arguments_and_bad_options(bad, capsys, tmp_path):
    path = bad()
    fails(capsys, tmp_path, ["train", str(path), "extra"], r"unexpected argument 'extra'")
    fails(capsys, tmp_path, ["train", str(path), "--options", "seed"],
          r"--options expects KEY=VALUE")
    fails(capsys, tmp_path, ["predict", str(path)], r"mf predict needs at least one --input")
    fails(capsys, tmp_path, ["predict", str(path), "--input", "x", "--temperature", "0"],
          r"temperature=0.0 must be > 0 when sampling")


def test_a_bad_config_fails_before_mindspore_is_imported(tmp_path):
    path = write(tmp_path / "run.yaml", "seed: 1\nlr_schedule: {type: cosin}\n")
    code = ("import sys; from mf_tui import cli; rc = cli.main(['train', sys.argv[1]]); "
            "assert 'mindspore' not in sys.modules, 'mindspore imported'; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "lr_schedule.type = 'cosin'; allowed: " in result.stderr


def test_the_progress_bar_follows_step_records():
    from mf_train.callbacks import StepRecord, TrainInfo, TrainSummary

    from mf_tui.commands.train import _Progress

    bar = _Progress()
    bar.on_train_begin(TrainInfo(total_steps=5, start_step=2, global_batch_size=4,
                                 seq_length=8))
    task = bar.progress.tasks[0]
    assert (task.total, task.completed) == (5, 2)  # a resumed run starts part-way
    bar.on_step_end(StepRecord(step=3, total_steps=5, epoch=0, loss=1.23456, lr=1e-3,
                               grad_norm=0.5, tokens_per_s=1234.4, mem_gib=0.5))
    assert task.completed == 3
    assert task.fields == {"loss": "1.2346", "speed": "1234"}
    bar.on_train_end(TrainSummary(steps=3, last_loss=1.2, checkpoint=None))
    assert bar.task is None and not bar.progress.live.is_started


# ---- no silent random weights (issue 10, part 3) -----------------------------------------------

def test_commands_that_need_trained_weights_refuse_to_run_without_them(job, capsys):
    """eval, predict, export and finetune without load_checkpoint/--checkpoint: one line naming
    the key and the flag, exit code 2, nothing written; --random-init runs and says so."""
    config = str(job["config"])
    for argv in (["eval", config], ["predict", config, "--input", "def"],
                 ["export", config, str(job["root"] / "untrained")], ["finetune", config]):
        code, _, err = run(capsys, *argv)
        assert code == 2, (argv, err)
        assert "needs trained weights" in err or "starts from trained weights" in err, err
        assert "load_checkpoint" in err and "--random-init" in err and err.count("\n") == 1
    assert not (job["root"] / "untrained").exists()

    code, out, err = run(capsys, "eval", config, "--random-init")
    assert code == 0, err[-3000:]
    assert "untrained model" in err
    perplexity = float(re.search(r"^perplexity: ([\d.]+)$", out, re.M)[1])
    assert perplexity > 100  # an untrained 300-word model is about as unsure as uniform
    code, out, err = run(capsys, "export", config, str(job["root"] / "untrained"),
                         "--random-init")
    assert code == 0 and "untrained" in out, err[-3000:]


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    """`mf train CONFIG --dry-run`: layout, batch, steps, memory and job directory, without
    reading data, importing MindSpore or creating output_dir."""
    out = tmp_path / "out"
    path = write(tmp_path / "run.yaml", config_text(str(tmp_path / "missing.mindrecord"), out,
                                                    tmp_path / "tok"))
    code = ("import sys; from mf_tui import cli; rc = cli.main(sys.argv[1:]); "
            "assert 'mindspore' not in sys.modules, 'mindspore imported'; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, "train", str(path), "--dry-run",
                             "--options", "parallel_config.data_parallel=2"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    assert "on 2 rank(s): data_parallel=2 model_parallel=1" in text
    assert "global_batch_size = 8" in text and "steps: 6 optimizer steps" in text
    assert "memory estimate:" in text and f"job directory: {out}" in text
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["train"], "Missing argument 'CONFIG'. (see mf train --help)"),
    (["train", "x.yaml", "--bogus"], "No such option: --bogus (see mf train --help)"),
    (["data", "prepare", "in", "out", "-t", "tok"],
     "Missing option '--seq-length'. (see mf data prepare --help)"),
    (["nosuch"], "No such command 'nosuch'."),
])
def test_usage_errors_are_one_line_with_exit_code_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and err.strip().count("\n") == 0 and message in err, err
