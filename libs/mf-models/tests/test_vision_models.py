"""ViT, Swin, MAE and CLIP against Hugging Face transformers on tiny random checkpoints
(fixtures/make_vision_fixtures.py), loaded through our importer, no torch: fp32 outputs within
1e-4. Plus what the families share: presets with their published sizes, save/load and export
round trips, the training loss, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from models_errors import one_line
from safetensors.numpy import load_file

from mf_models import (
    AutoModel,
    AutoModelForImageClassification,
    CLIPModel,
    ViTForImageClassification,
    model_dims,
    preset_config,
)
from mf_models.errors import ModelConfigError
from mf_models.weights import hf

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ATOL = 1e-4
FAMILIES = ["vit", "swin", "mae", "clip"]


@pytest.fixture(scope="module")
def loaded():
    """Each family's HF fixture through our importer, built once for the module."""
    return {f: (AutoModel.from_pretrained(FIXTURES / f / "hf"),
                load_file(str(FIXTURES / f / "expected.safetensors"))) for f in FAMILIES}


def np_(tensor) -> np.ndarray:
    return tensor.asnumpy()


# ---- parity --------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["vit", "swin"])
def test_classifier_logits_and_loss_match_transformers(loaded, family):
    model, e = loaded[family]
    out = model(e["pixel_values"], labels=e["labels"])
    assert out.logits.shape == e["logits"].shape
    assert np.abs(np_(out.logits) - e["logits"]).max() < ATOL
    assert abs(float(np_(out.loss)) - float(e["loss"][0])) < ATOL
    loss, logits = out.to_tuple()  # the fields that are set, as HF's to_tuple()
    assert logits is out.logits and loss is out["loss"] and out[0] is loss
    assert list(out) == ["loss", "logits"]


def test_mae_with_fixed_noise_matches_transformers(loaded):
    model, e = loaded["mae"]
    out = model(e["pixel_values"], noise=e["noise"])
    assert np.abs(np_(out.logits) - e["logits"]).max() < ATOL
    np.testing.assert_array_equal(np_(out.mask), e["mask"])
    np.testing.assert_array_equal(np_(out.ids_restore), e["ids_restore"])
    assert abs(float(np_(out.loss)) - float(e["loss"][0])) < ATOL
    assert model.config.norm_pix_loss
    model.norm_pix_loss = False  # read at each eager call: the loss on raw pixels
    try:
        loss = float(np_(model(e["pixel_values"], noise=e["noise"]).loss))
    finally:
        model.norm_pix_loss = True
    assert abs(loss - float(e["loss_plain"][0])) < ATOL


def test_mae_masks_three_quarters_and_the_noise_decides_which(loaded):
    model, e = loaded["mae"]
    pixels = e["pixel_values"]
    drawn = np_(model(pixels).mask)  # noise from the model's seeded generator
    assert (drawn.sum(1) == 12).all() and not np.array_equal(drawn, e["mask"])
    flipped = np_(model(pixels, noise=1.0 - e["noise"]).mask)
    kept = np.argsort(1.0 - e["noise"], 1)[:, :4]  # the lowest noise is kept
    assert all(flipped[b, kept[b]].sum() == 0 and flipped[b].sum() == 12 for b in range(2))
    assert not np.array_equal(flipped, e["mask"])
    images = model.unpatchify(e["logits"])
    assert images.shape == pixels.shape


def test_clip_matches_transformers(loaded):
    model, e = loaded["clip"]
    out = model(e["input_ids"], e["pixel_values"], e["attention_mask"])
    for key in ("logits_per_image", "logits_per_text", "text_embeds", "image_embeds"):
        assert np.abs(np_(out[key]) - e[key]).max() < ATOL, key
    pair = model(e["input_ids"][:2], e["pixel_values"], e["attention_mask"][:2], return_loss=True)
    assert abs(float(np_(pair.loss)) - float(e["loss"][0])) < ATOL
    features = np_(model.get_text_features(e["input_ids"], e["attention_mask"]))
    unit = features / np.linalg.norm(features, axis=-1, keepdims=True)
    assert np.abs(unit - e["text_embeds"]).max() < ATOL


@pytest.mark.slow  # compiling CLIP takes ~10 s; the pipelines' tests run a compiled ViT
def test_compiled_forward_equals_the_eager_one(loaded):
    model, e = loaded["clip"]
    eager = model(e["input_ids"], e["pixel_values"], e["attention_mask"])
    compiled = model.forward_function()(e["input_ids"], e["pixel_values"], e["attention_mask"])
    assert list(compiled) == list(eager)
    assert np.abs(np_(compiled.logits_per_image) - np_(eager.logits_per_image)).max() < 1e-5


# ---- presets, configs, weights in and out -----------------------------------------------------
# transformers' own models of these sizes, counted on the meta device (see the fixture script).
PUBLISHED = {"vit_base_p16": 86_567_656, "swin_base_p4w7": 87_768_224,
             "mae_vit_base_p16": 111_907_840, "clip_vit_b_32": 151_277_313,
             "clip_vit_b_16": 149_620_737, "clip_vit_l_14": 427_616_513,
             "clip_vit_l_14@336": 427_944_193}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_presets_have_the_published_sizes(name):
    assert preset_config(name).parameter_count == PUBLISHED[name]


