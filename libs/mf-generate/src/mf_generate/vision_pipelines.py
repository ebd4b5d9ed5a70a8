"""The image tasks of `pipeline(task=...)`, with MindFormers' task names and Hugging Face's
output shapes:

    pipeline("image_classification", model="vit_base_p16")(image, top_k=3)
    # [{'label': 'tabby cat', 'score': 0.91}, ...]  (a list of such lists for a list of images)
    pipeline("zero_shot_image_classification", model=clip_dir)(
        image, candidate_labels=["cat", "dog"], hypothesis_template="This is a photo of {}.")
    pipeline("masked_image_modeling", model=mae_dir)(image, seed=0)
    # {'loss': 0.43, 'mask': (h, w) 1 = hidden patch, 'image': PIL reconstruction}
    pipeline("contrastive_language_image_pretrain", model=clip_dir)(image, texts=["a", "b"])
    # [{'label': 'a', 'score': 0.8, 'similarity': 0.31}, ...] in the order of the texts

An image is a file path, a PIL image (both made RGB, as transformers' pipelines do) or a numpy
array. The model runs compiled (`ms.jit`; `compile=False`: eagerly, which pays off only for a
handful of images), in batches of `batch_size` (the last padded to a power of two, so a run
compiles at most log2(batch_size) + 1 shapes).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from mf_generate.errors import GenerateConfigError

IMAGE_CLASSIFICATION = "image_classification"
ZERO_SHOT = "zero_shot_image_classification"
MASKED_IMAGE_MODELING = "masked_image_modeling"
CONTRASTIVE = "contrastive_language_image_pretrain"
HYPOTHESIS_TEMPLATE = "This is a photo of {}."


def softmax(logits: np.ndarray) -> np.ndarray:
    """transformers' pipelines' softmax (max-shifted, in the logits' dtype)."""
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def batch_sizes(count: int, batch_size: int) -> list[int]:
    """Chunks of `batch_size`, the last rounded up to a power of two (padding): few shapes."""
    sizes = [batch_size] * (count // batch_size)
    rest = count % batch_size
    if rest:
        sizes.append(min(batch_size, 1 << (rest - 1).bit_length()))
    return sizes


class ImagePipeline:
    """What the image tasks share: inputs to pixel batches, the compiled model over them."""

    task = ""
    families: tuple[str, ...] = ()

    def __init__(self, model, image_processor, batch_size: int = 8, compile: bool = True):
        if model.config.family not in self.families:
            raise GenerateConfigError(
                f"task '{self.task}' needs a {' or '.join(self.families)} model, got "
                f"{model.config.family}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise GenerateConfigError(f"batch_size={batch_size!r} must be a positive integer")
        self.model = model
        self.image_processor = image_processor
        self.batch_size = batch_size
        self.compile = compile

    def method(self, name: str):
        """One of the model's methods, compiled unless the pipeline runs eagerly."""
        return self.model.jitted(name) if self.compile else getattr(self.model, name)

    def forward(self):
        """The model's call (checked inputs, named outputs), compiled or eager."""
        return self.model.compiled() if self.compile else self.model

    def pixel_values(self, images: list[Any]) -> np.ndarray:
        """(N, C, H, W) float32: files and PIL images made RGB first (transformers'
        `load_image`), arrays as they are."""
        from mf_tokenize.image_processing import load_image

        loaded = [image if isinstance(image, np.ndarray) else load_image(image)
                  for image in images]
        return self.image_processor(loaded, return_tensors="np")["pixel_values"]

    def run_batches(self, fn, pixels: np.ndarray) -> list[np.ndarray]:
        """`fn(batch) -> tuple of arrays (batch, ...)` over the pixels in padded batches; the
        arrays of each output, concatenated, without the padding."""
        outputs: list[list[np.ndarray]] = []
        start = 0
        for size in batch_sizes(len(pixels), self.batch_size):
            batch = pixels[start:start + size]
            real = len(batch)
            if real < size:  # pad with copies of the last image: a shape already compiled
                batch = np.concatenate([batch, np.repeat(batch[-1:], size - real, 0)])
            outputs.append([np.asarray(o)[:real] for o in fn(batch)])
            start += real
        return [np.concatenate(parts) for parts in zip(*outputs, strict=True)]


def _as_list(inputs: Any) -> tuple[list[Any], bool]:
    """(images, whether one image was given): the result is a list per image for a list."""
    if isinstance(inputs, (list, tuple)):
        if not inputs:
            raise GenerateConfigError("no images given")
        return list(inputs), False
    return [inputs], True


def _texts(values: Any, what: str) -> list[str]:
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",")]
    values = list(values or [])
    if not values or not all(isinstance(v, str) and v for v in values):
        raise GenerateConfigError(f"{what} must be a non-empty list of non-empty strings")
    return values


class ImageClassificationPipeline(ImagePipeline):
    """Hugging Face's image-classification pipeline: the top_k classes by score."""

    task = IMAGE_CLASSIFICATION
    families = ("vit", "swin")

    def __call__(self, images: Any, top_k: int = 5, labels: Any = None,
                 function_to_apply: str | None = None):
        """`labels` keeps only those classes (each must be one of the head's) in the result."""
        batch, single = _as_list(images)
        cfg = self.model.config
        keep = None if labels is None else [cfg.label_id(lab) for lab in _texts(labels,
                                                                                  "labels")]
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise GenerateConfigError(f"top_k={top_k!r} must be a positive integer")
        apply = function_to_apply or ("sigmoid" if cfg.num_labels == 1 else "softmax")
        if apply not in ("softmax", "sigmoid", "none"):
            raise GenerateConfigError(f"function_to_apply={apply!r} is not one of softmax, "
                                      "sigmoid, none")
        forward = self.forward()
        (logits,) = self.run_batches(lambda b: (forward(b).logits.asnumpy(),),
                                     self.pixel_values(batch))
        if apply == "softmax":
            scores = softmax(logits)
        elif apply == "sigmoid":
            scores = 1.0 / (1.0 + np.exp(-logits))
        else:
            scores = logits
        names = cfg.labels
        results = []
        for row in scores:
            ids = keep if keep is not None else range(len(names))
            ranked = sorted(({"label": names[i], "score": float(row[i])} for i in ids),
                            key=lambda r: -r["score"])
            results.append(ranked[:top_k])
        return results[0] if single else results


class _CLIPPipeline(ImagePipeline):
    """Text features once, image features per batch, cosine similarities (CLIP's forward)."""

    families = ("clip",)

    def __init__(self, model, processor, batch_size: int = 8, compile: bool = True):
        super().__init__(model, processor.image_processor, batch_size, compile)
        self.tokenizer = processor.tokenizer

    def similarities(self, images: list[Any], texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(cosines, logits = exp(logit_scale) * cosines), each (images, texts)."""
        from mindspore import Tensor

        model = self.model
        encoded = self.tokenizer(texts, padding=True, return_tensors="np")
        ids, mask = model.check_text(encoded["input_ids"], encoded["attention_mask"])
        text = self.method("encode_text")(ids, mask).asnumpy().astype(np.float32)
        text = text / np.sqrt((text * text).sum(-1, keepdims=True))
        encode_image = self.method("encode_image")
        (image,) = self.run_batches(lambda b: (encode_image(Tensor(b)).asnumpy(),),
                                    self.pixel_values(images))
        image = image.astype(np.float32)
        image = image / np.sqrt((image * image).sum(-1, keepdims=True))
        cosines = image @ text.T
        scale = np.exp(model.logit_scale.asnumpy().astype(np.float32))
        return cosines, cosines * scale


class ZeroShotImageClassificationPipeline(_CLIPPipeline):
    """Hugging Face's zero-shot-image-classification: the candidate labels by score."""

    task = ZERO_SHOT

    def __call__(self, images: Any, candidate_labels: Any = None,
                 hypothesis_template: str = HYPOTHESIS_TEMPLATE):
        labels = _texts(candidate_labels, "candidate_labels")
        if "{}" not in hypothesis_template:
            raise GenerateConfigError(f"hypothesis_template {hypothesis_template!r} needs a {{}} "
                                      "where the label goes")
        batch, single = _as_list(images)
        _, logits = self.similarities(batch, [hypothesis_template.format(x) for x in labels])
        results = [sorted(({"score": float(s), "label": lab} for s, lab in zip(row, labels,
                                                                                strict=True)),
                          key=lambda r: -r["score"]) for row in softmax(logits)]
        return results[0] if single else results


class ContrastivePipeline(_CLIPPipeline):
    """MindFormers' contrastive_language_image_pretrain task: how well each text describes
    each image: `similarity` (cosine of the embeddings), `score` (softmax over the texts of
    exp(logit_scale) * cosine, CLIP's logits_per_image), in the order of the texts."""

    task = CONTRASTIVE

    def __call__(self, images: Any, texts: Any = None, candidate_labels: Any = None):
        texts = _texts(texts if texts is not None else candidate_labels, "texts")
        batch, single = _as_list(images)
        cosines, logits = self.similarities(batch, texts)
        results = [[{"label": t, "score": float(p), "similarity": float(c)}
                    for t, p, c in zip(texts, probs, cos, strict=True)]
                   for probs, cos in zip(softmax(logits), cosines, strict=True)]
        return results[0] if single else results


class MaskedImageModelingPipeline(ImagePipeline):
    """MAE reconstruction: hide a random 75% of the patches, let the model paint them back.

    Per image: `loss` (the model's, on the hidden patches), `mask` (grid, 1 = hidden),
    `image` (PIL: the visible patches of the input with the predicted ones pasted in, in
    pixels), `reconstruction` (PIL: every patch as predicted). `seed` fixes the masking.
    """

    task = MASKED_IMAGE_MODELING
    families = ("mae",)

    def __call__(self, images: Any, seed: int | None = None):
        batch, single = _as_list(images)
        model, cfg = self.model, self.model.config
        pixels = self.pixel_values(batch)
        rng = np.random.default_rng(seed) if seed is not None else model.rng
        noise = rng.random((len(pixels), cfg.num_patches), dtype=np.float32)
        forward = self.forward()
        out = []
        for i in range(len(pixels)):  # one image per call: the loss is per image
            result = forward(pixels[i:i + 1], noise=noise[i:i + 1])
            out.append(self._result(pixels[i], result))
        return out[0] if single else out

    def _result(self, pixels: np.ndarray, result) -> dict[str, Any]:
        from mf_models.models.mae import NORM_PIX_EPS, patchify_pixels

        cfg = self.model.config
        pred = result.logits.asnumpy()[0]  # (L, P*P*C)
        mask = result.mask.asnumpy()[0]  # (L,)
        if cfg.norm_pix_loss:  # predictions are per-patch normalised: undo with the input's
            target = patchify_pixels(pixels[None], cfg.patch_size)[0]
            mean = target.mean(-1, keepdims=True)
            var = target.var(-1, ddof=1, keepdims=True)
            pred = pred * np.sqrt(var + NORM_PIX_EPS) + mean
        predicted = self.model.unpatchify(pred[None])[0]  # (C, H, W), normalised pixels
        grid = cfg.image_size // cfg.patch_size
        hidden = np.kron(mask.reshape(grid, grid), np.ones((cfg.patch_size, cfg.patch_size)))
        pasted = pixels * (1 - hidden) + predicted * hidden
        return {"loss": float(result.loss.asnumpy()), "mask": mask.reshape(grid, grid),
                "image": self._to_pil(pasted), "reconstruction": self._to_pil(predicted)}

    def _to_pil(self, normalised: np.ndarray):
        """Undo the processor's normalisation and rescaling: (C, H, W) -> a PIL RGB image."""
        import PIL.Image

        proc = self.image_processor
        mean = np.asarray(proc.image_mean, np.float32).reshape(-1, 1, 1)
        std = np.asarray(proc.image_std, np.float32).reshape(-1, 1, 1)
        pixels = normalised * std + mean if proc.do_normalize else normalised
        if proc.do_rescale:
            pixels = pixels / proc.rescale_factor
        return PIL.Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8)
                                   .transpose(1, 2, 0))


