"""pipeline(): MindFormers' output shape, model by object / directory / preset, every task name
of MindFormers' matrix (and the refusal of one not built), and a tokenizer that does not
belong to the model."""

from __future__ import annotations

import numpy as np
import pytest
from generate_testing import train_tokenizer

from mf_generate import (
    GenerateConfigError,
    TextGenerationPipeline,
    UnsupportedTaskError,
    generate,
    pipeline,
)
from mf_generate.pipelines import NOT_YET, TASKS, resolve_task


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer("bpe")  # the 512 ids of the llama fixture


def test_text_generation_returns_mindformers_shape_with_the_prompt(llama, tokenizer):
    pipe = pipeline("text_generation", model=llama, tokenizer=tokenizer, max_length=20)
    result = pipe("I love Beijing, because")
    assert list(result[0]) == ["text_generation_text"] and len(result) == 1
    text = result[0]["text_generation_text"][0]
    assert text.startswith("I love Beijing, because")
    ids = tokenizer("I love Beijing, because")["input_ids"]
    expected = generate(llama, [ids], max_length=20, eos_token_id=tokenizer.eos_token_id,
                        return_dict=True)
    real = expected.sequences[0][expected.attention_mask[0].astype(bool)]
    assert text == tokenizer.decode(real, skip_special_tokens=True)


def test_a_list_of_prompts_gives_one_result_each_as_if_alone(llama, tokenizer):
    pipe = pipeline("text_generation", model=llama, tokenizer=tokenizer, max_new_tokens=6)
    prompts = ["I love Beijing, because", "中国的首都是北京。The quick brown fox"]
    both = pipe(prompts)
    assert len(both) == 2
    assert [r["text_generation_text"][0][: len(p)] for r, p in zip(both, prompts,
                                                                   strict=True)] == prompts
    # Call-time settings win over the pipeline's.
    longer = pipe(prompts, max_new_tokens=8)
    for short, long in zip(both, longer, strict=True):
        assert long["text_generation_text"][0].startswith(short["text_generation_text"][0])


# The task names of MindFormers' README model matrix.
MATRIX_TASKS = ["text_generation", "masked_language_modeling", "text_classification",
                "token_classification", "question_answering", "translation",
                "masked_image_modeling", "image_classification",
                "contrastive_language_image_pretrain", "zero_shot_image_classification"]


def test_every_task_of_mindformers_matrix_has_a_pipeline():
    assert NOT_YET == ()
    assert all(resolve_task(task) in TASKS for task in MATRIX_TASKS)


def test_a_task_not_built_yet_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr("mf_generate.pipelines.NOT_YET", ("image_segmentation",))
    with pytest.raises(UnsupportedTaskError) as info:
        pipeline("image_segmentation", model="gpt2")
    assert str(info.value).startswith("task 'image_segmentation' is not supported yet")
    assert "\n" not in str(info.value) and info.value.exit_code == 2


def test_an_unknown_task_gets_a_suggestion():
    with pytest.raises(GenerateConfigError, match="'text_generaton' is not a pipeline task; "
                                                  "did you mean 'text_generation'"):
        pipeline("text_generaton", model="gpt2")


def test_bad_settings_fail_before_loading_anything():
    with pytest.raises(GenerateConfigError, match="top_p=0 must be in"):
        pipeline("text_generation", model="/no/such/dir", top_p=0)


def test_a_tokenizer_larger_than_the_vocabulary_is_refused(tokenizer):
    from mf_models import AutoModelForCausalLM

    small = AutoModelForCausalLM.from_config("llama_debug", vocab_size=300)
    with pytest.raises(GenerateConfigError) as info:
        pipeline("text_generation", model=small, tokenizer=tokenizer)
    n = len(tokenizer)
    assert str(info.value) == (f"the tokenizer has {n} tokens but the model's vocab_size is "
                               f"300: they do not belong together (ids 300..{n - 1} have no "
                               "embedding)")


def test_model_from_a_directory_or_a_preset_brings_its_tokenizer(llama, tokenizer, tmp_path,
                                                                   monkeypatch):
    llama.save_pretrained(tmp_path / "mine")
    tokenizer.save_pretrained(tmp_path / "mine")
    pipe = pipeline("text_generation", model=str(tmp_path / "mine"))
    assert isinstance(pipe, TextGenerationPipeline)
    assert len(pipe.tokenizer) == len(tokenizer)
    np.testing.assert_array_equal(pipe.model.state_dict()["lm_head.weight"],
                                  llama.state_dict()["lm_head.weight"])
    # A preset name reads $MF_HOME/<preset>/ for both (MindFormers' model names).
    monkeypatch.setenv("MF_HOME", str(tmp_path))
    (tmp_path / "mine").rename(tmp_path / "llama_debug")
    pipe = pipeline("text_generation", model="llama_debug")
    assert pipe.model.config.vocab_size == 512 and len(pipe.tokenizer) == len(tokenizer)


def test_a_model_built_from_a_config_needs_a_tokenizer():
    from mf_models import AutoModelForCausalLM, LlamaConfig

    model = AutoModelForCausalLM.from_config(LlamaConfig.from_name("llama_debug").replace(
        name=""))
    with pytest.raises(GenerateConfigError, match="pass tokenizer="):
        pipeline("text_generation", model=model)