def test_model_dims_for_parallel_planning():
    dims = model_dims("vit_base_p16")
    assert (dims.num_layers, dims.hidden_size, dims.seq_length) == (12, 768, 197)
    with pytest.raises(ModelConfigError) as err:
        model_dims("swin_base_p4w7")
    assert one_line(err).startswith("swin changes width and heads from stage to stage")


@pytest.mark.parametrize("name", ["vit_debug", "swin_debug", "mae_debug", "clip_debug"])
def test_debug_presets_build_save_and_load(name, tmp_path):
    model = AutoModel.from_config(name, seed=1)
    assert model.num_parameters() == model.config.parameter_count
    for fmt in ("safetensors", "ckpt"):
        model.save_pretrained(tmp_path / fmt, fmt=fmt)
        again = AutoModel.from_pretrained(tmp_path / fmt)
        assert type(again) is type(model) and again.config == model.config
        ours, theirs = model.state_dict(), again.state_dict()
        assert all(np.array_equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("family", FAMILIES)
def test_export_to_hugging_face_gives_back_the_checkpoint(loaded, family, tmp_path):
    model, _ = loaded[family]
    hf.export_directory(model.config, model.state_dict(), tmp_path)
    original = load_file(str(FIXTURES / family / "hf" / "model.safetensors"))
    original = {k.replace("decoder.decoder_encoder.layer.", "decoder.decoder_layers."): v
                for k, v in original.items()}  # transformers 5.24's spelling (hf_mae.py)
    exported = load_file(str(tmp_path / "model.safetensors"))
    assert exported.keys() == original.keys()
    assert all(np.array_equal(exported[k], original[k]) for k in original)
    assert type(model.config).from_hf_dict(model.config.to_hf_dict()) == model.config.replace(
        name="")


def test_hf_config_labels_become_class_names(loaded):
    model, _ = loaded["vit"]
    assert model.config.labels == ["cat", "dog", "bird", "car", "tree"]
    assert model.config.label_id("bird") == 2
    with pytest.raises(ModelConfigError) as err:
        model.config.label_id("horse")
    assert one_line(err).startswith("label 'horse' is not one of the model's 5 classes")


def test_auto_model_for_image_classification():
    model = AutoModelForImageClassification.from_pretrained(FIXTURES / "vit" / "hf")
    assert isinstance(model, ViTForImageClassification)
    with pytest.raises(ModelConfigError, match="AutoModelForImageClassification has no clip "):
        AutoModelForImageClassification.from_config("clip_debug")
    assert isinstance(AutoModel.from_config("clip_debug"), CLIPModel)


# ---- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 4, 32, 32), (2, 3, 16, 32), (3, 32, 32), (2, 1, 32, 32)])
def test_wrong_image_shapes_or_channels_are_one_line_errors(loaded, shape):
    model, _ = loaded["vit"]
    with pytest.raises(ModelConfigError) as err:
        model(np.zeros(shape, np.float32))
    assert one_line(err).startswith(f"pixel_values shape {shape} does not fit the model: "
                                          "expected (batch, 3, 32, 32)")
    assert err.value.exit_code == 2


def test_a_label_outside_the_heads_classes_is_a_one_line_error(loaded):
    model, e = loaded["vit"]
    with pytest.raises(ModelConfigError) as err:
        model(e["pixel_values"], labels=[1, 5])
    assert one_line(err) == "label 5 is outside the model's 5 classes [0, 5)"
    loss = model(e["pixel_values"], labels=[1, -100]).loss  # -100 is ignored, as in HF
    assert np.isfinite(float(np_(loss)))
    with pytest.raises(ModelConfigError, match="3 labels for 2 images"):
        model(e["pixel_values"], labels=[1, 2, 3])


def test_clip_text_and_pair_errors(loaded):
    model, e = loaded["clip"]
    with pytest.raises(ModelConfigError, match="return_loss pairs text i with image i: got 3"):
        model(e["input_ids"], e["pixel_values"], e["attention_mask"], return_loss=True)
    no_end = np.full((1, 4), 40, np.int32)
    with pytest.raises(ModelConfigError, match="every text needs its end token"):
        model(no_end, e["pixel_values"])
    with pytest.raises(ModelConfigError, match="longer than the model's max_position"):
        model(np.ones((1, 17), np.int32), e["pixel_values"])
    with pytest.raises(ModelConfigError, match="noise shape"):
        loaded["mae"][0](loaded["mae"][1]["pixel_values"], noise=np.zeros((2, 5)))


def test_swin_config_rejects_a_window_wider_than_a_stage():
    with pytest.raises(ModelConfigError) as err:
        preset_config("swin_debug", window_size=8, depths=(2, 2, 2), num_heads=(2, 4, 8))
    assert one_line(err).startswith("stage 1 sees 4x4 tokens, fewer than window_size(8)")


# ---- training -----------------------------------------------------------------------------------
def test_losses_train_under_jit_with_gradients(loaded):
    """The shape mf-train's step takes: ms.jit(value_and_grad) over the model's loss."""
    import mindspore as ms
    from mindspore import Tensor

    model, e = loaded["vit"]
    weights = model.trainable_params()

    def loss_fn(pixels, labels):
        return model(pixels, labels)[0]

    step = ms.jit(ms.value_and_grad(loss_fn, None, weights))
    loss, grads = step(Tensor(e["pixel_values"]), Tensor(e["labels"]))
    assert abs(float(loss.asnumpy()) - float(e["loss"][0])) < ATOL
    assert len(grads) == len(weights) and all(np.isfinite(g.asnumpy()).all() for g in grads)