PIPELINES = {cls.task: cls for cls in (ImageClassificationPipeline,
                                       ZeroShotImageClassificationPipeline,
                                       ContrastivePipeline, MaskedImageModelingPipeline)}


def vision_pipeline(task: str, model: Any = None, processor: Any = None, batch_size: int = 8,
                    compile: bool = True):
    """Build the pipeline of an image task; `model` is a preset name, a model directory (ours
    or Hugging Face's) or a built model; `processor` defaults to the one saved with the model
    (its preprocessor_config.json and, for CLIP, tokenizer), the preset's recipe, or the
    family's default at the model's image size."""
    cls = PIPELINES[task]
    if model is None:
        raise GenerateConfigError(f"pipeline('{task}') needs model= (a preset name, a model "
                                  "directory or a model)")
    source = None
    if isinstance(model, (str, os.PathLike)):
        from mf_models import AutoModel, load_config

        family = load_config(model).family  # a wrong family fails before weights load
        if family not in cls.families:
            raise GenerateConfigError(f"task '{task}' needs a {' or '.join(cls.families)} "
                                      f"model; {model} is {family}")
        source, model = model, AutoModel.from_pretrained(model)
    if processor is None:
        processor = processor_for(model, source, with_tokenizer=cls.families == ("clip",))
    return cls(model, processor, batch_size=batch_size, compile=compile)


