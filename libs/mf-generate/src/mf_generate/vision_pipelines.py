"""The image tasks of `pipeline(task=...)`, with MindFormers' task names and Hugging Face's
output shapes:

    pipeline("image_classification", model="vit_dir")(image, top_k=3)
    # [{'label': 'tabby cat', 'score': 0.91}, ...]  (a list of such lists for a list of images)
    pipeline("zero_shot_image_classification", model=clip_dir)(
        image, candidate_labels=["cat", "dog"], hypothesis_template="This is a photo of {}.")
    pipeline("masked_image_modeling", model=mae_dir)(image, seed=0)
    # {'loss': 0.43, 'mask': (h, w) 1 = hidden patch, 'image': PIL reconstruction, ...}
    pipeline("contrastive_language_image_pretrain", model=clip_dir)(image, texts=["a", "b"])
    # [{'label': 'a', 'score': 0.8, 'similarity': 0.31}, ...] in the order of the texts

An image is a file path, a PIL image (both made RGB, as transformers' pipelines do) or a numpy
array. Each pipeline takes its settings at construction or per call (`settings` lists them);
the processor comes from `processor=`, the model's directory (preprocessor_config.json, CLIP's
tokenizer), its preset, or the family's default at the model's image size. The model runs
compiled (`forward_function`; `compile=False`: eagerly, which pays off for a handful of images)
in batches of `batch_size`, the last padded to a power of two, so a run compiles at most
log2(batch_size) + 1 shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mf_generate.errors import GenerateConfigError
from mf_generate.pipelines import TaskSettings

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


def jitted(model, method: str):
    """`ms.jit` of one of a model's methods (CLIP's `encode_text`), made once per model."""
    import mindspore as ms

    memo = model.__dict__.setdefault("_jitted_methods", {})
    if method not in memo:
        memo[method] = ms.jit(getattr(model, method))
    return memo[method]


class ImagePipeline(TaskSettings):
    """What the image tasks share: loading, inputs to pixel batches, the model over padded
    batches."""

    families: tuple[str, ...] = ()
    auto_class = "AutoModel"  # the mf_models Auto class that loads the task's model
    settings: dict[str, Any] = {"batch_size": 8, "compile": True}

    @classmethod
    def check_value(cls, key: str, value: Any) -> None:
        if key in ("batch_size", "top_k") and (isinstance(value, bool) or not isinstance(
                value, int) or value < 1):
            raise GenerateConfigError(f"{key}={value!r} must be an integer >= 1")
        if key == "hypothesis_template" and (not isinstance(value, str) or "{}" not in value):
            raise GenerateConfigError(f"hypothesis_template {value!r} needs a {{}} where the "
                                      "label goes")
        if key in ("candidate_labels", "texts", "labels") and value is not None:
            _texts(value, key)

    @classmethod
    def load_model(cls, source):
        """The model of a preset or directory; a family the task does not take fails before
        any weights load."""
        import mf_models

        family = mf_models.load_config(source).family
        if family not in cls.families:
            raise GenerateConfigError(f"task '{cls.task}' needs a {' or '.join(cls.families)} "
                                      f"model; {source} is {family}")
        return getattr(mf_models, cls.auto_class).from_pretrained(source)

    @classmethod
    def load_processor(cls, model, source):
        return image_processor_for_model(model, source)

    def __init__(self, model, processor, **settings: Any):
        self.check_settings(settings)
        if model.config.family not in self.families:
            raise GenerateConfigError(
                f"task '{self.task}' needs a {' or '.join(self.families)} model, got "
                f"{model.config.family}")
        self.model = model
        self.image_processor = processor
        self.defaults = {**self.settings, **settings}

    def pixel_values(self, images: list[Any]) -> np.ndarray:
        """(N, C, H, W) float32: files and PIL images made RGB first (transformers'
        `load_image`), arrays as they are."""
        from mf_tokenize.image_processing import load_image

        loaded = [image if isinstance(image, np.ndarray) else load_image(image)
                  for image in images]
        return self.image_processor(loaded, return_tensors="np")["pixel_values"]

    @staticmethod
    def run_batches(fn, pixels: np.ndarray, batch_size: int) -> list[np.ndarray]:
        """`fn(batch) -> tuple of arrays (batch, ...)` over the pixels in padded batches; the
        arrays of each output, concatenated, without the padding."""
        outputs: list[list[np.ndarray]] = []
        start = 0
        for size in batch_sizes(len(pixels), batch_size):
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
    """Hugging Face's image-classification: the top_k classes by score. `labels` keeps only
    those classes (each must be one of the head's)."""

    task = "image_classification"
    families = ("vit", "swin")
    auto_class = "AutoModelForImageClassification"
    settings = {**ImagePipeline.settings, "top_k": 5, "function_to_apply": None, "labels": None}

    @classmethod
    def check_value(cls, key: str, value: Any) -> None:
        if key == "function_to_apply" and value not in (None, "softmax", "sigmoid", "none"):
            raise GenerateConfigError(f"function_to_apply={value!r} is not one of softmax, "
                                      "sigmoid, none")
        super().check_value(key, value)

    def __call__(self, images: Any, **options: Any):
        opts = self.options(options)
        batch, single = _as_list(images)
        cfg = self.model.config
        keep = None if opts["labels"] is None else [
            cfg.label_id(label) for label in _texts(opts["labels"], "labels")]
        apply = opts["function_to_apply"] or ("sigmoid" if cfg.num_labels == 1 else "softmax")
        forward = self.model.forward_function() if opts["compile"] else self.model
        (logits,) = self.run_batches(lambda b: (forward(b).logits.asnumpy(),),
                                     self.pixel_values(batch), opts["batch_size"])
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
            results.append(ranked[:opts["top_k"]])
        return results[0] if single else results


class _CLIPPipeline(ImagePipeline):
    """Text features once, image features per batch, cosine similarities (CLIP's forward)."""

    families = ("clip",)

    @classmethod
    def load_processor(cls, model, source):
        """The image processor and the CLIP tokenizer saved with the model."""
        from mf_tokenize import CLIPProcessor

        from mf_generate.pipelines import tokenizer_for

        name = str(source) if source is not None else model.config.name
        if not name:
            raise GenerateConfigError("pass processor=: the model was built from a config, so "
                                      "there is no directory or preset to read a tokenizer from")
        return CLIPProcessor(image_processor_for_model(model, source), tokenizer_for(name))

    def __init__(self, model, processor, **settings: Any):
        super().__init__(model, processor.image_processor, **settings)
        self.tokenizer = processor.tokenizer

    def similarities(self, images: list[Any], texts: list[str],
                     opts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(cosines, logits = exp(logit_scale) * cosines), each (images, texts)."""
        from mindspore import Tensor

        model = self.model

        def method(name):
            return jitted(model, name) if opts["compile"] else getattr(model, name)

        encoded = self.tokenizer(texts, padding=True, return_tensors="np")
        ids, mask = model.check_text(encoded["input_ids"], encoded["attention_mask"])
        text = method("encode_text")(ids, mask).asnumpy().astype(np.float32)
        text = text / np.sqrt((text * text).sum(-1, keepdims=True))
        encode_image = method("encode_image")
        (image,) = self.run_batches(lambda b: (encode_image(Tensor(b)).asnumpy(),),
                                    self.pixel_values(images), opts["batch_size"])
        image = image.astype(np.float32)
        image = image / np.sqrt((image * image).sum(-1, keepdims=True))
        cosines = image @ text.T
        scale = np.exp(model.logit_scale.asnumpy().astype(np.float32))
        return cosines, cosines * scale


class ZeroShotImageClassificationPipeline(_CLIPPipeline):
    """Hugging Face's zero-shot-image-classification: the candidate labels by score."""

    task = "zero_shot_image_classification"
    settings = {**ImagePipeline.settings, "candidate_labels": None,
                "hypothesis_template": HYPOTHESIS_TEMPLATE}

    def __call__(self, images: Any, **options: Any):
        opts = self.options(options)
        labels = _texts(opts["candidate_labels"], "candidate_labels")
        batch, single = _as_list(images)
        template = opts["hypothesis_template"]
        _, logits = self.similarities(batch, [template.format(x) for x in labels], opts)
        results = [sorted(({"score": float(s), "label": lab} for s, lab in zip(row, labels,
                                                                                strict=True)),
                          key=lambda r: -r["score"]) for row in softmax(logits)]
        return results[0] if single else results


class ContrastivePipeline(_CLIPPipeline):
    """MindFormers' contrastive_language_image_pretrain task: how well each text describes
    each image: `similarity` (cosine of the embeddings), `score` (softmax over the texts of
    exp(logit_scale) * cosine, CLIP's logits_per_image), in the order of the texts."""

    task = "contrastive_language_image_pretrain"
    settings = {**ImagePipeline.settings, "texts": None, "candidate_labels": None}

    def __call__(self, images: Any, **options: Any):
        opts = self.options(options)
        given = opts["texts"] if opts["texts"] is not None else opts["candidate_labels"]
        texts = _texts(given, "texts")
        batch, single = _as_list(images)
        cosines, logits = self.similarities(batch, texts, opts)
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

    task = "masked_image_modeling"
    families = ("mae",)
    settings = {"compile": True, "seed": None}

    @classmethod
    def check_value(cls, key: str, value: Any) -> None:
        if key == "seed" and value is not None and (isinstance(value, bool)
                                                    or not isinstance(value, int)):
            raise GenerateConfigError(f"seed={value!r} must be an integer")
        super().check_value(key, value)

    def __call__(self, images: Any, **options: Any):
        opts = self.options(options)
        batch, single = _as_list(images)
        model, cfg = self.model, self.model.config
        pixels = self.pixel_values(batch)
        rng = np.random.default_rng(opts["seed"]) if opts["seed"] is not None else model.rng
        noise = rng.random((len(pixels), cfg.num_patches), dtype=np.float32)
        forward = model.forward_function() if opts["compile"] else model
        out = []
        for i in range(len(pixels)):  # one image per call: the loss is per image
            result = forward(pixels[i:i + 1], noise[i:i + 1])
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


def image_processor_for_model(model, source):
    """The image processor saved beside the model, else its preset's, else the family's
    default at the model's image size."""
    from mf_models.auto import weights_directory
    from mf_models.errors import ModelConfigError
    from mf_tokenize import AutoImageProcessor
    from mf_tokenize.errors import TokenizerConfigError
    from mf_tokenize.image_processing import image_processor_for, read_image_settings

    cfg = model.config
    name = str(source) if source is not None else cfg.name
    places = []
    if name:
        try:
            directory = weights_directory(name)
            if directory.is_dir():
                places.append(str(directory))
        except ModelConfigError:
            pass
        places.append(name)
    for place in places:
        try:
            read_image_settings(place)
        except TokenizerConfigError:
            continue
        return AutoImageProcessor.from_pretrained(place)
    size = cfg.vision_config.image_size if cfg.family == "clip" else cfg.image_size
    return image_processor_for(cfg.family, size)
