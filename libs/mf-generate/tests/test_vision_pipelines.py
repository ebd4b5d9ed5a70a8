"""The image tasks of `pipeline()` on the tiny Hugging Face checkpoints of mf-models' fixtures:
labels and scores equal transformers' own pipelines (image-classification,
zero-shot-image-classification) within 1e-4, the CLIP similarity and MAE reconstruction agree
with the models' forward, and bad requests are one-line errors. The pipelines run eagerly
here (compiling each costs seconds); one test runs the compiled path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from mf_models.errors import ModelConfigError
from safetensors.numpy import load_file

from mf_generate import GenerateConfigError, pipeline
from mf_generate.vision_pipelines import batch_sizes

LIBS = Path(__file__).resolve().parents[2]
MODELS = LIBS / "mf-models" / "tests" / "fixtures"
PICTURES = load_file(str(LIBS / "mf-tokenize" / "tests" / "fixtures" / "image_processors" /
                         "expected.safetensors"))
# The two images the fixture script gave transformers' pipelines.
IMAGES = [PIL.Image.fromarray(PICTURES["image/rgb_pil"]),
          PIL.Image.fromarray(PICTURES["image/big_pil"])]
TOL = 1e-4


def expected(family: str) -> dict[str, np.ndarray]:
    return load_file(str(MODELS / family / "expected.safetensors"))


@pytest.fixture(scope="module")
def pipes():
    return {
        "vit": pipeline("image_classification", model=MODELS / "vit" / "hf", compile=False),
        "swin": pipeline("image_classification", model=MODELS / "swin" / "hf", compile=False),
        "zero_shot": pipeline("zero_shot_image_classification", model=MODELS / "clip" / "hf",
                              compile=False),
        "contrastive": pipeline("contrastive_language_image_pretrain",
                                model=MODELS / "clip" / "hf", compile=False),
        "mae": pipeline("masked_image_modeling", model=MODELS / "mae" / "hf", compile=False),
    }


def assert_ranked_equal(results, family: str, names: list[str]) -> None:
    e = expected(family)
    assert len(results) == len(IMAGES)
    for row, ids, scores in zip(results, e["pipeline_label_ids"], e["pipeline_scores"],
                                strict=True):
        assert [r["label"] for r in row] == [names[i] for i in ids]
        assert np.abs(np.array([r["score"] for r in row]) - scores).max() < TOL


@pytest.mark.parametrize("family", ["vit", "swin"])
def test_image_classification_equals_transformers_pipeline(pipes, family):
    pipe = pipes[family]
    results = pipe(IMAGES, top_k=3)
    assert all(set(r) == {"label", "score"} for row in results for r in row)
    assert_ranked_equal(results, family, pipe.model.config.labels)


def test_compiled_pipeline_gives_the_eager_results_in_padded_batches(pipes):
    compiled = pipeline("image_classification", model=MODELS / "vit" / "hf", batch_size=4)
    three = [*IMAGES, IMAGES[0]]  # one batch, padded from 3 to 4: one compile
    eager = pipes["vit"](three, top_k=5)
    for ours, theirs in zip(compiled(three, top_k=5), eager, strict=True):
        assert [r["label"] for r in ours] == [r["label"] for r in theirs]
        assert np.abs(np.array([r["score"] for r in ours]) -
                      np.array([r["score"] for r in theirs])).max() < 1e-5


def test_one_image_a_file_and_a_subset_of_labels(pipes, tmp_path):
    pipe = pipes["vit"]
    path = tmp_path / "picture.png"
    IMAGES[0].save(path)
    single = pipe(str(path))  # one input: one flat list, like transformers
    assert single == pipe(IMAGES[0]) and len(single) == 5
    scores = {r["label"]: r["score"] for r in single}
    picked = pipe(IMAGES[0], labels=["dog", "cat"])
    assert {r["label"] for r in picked} == {"dog", "cat"}
    assert all(abs(r["score"] - scores[r["label"]]) < 1e-7 for r in picked)
    with pytest.raises(ModelConfigError) as err:
        pipe(IMAGES[0], labels=["dog", "horse"])
    assert str(err.value).startswith("label 'horse' is not one of the model's 5 classes: 'cat'")
    assert err.value.exit_code == 2


def test_zero_shot_equals_transformers_pipeline(pipes):
    results = pipes["zero_shot"](IMAGES, candidate_labels=["cat", "dog", "bird"])
    assert_ranked_equal(results, "clip", ["cat", "dog", "bird"])
    assert list(results[0][0]) == ["score", "label"]


def test_contrastive_scores_are_clips_logits_per_image(pipes):
    pipe = pipes["contrastive"]
    texts = ["a photo of a cat", "a dog", "a bird"]
    results = pipe(IMAGES, texts=texts)
    inputs = pipe.tokenizer(texts, padding=True, return_tensors="np")
    pixels = pipe.image_processor(IMAGES)["pixel_values"]
    out = pipe.model(inputs["input_ids"], pixels, inputs["attention_mask"])
    logits = out.logits_per_image.asnumpy()
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    cosines = out.image_embeds.asnumpy() @ out.text_embeds.asnumpy().T
    for row, p, c in zip(results, probs, cosines, strict=True):
        assert [r["label"] for r in row] == texts  # in the order of the texts
        assert np.abs(np.array([r["score"] for r in row]) - p).max() < TOL
        assert np.abs(np.array([r["similarity"] for r in row]) - c).max() < TOL


def test_masked_image_modeling_reconstructs_the_hidden_patches(pipes):
    pipe = pipes["mae"]
    first, again = pipe(IMAGES[0], seed=3), pipe(IMAGES[0], seed=3)
    assert first["loss"] == again["loss"]
    np.testing.assert_array_equal(first["mask"], again["mask"])
    assert first["mask"].shape == (4, 4) and first["mask"].sum() == 12
    # The loss is the model's on the same pixels and noise.
    pixels = pipe.image_processor(IMAGES[0])["pixel_values"]
    noise = np.random.default_rng(3).random((1, 16), dtype=np.float32)
    loss = float(pipe.model(pixels, noise=noise).loss.asnumpy())
    assert abs(first["loss"] - loss) < 1e-5
    # Visible patches of the pasted image are the input's, back in pixels.
    image = np.asarray(first["image"]).astype(int)
    source = np.asarray(IMAGES[0].resize((32, 32), PIL.Image.BILINEAR)).astype(int)
    visible = np.kron(1 - first["mask"], np.ones((8, 8))).astype(bool)
    assert image.shape == (32, 32, 3) and first["reconstruction"].size == (32, 32)
    assert np.abs(image[visible] - source[visible]).max() <= 1
    assert pipe(IMAGES[0], seed=4)["loss"] != first["loss"]


def test_a_task_needs_its_family_and_its_inputs():
    with pytest.raises(GenerateConfigError) as err:
        pipeline("image_classification", model=MODELS / "clip" / "hf")
    assert str(err.value).endswith("needs a vit or swin model; "
                                   f"{MODELS / 'clip' / 'hf'} is clip")
    pipe = pipeline("zero_shot_image_classification", model=MODELS / "clip" / "hf",
                    compile=False)
    with pytest.raises(GenerateConfigError, match="candidate_labels must be a non-empty list"):
        pipe(IMAGES[0], candidate_labels=[])
    with pytest.raises(GenerateConfigError, match="needs a {} where the label goes"):
        pipe(IMAGES[0], candidate_labels=["cat"], hypothesis_template="a photo")


def test_batches_are_padded_to_powers_of_two():
    assert batch_sizes(11, 4) == [4, 4, 4]
    assert batch_sizes(9, 8) == [8, 1]
    assert batch_sizes(3, 8) == [4]
    assert batch_sizes(8, 8) == [8]
