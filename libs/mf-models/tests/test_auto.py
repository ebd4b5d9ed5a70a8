"""MindFormers' `AutoConfig` / `AutoModel` over the model names of its README's model matrix
(text and decoder rows; the vision rows belong to the vision families), and the task Auto
classes of either library."""

from __future__ import annotations

import pytest

from mf_models import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    WeightsNotFoundError,
    preset_config,
)
from mf_models.errors import ModelConfigError

# The seed README's model matrix -> the class MindFormers' AutoModel builds for it here.
SEED_MODELS = {
    "bert_base_uncased": "BertForMaskedLM",
    "txtcls_bert_base_uncased": "BertForSequenceClassification",
    "txtcls_bert_base_uncased_mnli": "BertForSequenceClassification",
    "tokcls_bert_base_chinese": "BertForTokenClassification",
    "tokcls_bert_base_chinese_cluener": "BertForTokenClassification",
    "qa_bert_base_uncased": "BertForQuestionAnswering",
    "qa_bert_base_chinese_uncased": "BertForQuestionAnswering",
    "t5_small": "T5ForConditionalGeneration",
    "gpt2_small": "GPT2LMHeadModel", "gpt2_13b": "GPT2LMHeadModel", "gpt2_52b": "GPT2LMHeadModel",
    "pangualpha_2_6_b": "PanguAlphaHeadModel", "pangualpha_13b": "PanguAlphaHeadModel",
    "glm_6b": "GLMForConditionalGeneration", "glm_6b_lora": "GLMForConditionalGeneration",
    "glm2_6b": "ChatGLM2ForConditionalGeneration",
    "llama_7b": "LlamaForCausalLM", "llama_13b": "LlamaForCausalLM",
    "llama_65b": "LlamaForCausalLM", "llama_7b_lora": "LlamaForCausalLM",
    "bloom_560m": "BloomLMHeadModel", "bloom_7.1b": "BloomLMHeadModel",
    "bloom_65b": "BloomLMHeadModel", "bloom_176b": "BloomLMHeadModel",
}


@pytest.mark.parametrize("name", SEED_MODELS)
def test_every_seed_model_name_resolves(name, tmp_path, monkeypatch):
    monkeypatch.setenv("MF_HOME", str(tmp_path))
    config = AutoConfig.from_pretrained(name)
    assert AutoModel.model_class(config).__name__ == SEED_MODELS[name]
    # No weights here: from_pretrained says where it looked (the preset's folder).
    with pytest.raises(WeightsNotFoundError, match=str(tmp_path / config.name)):
        AutoModel.from_pretrained(name)


def test_lora_presets_carry_mindformers_pet_config():
    assert preset_config("llama_7b_lora").pet_config == {
        "pet_type": "lora", "lora_rank": 16, "lora_alpha": 16, "lora_dropout": 0.05,
        "target_modules": ".*wq|.*wk|.*wv|.*wo"}
    assert preset_config("glm_6b_lora").pet_config == {
        "pet_type": "lora", "lora_rank": 8, "lora_alpha": 32, "lora_dropout": 0.1}
    # the architecture is the base model's; only the fine-tuning settings differ
    assert preset_config("llama_7b_lora").replace(pet_config=None, name="llama_7b") == \
        preset_config("llama_7b")
    assert preset_config("pangualpha_2_6_b") == preset_config("pangualpha_2_6b")
    with pytest.raises(ModelConfigError, match="pet_config=.* must be a mapping"):
        preset_config("llama_debug", pet_config="lora")


def test_from_config_builds_the_named_head_and_task_classes_pick_theirs():
    assert type(AutoModel.from_config("bert_debug")).__name__ == "BertForMaskedLM"
    assert type(AutoModel.from_config("llama_debug")).__name__ == "LlamaForCausalLM"
    assert type(AutoModel.from_config("t5_debug")).__name__ == "T5ForConditionalGeneration"
    for auto, expected in ((AutoModelForMaskedLM, "BertForMaskedLM"),
                           (AutoModelForSequenceClassification, "BertForSequenceClassification"),
                           (AutoModelForTokenClassification, "BertForTokenClassification"),
                           (AutoModelForQuestionAnswering, "BertForQuestionAnswering")):
        model = auto.from_config("bert_debug")
        assert type(model).__name__ == expected == model.config.architecture
    assert type(AutoModelForSeq2SeqLM.from_config("t5_debug")).__name__ == \
        "T5ForConditionalGeneration"
    assert type(AutoModelForCausalLM.from_config("gpt2_debug")).__name__ == "GPT2LMHeadModel"
    with pytest.raises(ModelConfigError, match="AutoModelForSeq2SeqLM has no bert model; it "
                                               "builds t5 models"):
        AutoModelForSeq2SeqLM.from_config("bert_debug")
    with pytest.raises(ModelConfigError, match="AutoModelForTokenClassification has no llama "
                                               "model"):
        AutoModelForTokenClassification.from_config("llama_debug")