def processor_for(model, source, with_tokenizer: bool = False):
    """The processor saved beside the model, else its preset's, else the family default (an
    image processor; with a tokenizer, a CLIPProcessor)."""
    from mf_models.auto import weights_directory
    from mf_models.errors import ModelConfigError
    from mf_tokenize import AutoImageProcessor, CLIPProcessor
    from mf_tokenize.errors import TokenizerConfigError
    from mf_tokenize.image_processing import image_processor_for, read_image_settings

    cfg = model.config
    name = str(source) if source is not None else cfg.name
    image_processor = None
    for candidate in _places(name, weights_directory, ModelConfigError):
        try:
            read_image_settings(candidate)
        except TokenizerConfigError:
            continue
        image_processor = AutoImageProcessor.from_pretrained(candidate)
        break
    if image_processor is None:
        size = cfg.vision_config.image_size if cfg.family == "clip" else cfg.image_size
        image_processor = image_processor_for(cfg.family, size)
    if not with_tokenizer:
        return image_processor
    from mf_generate.pipelines import tokenizer_for

    if not name:
        raise GenerateConfigError("pass processor=: the model was built from a config, so "
                                  "there is no directory or preset to read a tokenizer from")
    return CLIPProcessor(image_processor, tokenizer_for(name))


def _places(name: str, weights_directory, model_error) -> list[str]:
    """Where a model's processor may be saved: its directory, else its preset name."""
    if not name:
        return []
    places = []
    try:
        directory = weights_directory(name)
        if directory.is_dir():
            places.append(str(directory))
    except model_error:
        pass
    return places + [name]
