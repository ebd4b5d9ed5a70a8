"""Image processors against transformers' PIL-backend processors (fixtures made by
libs/mf-models/tests/fixtures/make_vision_fixtures.py): the same arrays within 1e-6 on RGB,
RGBA, grayscale, float and channels-first inputs, PIL and numpy; settings saved and read as
preprocessor_config.json; the CLIP processor; one-line errors for bad images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from safetensors.numpy import load_file

from mf_tokenize import (
    AutoImageProcessor,
    AutoProcessor,
    CLIPImageProcessor,
    CLIPProcessor,
    CLIPTokenizer,
    ImageInputError,
    ViTImageProcessor,
)
from mf_tokenize.errors import TokenizerConfigError

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "image_processors"
CLIP_DIR = HERE.parents[1] / "mf-models" / "tests" / "fixtures" / "clip" / "hf"
EXPECTED = load_file(str(FIXTURES / "expected.safetensors"))
IMAGES = {k.split("/", 1)[1]: v for k, v in EXPECTED.items() if k.startswith("image/")}
PROCESSORS = ["vit", "clip", "vit_crop"]


def as_input(name: str, array: np.ndarray):
    return PIL.Image.fromarray(array) if name.endswith("_pil") else array


@pytest.mark.parametrize("processor", PROCESSORS)
@pytest.mark.parametrize("image", sorted(IMAGES))
def test_pixel_values_equal_transformers(processor, image):
    proc = AutoImageProcessor.from_pretrained(FIXTURES / processor)
    key = f"{processor}/{image}"
    if key not in EXPECTED:  # transformers refuses it too: RGBA or gray without RGB conversion
        with pytest.raises(ImageInputError) as err:
            proc(as_input(image, IMAGES[image]))
        assert "\n" not in str(err.value) and err.value.exit_code == 2
        assert "channels but the processor normalises 3" in str(err.value)
        return
    pixels = proc(as_input(image, IMAGES[image]))["pixel_values"]
    assert pixels.shape == (1, *EXPECTED[key].shape) and pixels.dtype == np.float32
    assert np.abs(pixels[0] - EXPECTED[key]).max() <= 1e-6


@pytest.mark.parametrize("cls", [ViTImageProcessor, CLIPImageProcessor])
def test_defaults_are_transformers_defaults(cls):
    saved = json.loads((FIXTURES / f"{cls.__name__}Pil_default" /
                        "preprocessor_config.json").read_text())
    assert cls().to_dict() == saved
    assert type(AutoImageProcessor.from_pretrained(FIXTURES / f"{cls.__name__}Pil_default")) \
        is cls


def test_a_batch_of_mixed_inputs_and_a_saved_round_trip(tmp_path):
    proc = AutoImageProcessor.from_pretrained(FIXTURES / "clip")
    names = ["rgb_pil", "rgba_pil", "hwc_float", "chw_uint8"]
    batch = proc([as_input(n, IMAGES[n]) for n in names])["pixel_values"]
    assert batch.shape == (4, 3, 32, 32)
    for row, name in zip(batch, names, strict=True):
        assert np.abs(row - EXPECTED[f"clip/{name}"]).max() <= 1e-6
    proc.save_pretrained(tmp_path)
    assert AutoImageProcessor.from_pretrained(tmp_path) == proc
    stacked = np.stack([IMAGES["hwc_uint8"]] * 2)  # (B, H, W, C): a batch array
    assert proc(stacked)["pixel_values"].shape == (2, 3, 32, 32)


def test_files_are_opened_as_rgb(tmp_path):
    path = tmp_path / "image.png"
    PIL.Image.fromarray(IMAGES["rgba_pil"]).save(path)
    proc = AutoImageProcessor.from_pretrained(FIXTURES / "vit")
    from_file = proc(str(path))["pixel_values"]  # RGBA file -> RGB, as transformers' load_image
    rgb = PIL.Image.fromarray(IMAGES["rgba_pil"]).convert("RGB")
    np.testing.assert_array_equal(from_file, proc(rgb)["pixel_values"])


def test_presets_carry_mindformers_recipes():
    vit = AutoImageProcessor.from_pretrained("vit_base_p16")
    assert isinstance(vit, ViTImageProcessor)
    assert vit.size == {"shortest_edge": 256} and vit.crop_size == {"height": 224, "width": 224}
    assert vit.image_mean == (0.485, 0.456, 0.406)
    big = AutoImageProcessor.from_pretrained("clip_vit_l_14@336")
    assert isinstance(big, CLIPImageProcessor) and big.crop_size["height"] == 336
    pixels = vit(IMAGES["big_pil"])["pixel_values"]
    assert pixels.shape == (1, 3, 224, 224)


def test_clip_processor_pairs_the_tokenizer_and_the_image_processor(tmp_path):
    processor = AutoProcessor.from_pretrained(CLIP_DIR)  # transformers 5's processor_config.json
    assert isinstance(processor, CLIPProcessor)
    assert isinstance(processor.tokenizer, CLIPTokenizer)
    out = processor(text=["a photo of a cat", "a dog"], images=[IMAGES["rgb_pil"]],
                    padding=True)
    assert out["input_ids"].shape[0] == 2 and out["attention_mask"].shape == out[
        "input_ids"].shape
    assert np.abs(out["pixel_values"][0] - EXPECTED["clip/rgb_pil"]).max() <= 1e-6
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["processor_class"] == "CLIPProcessor"
    again = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(again, CLIPProcessor) and again.image_processor == processor.image_processor
    assert again(text="a bird")["input_ids"].tolist() == processor(text="a bird")[
        "input_ids"].tolist()
    assert isinstance(AutoProcessor.from_pretrained(FIXTURES / "vit"), ViTImageProcessor)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((5, 5, 5, 5, 5)), "an image array must be (H, W), (H, W, C) or (C, H, W)"),
    (np.zeros((7, 9, 5)), "image shape (7, 9, 5) has no channel axis of 1, 3 or 4"),
    (np.full((8, 8, 3), 2.5), "floats must be in [0, 1] to be resized"),
    (np.full((8, 8, 3), 300), "whole numbers must be in [0, 255]"),
    (42, "an image must be a PIL image, a numpy array or a file path, not int"),
    ("no/such/picture.png", "image file no/such/picture.png does not exist"),
])
def test_bad_images_are_one_line_errors(bad, message):
    with pytest.raises(ImageInputError) as err:
        ViTImageProcessor()(bad)
    assert message in str(err.value)
    assert "\n" not in str(err.value) and err.value.exit_code == 2


def test_a_file_that_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    with pytest.raises(ImageInputError, match=r"notes.png is not an image Pillow can read"):
        ViTImageProcessor()(str(path))


def test_bad_settings_are_one_line_errors(tmp_path):
    with pytest.raises(TokenizerConfigError, match="resample='blurry' is not a Pillow filter"):
        ViTImageProcessor(resample="blurry")
    with pytest.raises(TokenizerConfigError, match=r"size\['height'\]=0 must be a positive"):
        ViTImageProcessor(size={"height": 0, "width": 4})
    (tmp_path / "preprocessor_config.json").write_text('{"image_processor_type": "Foo"}')
    with pytest.raises(TokenizerConfigError, match="image_processor_type 'Foo' is not supported"):
        AutoImageProcessor.from_pretrained(tmp_path)
    with pytest.raises(TokenizerConfigError, match="'vit_huge' is neither a directory nor"):
        AutoImageProcessor.from_pretrained("vit_huge")
