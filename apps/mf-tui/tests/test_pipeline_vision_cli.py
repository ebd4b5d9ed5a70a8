"""`mf pipeline TASK MODEL_OR_DIR IMAGE...` on the tiny Hugging Face checkpoints of mf-models'
fixtures: the image tasks print (as JSON) what transformers' pipelines give, MAE writes its
reconstruction without overwriting anything, and bad requests are one line with exit code 2
(before any weights load, where they can be told then)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from safetensors.numpy import load_file

from mf_tui import cli

LIBS = Path(__file__).resolve().parents[3] / "libs"
MODELS = LIBS / "mf-models" / "tests" / "fixtures"
PICTURES = LIBS / "mf-tokenize" / "tests" / "fixtures" / "image_processors" / \
    "expected.safetensors"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[str]:
    """The two images transformers' pipelines saw in the fixture script, as PNG files."""
    arrays = load_file(str(PICTURES))
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for name in ("rgb_pil", "big_pil"):
        path = folder / f"{name}.png"
        PIL.Image.fromarray(arrays[f"image/{name}"]).save(path)
        paths.append(str(path))
    return paths


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["pipeline", *(str(a) for a in argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_zero_shot_prints_transformers_scores(images, capsys):
    code, out, err = run(capsys, "zero-shot-image-classification", MODELS / "clip" / "hf",
                         *images, "--labels", "cat,dog,bird")
    assert code == 0, err
    results = json.loads(out)  # one list per image, as the Python call returns them
    expected = load_file(str(MODELS / "clip" / "expected.safetensors"))
    labels = ["cat", "dog", "bird"]
    for ranked, ids, scores in zip(results, expected["pipeline_label_ids"],
                                   expected["pipeline_scores"], strict=True):
        assert [r["label"] for r in ranked] == [labels[i] for i in ids]
        assert np.abs(np.array([r["score"] for r in ranked]) - scores).max() < 1e-4


def test_image_classification_lines(images, capsys):
    code, out, err = run(capsys, "image_classification", MODELS / "vit" / "hf", images[0],
                         "--top-k", "2")
    assert code == 0, err
    expected = load_file(str(MODELS / "vit" / "expected.safetensors"))
    names = ["cat", "dog", "bird", "car", "tree"]
    ranked = json.loads(out)  # one image: one list
    top2 = expected["pipeline_label_ids"][0][:2]
    assert [r["label"] for r in ranked] == [names[i] for i in top2]
    assert abs(ranked[0]["score"] - expected["pipeline_scores"][0][0]) < 1e-4


def test_masked_image_modeling_writes_its_reconstruction_once(images, capsys, tmp_path):
    target = tmp_path / "out" / "reconstruction.png"
    code, out, err = run(capsys, "masked_image_modeling", MODELS / "mae" / "hf", images[0],
                         "--seed", "0", "--output", target)
    assert code == 0, err
    [row] = json.loads(out)
    assert row["masked_patches"] == 12 and row["output"] == str(target)
    assert np.array(row["mask"]).shape == (4, 4) and row["loss"] > 0
    assert PIL.Image.open(target).size == (32, 32)
    assert [p.name for p in target.parent.iterdir()] == ["reconstruction.png"]  # no temp left
    code, _, err = run(capsys, "masked_image_modeling", MODELS / "mae" / "hf", images[0],
                       "--output", target)
    assert code == 2 and "exists; mf does not overwrite files it did not make" in err


def _fails(capsys, *argv: str, fragment: str) -> None:
    code, _, err = run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert lines[0].startswith("mf: error: ") and fragment in lines[0], err
    assert len(lines) == 1, err


def test_bad_requests_are_one_line_exit_2(images, capsys, tmp_path):
    clip, vit = MODELS / "clip" / "hf", MODELS / "vit" / "hf"
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("just text")
    _fails(capsys, "image_clasification", vit, images[0],
           fragment="did you mean 'image_classification'")
    _fails(capsys, "image_classification", clip, images[0],
           fragment="task 'image_classification' needs a vit or swin model")
    _fails(capsys, "image_classification", vit, tmp_path / "missing.png",
           fragment="missing.png does not exist")
    _fails(capsys, "image_classification", vit, not_an_image,
           fragment="notes.png is not an image Pillow can read")
    _fails(capsys, "image_classification", vit, images[0], "--labels", "cat,horse",
           fragment="label 'horse' is not one of the model's 5 classes")
    _fails(capsys, "zero_shot_image_classification", clip, images[0],
           fragment="needs --labels a,b,c")
    _fails(capsys, "image_classification", vit, images[0], "--top-k", "0",
           fragment="top_k=0 must be an integer >= 1")
    _fails(capsys, "image_classification", vit, images[0], "--seed", "1",
           fragment="--seed is not an option of image_classification")
    _fails(capsys, "fill_mask", vit, "a [MASK]", "--labels", "a,b",
           fragment="--labels is for the image tasks")
