"""Image processors: the image side of a model's input, as the tokenizer is the text side.

`ViTImageProcessor` and `CLIPImageProcessor` turn PIL images, numpy arrays (H, W, C), (C, H, W)
or (H, W), or image files into `pixel_values` (batch, channels, height, width) float32, with
the steps and numerics of Hugging Face's PIL-backend processors (`ViTImageProcessorPil`,
`CLIPImageProcessorPil`; transformers 4's `ViTImageProcessor` / `CLIPImageProcessor`):

1. files are opened with Pillow, EXIF-rotated and converted to RGB (as `load_image`);
   `do_convert_rgb` also converts arrays and images (alpha composited onto white);
2. resize with Pillow (`size`: {"height", "width"} or {"shortest_edge"}; `resample` is a
   Pillow filter number: 2 bilinear, 3 bicubic);
3. center crop to `crop_size` (zero padding where the image is smaller);
4. rescale (x * 1/255 in float64, then float32), normalize ((x - mean) / std in float32).

Settings are saved and read as `preprocessor_config.json` (`image_processor_type` names the
class; Hugging Face's "...Fast"/"...Pil" and MindFormers' names are accepted). Model presets
(`vit_base_p16`, `clip_vit_b_32` ...) carry MindFormers' recipes and need no files.

Pillow is imported only when an image is opened, resized or converted, not with the module.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mf_tokenize._files import AtomicDirectoryWriter, read_json
from mf_tokenize.errors import ImageInputError, TokenizerConfigError, VocabFileNotFoundError

PREPROCESSOR_CONFIG = "preprocessor_config.json"
PROCESSOR_CONFIG = "processor_config.json"  # transformers 5 nests the image settings here

# Means and standard deviations of the reference processors (transformers image_utils).
IMAGENET_STANDARD_MEAN = (0.5, 0.5, 0.5)
IMAGENET_STANDARD_STD = (0.5, 0.5, 0.5)
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# Pillow's filter numbers (PIL.Image.Resampling), which preprocessor_config.json stores.
NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING = 0, 1, 2, 3, 4, 5
_RESAMPLE_NAMES = {"nearest": NEAREST, "lanczos": LANCZOS, "bilinear": BILINEAR,
                   "bicubic": BICUBIC, "cubic": BICUBIC, "box": BOX, "hamming": HAMMING}

_SETTINGS = ("do_resize", "size", "resample", "do_center_crop", "crop_size", "do_rescale",
             "rescale_factor", "do_normalize", "image_mean", "image_std", "do_convert_rgb")


class ImageProcessor:
    """Resize, center crop, rescale, normalize; subclasses set the defaults."""

    processor_type: ClassVar[str] = "ImageProcessor"
    # How an int `size` is read: a square (ViT) or the shortest edge (CLIP).
    default_to_square: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = dict(
        do_resize=True, size={"height": 224, "width": 224}, resample=BILINEAR,
        do_center_crop=None, crop_size=None, do_rescale=True, rescale_factor=1 / 255,
        do_normalize=True, image_mean=IMAGENET_STANDARD_MEAN, image_std=IMAGENET_STANDARD_STD,
        do_convert_rgb=None)

    def __init__(self, **settings: Any):
        values = {**copy.deepcopy(self.defaults),
                  **{k: v for k, v in settings.items() if k in _SETTINGS and v is not None}}
        self.do_resize = bool(values["do_resize"])
        self.size = _size_dict(values["size"], "size", self.default_to_square)
        self.resample = _resample(values["resample"])
        self.do_center_crop = values["do_center_crop"]  # None: not set (saved as absent)
        crop = values["crop_size"]
        self.crop_size = None if crop is None else _size_dict(crop, "crop_size", True)
        self.do_rescale = bool(values["do_rescale"])
        self.rescale_factor = float(values["rescale_factor"])
        self.do_normalize = bool(values["do_normalize"])
        self.image_mean = _per_channel(values["image_mean"], "image_mean")
        self.image_std = _per_channel(values["image_std"], "image_std")
        self.do_convert_rgb = values["do_convert_rgb"]
        if self.do_center_crop and self.crop_size is None:
            raise TokenizerConfigError("do_center_crop needs crop_size")
        if self.do_normalize and len(self.image_mean) != len(self.image_std):
            raise TokenizerConfigError(f"image_mean {list(self.image_mean)} and image_std "
                                       f"{list(self.image_std)} differ in length")
        if self.do_normalize and any(s == 0 for s in self.image_std):
            raise TokenizerConfigError(f"image_std {list(self.image_std)} has a zero")
        if self.do_resize and not ({"height", "width"} <= set(self.size) or
                                   "shortest_edge" in self.size):
            raise TokenizerConfigError(f"size {self.size} needs height and width, or "
                                       "shortest_edge")

    # ---- the pipeline -------------------------------------------------------------------------
    def __call__(self, images: Any, return_tensors: str | None = "np") -> dict[str, Any]:
        """{"pixel_values": (batch, C, H, W) float32} for one image or a list of them."""
        arrays = [self.preprocess_one(image) for image in _image_list(images)]
        if return_tensors == "np":
            shapes = {a.shape for a in arrays}
            if len(shapes) > 1:
                raise ImageInputError(f"the images came out in different shapes {sorted(shapes)}"
                                      ": set do_resize or do_center_crop to get one batch")
            return {"pixel_values": np.stack(arrays)}
        if return_tensors is not None:  # mf's models take numpy arrays as they are
            raise TokenizerConfigError(f"return_tensors={return_tensors!r} is not one of 'np', "
                                       "None")
        return {"pixel_values": arrays}

    preprocess = __call__

    def preprocess_one(self, image: Any) -> np.ndarray:
        """One image -> (C, H, W) float32."""
        array = to_channels_first(image, bool(self.do_convert_rgb))
        if self.do_resize:
            array = resize(array, self.output_size(array.shape[1:]), self.resample)
        if self.do_center_crop:
            array = center_crop(array, (self.crop_size["height"], self.crop_size["width"]))
        if self.do_rescale:
            array = (array.astype(np.float64) * self.rescale_factor).astype(np.float32)
        if self.do_normalize:
            array = normalize(array, self.image_mean, self.image_std)
        return array.astype(np.float32, copy=False)

    def output_size(self, hw: tuple[int, int]) -> tuple[int, int]:
        """(height, width) after resizing an image of size `hw` (torchvision's rule for a
        shortest edge: the long side is int(short_target * long / short))."""
        if "shortest_edge" in self.size:
            height, width = hw
            short, long = (width, height) if width <= height else (height, width)
            target = self.size["shortest_edge"]
            new_long = int(target * long / short)
            return (new_long, target) if width <= height else (target, new_long)
        return self.size["height"], self.size["width"]

    # ---- settings in and out ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {name: copy.deepcopy(getattr(self, name)) for name in _SETTINGS}
        out["image_mean"], out["image_std"] = list(self.image_mean), list(self.image_std)
        out["image_processor_type"] = self.processor_type
        return {k: v for k, v in out.items() if v is not None}

    def save_pretrained(self, directory: str | os.PathLike, **extra: Any) -> Path:
        """Write preprocessor_config.json (atomically); `extra` keys go into it too."""
        with AtomicDirectoryWriter(directory) as writer:
            return writer.write_json(PREPROCESSOR_CONFIG, {**self.to_dict(), **extra})

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> ImageProcessor:
        return cls(**settings)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **overrides: Any) -> ImageProcessor:
        settings = read_image_settings(name_or_path)
        if cls is ImageProcessor:  # the base class picks the saved type
            return image_processor_class(settings.get("image_processor_type", "")).from_dict(
                {**settings, **overrides})
        return cls.from_dict({**settings, **overrides})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({json.dumps(self.to_dict(), sort_keys=True)})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()


class ViTImageProcessor(ImageProcessor):
    """Resize to 224x224 (bilinear), rescale, normalize with mean = std = 0.5; no RGB
    conversion. Also serves Swin and MAE, as in transformers."""

    processor_type = "ViTImageProcessor"


class CLIPImageProcessor(ImageProcessor):
    """Shortest edge to 224 (bicubic), center crop 224x224, convert to RGB, rescale, normalize
    with OpenAI's CLIP mean and std."""

    processor_type = "CLIPImageProcessor"
    default_to_square = False
    defaults = dict(ImageProcessor.defaults, size={"shortest_edge": 224}, resample=BICUBIC,
                    do_center_crop=True, crop_size={"height": 224, "width": 224},
                    image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD, do_convert_rgb=True)


# `image_processor_type` / MindFormers' processor names -> class.
IMAGE_PROCESSOR_CLASSES: dict[str, type[ImageProcessor]] = {}
for _cls, _names in ((ViTImageProcessor, ("ViTImageProcessor", "ViTFeatureExtractor",
                                          "SwinImageProcessor", "ViTMAEImageProcessor")),
                     (CLIPImageProcessor, ("CLIPImageProcessor", "CLIPFeatureExtractor"))):
    for _name in _names:
        for _suffix in ("", "Fast", "Pil"):
            IMAGE_PROCESSOR_CLASSES[_name + _suffix] = _cls

# Hugging Face / mf `model_type` -> class (transformers' image_processing_auto mapping).
MODEL_TYPE_PROCESSORS: dict[str, type[ImageProcessor]] = {
    "vit": ViTImageProcessor, "swin": ViTImageProcessor, "vit_mae": ViTImageProcessor,
    "mae": ViTImageProcessor, "clip": CLIPImageProcessor,
}

# MindFormers' evaluation transforms (configs/vit, configs/swin: Resize 256 bicubic,
# CenterCrop 224, ImageNet mean/std; configs/mae: 224, ImageNet mean/std) and OpenAI's CLIP
# preprocessing (clip.py: shortest edge bicubic, center crop, CLIP mean/std).
_IMAGENET_EVAL = dict(size={"shortest_edge": 256}, resample=BICUBIC, do_center_crop=True,
                      crop_size={"height": 224, "width": 224}, image_mean=IMAGENET_DEFAULT_MEAN,
                      image_std=IMAGENET_DEFAULT_STD)
IMAGE_PRESETS: dict[str, tuple[type[ImageProcessor], dict[str, Any]]] = {
    "vit_base_p16": (ViTImageProcessor, _IMAGENET_EVAL),
    "swin_base_p4w7": (ViTImageProcessor, _IMAGENET_EVAL),
    "mae_vit_base_p16": (ViTImageProcessor, dict(resample=BICUBIC,
                                                 image_mean=IMAGENET_DEFAULT_MEAN,
                                                 image_std=IMAGENET_DEFAULT_STD)),
    "clip_vit_b_32": (CLIPImageProcessor, {}),
    "clip_vit_b_16": (CLIPImageProcessor, {}),
    "clip_vit_l_14": (CLIPImageProcessor, {}),
    "clip_vit_l_14@336": (CLIPImageProcessor, dict(size={"shortest_edge": 336},
                                                   crop_size={"height": 336, "width": 336})),
}


def image_processor_class(name: str) -> type[ImageProcessor]:
    if name not in IMAGE_PROCESSOR_CLASSES:
        raise TokenizerConfigError(
            f"image_processor_type {name!r} is not supported; supported: "
            + ", ".join(sorted({c.processor_type for c in IMAGE_PROCESSOR_CLASSES.values()})))
    return IMAGE_PROCESSOR_CLASSES[name]


def image_processor_for(model_type: str, image_size: int) -> ImageProcessor:
    """The default processor of a model family for images of `image_size` (a model built from
    a config, with no saved processor): resize (and crop) to that size."""
    cls = MODEL_TYPE_PROCESSORS.get(model_type)
    if cls is None:
        raise TokenizerConfigError(f"no image processor for model_type {model_type!r}; "
                                   f"supported: {', '.join(sorted(MODEL_TYPE_PROCESSORS))}")
    if cls.default_to_square:
        return cls(size={"height": image_size, "width": image_size})
    return cls(size={"shortest_edge": image_size},
               crop_size={"height": image_size, "width": image_size})


def read_image_settings(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """The image settings saved in a directory (preprocessor_config.json, or transformers 5's
    processor_config.json), a JSON file, or a model preset's recipe."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return _read_json(path)
    if path.is_dir():
        for name in (PREPROCESSOR_CONFIG, PROCESSOR_CONFIG):
            if (path / name).is_file():
                data = _read_json(path / name)
                nested = data.get("image_processor")
                return dict(nested) if isinstance(nested, Mapping) else data
        raise VocabFileNotFoundError(f"{path} holds no {PREPROCESSOR_CONFIG} or "
                                     f"{PROCESSOR_CONFIG}")
    name = str(name_or_path)
    if name in IMAGE_PRESETS:
        from mf_tokenize.presets import mf_home

        saved = mf_home() / name
        if (saved / PREPROCESSOR_CONFIG).is_file():
            return read_image_settings(saved)
        cls, settings = IMAGE_PRESETS[name]
        return {**cls(**settings).to_dict()}
    if os.sep in name or name.endswith(".json"):
        raise VocabFileNotFoundError(f"{path} does not exist")
    raise TokenizerConfigError(f"{name!r} is neither a directory nor a model with an image "
                               f"processor; models: {', '.join(sorted(IMAGE_PRESETS))}")


def _read_json(path: Path) -> dict[str, Any]:
    data = read_json(path, "image processor config")
    if not isinstance(data, dict):
        raise TokenizerConfigError(f"{path} does not hold a JSON object")
    return data


class AutoImageProcessor:
    """`AutoImageProcessor.from_pretrained("clip_vit_b_32" | directory)`."""

    def __init__(self) -> None:
        raise TypeError("use AutoImageProcessor.from_pretrained(name_or_path)")

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, **overrides: Any) -> ImageProcessor:
        settings = read_image_settings(name_or_path)
        kind = settings.get("image_processor_type") or settings.get("feature_extractor_type")
        if kind:
            cls = image_processor_class(kind)
        else:  # an old directory without a type: the model's config.json decides
            cls = MODEL_TYPE_PROCESSORS.get(_model_type(Path(name_or_path)), ViTImageProcessor)
        return cls.from_dict({**settings, **overrides})


def _model_type(directory: Path) -> str:
    try:
        return str(json.loads((directory / "config.json").read_text()).get("model_type", ""))
    except (OSError, ValueError, AttributeError):
        return ""


# ---- the steps, as functions on (C, H, W) arrays ---------------------------------------------
def load_image(image: Any):
    """An image file (or a PIL image), EXIF-rotated, in RGB (transformers' `load_image`, which
    the pipelines apply to every input that is not an array)."""
    import PIL.Image
    import PIL.ImageOps

    if _is_pil(image):
        return PIL.ImageOps.exif_transpose(image).convert("RGB")
    if not isinstance(image, (str, os.PathLike)):
        raise ImageInputError(f"an image must be a PIL image, a numpy array or a file path, "
                              f"not {type(image).__name__}")
    path = Path(image).expanduser()
    if not path.is_file():
        raise ImageInputError(f"image file {path} does not exist")
    try:
        with PIL.Image.open(path) as opened:
            opened.load()
            return PIL.ImageOps.exif_transpose(opened).convert("RGB")
    except (PIL.UnidentifiedImageError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageInputError(f"{path} is not an image Pillow can read ({reason})") from None


def to_channels_first(image: Any, convert_rgb: bool) -> np.ndarray:
    """PIL image, file or array -> numpy (C, H, W), converted to RGB if asked (transformers'
    `convert_to_rgb`: alpha composited onto white)."""
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image)
    if _is_pil(image):
        if convert_rgb:
            image = _pil_to_rgb(image)
        array = np.array(image)
        return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    if not isinstance(image, np.ndarray):
        raise ImageInputError(f"an image must be a PIL image, a numpy array or a file path, "
                              f"not {type(image).__name__}")
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise ImageInputError(f"an image array must be (H, W), (H, W, C) or (C, H, W), got "
                              f"shape {image.shape}")
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ImageInputError(f"image dtype {image.dtype} is not an integer or float type")
    image = _channels_first(image)
    if convert_rgb:
        image = _array_to_rgb(image)
    return image


def _channels_first(array: np.ndarray) -> np.ndarray:
    """transformers' `infer_channel_dimension_format` with 1, 3 or 4 channels; channels first
    when both ends could be channels."""
    if array.shape[0] in (1, 3, 4):
        return array
    if array.shape[-1] in (1, 3, 4):
        return np.moveaxis(array, -1, 0)
    raise ImageInputError(f"image shape {array.shape} has no channel axis of 1, 3 or 4 at "
                          "either end")


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    channels = array.shape[0]
    if channels == 1:
        return np.repeat(array, 3, axis=0)
    if channels != 4:
        return array
    if np.issubdtype(array.dtype, np.floating) and (array.min() < 0.0 or array.max() > 1.0):
        raise ImageInputError(f"an RGBA float image must lie in [0, 1], got [{array.min()}, "
                              f"{array.max()}]")
    white = 255 if np.issubdtype(array.dtype, np.integer) else 1.0
    alpha = array[3:4] / white
    blended = alpha * array[:3] + (1 - alpha) * white  # onto a white background
    return np.round(blended).astype(array.dtype) if white == 255 else blended.astype(array.dtype)


def _is_pil(image: Any) -> bool:
    return type(image).__module__.startswith("PIL.") and hasattr(image, "getbands")


def _pil_to_rgb(image):
    import PIL.Image

    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        background = PIL.Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PIL.Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def resize(array: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    """(C, H, W) -> (C, height, width) with Pillow, as transformers does: float images in
    [0, 1] go to uint8 (x255, truncated) and come back divided by 255."""
    import PIL.Image

    height, width = size
    if height < 1 or width < 1:
        raise ImageInputError(f"cannot resize to {height}x{width}")
    hwc = np.moveaxis(array, 0, -1)
    if hwc.shape[-1] == 1:
        hwc = hwc[..., 0]
    scaled = _needs_255(hwc)
    if scaled:
        hwc = (hwc.astype(np.float64) * 255).astype(np.float32)
    image = PIL.Image.fromarray(hwc.astype(np.uint8))
    out = np.array(image.resize((width, height), resample=resample))
    out = out[None] if out.ndim == 2 else np.moveaxis(out, -1, 0)
    if scaled:
        out = (out.astype(np.float64) * (1 / 255)).astype(np.float32)
    return out


def _needs_255(array: np.ndarray) -> bool:
    """Whether an array must be scaled by 255 before it is a uint8 image (transformers'
    `_rescale_for_pil_conversion`): no for uint8 or whole numbers in [0, 255], yes for floats
    in [0, 1]; anything else cannot become an 8-bit image."""
    if array.dtype == np.uint8:
        return False
    if np.allclose(array, array.astype(int)):
        if array.min() >= 0 and array.max() <= 255:
            return False
        raise ImageInputError(f"image values lie in [{array.min()}, {array.max()}]: whole "
                              "numbers must be in [0, 255] to be resized")
    if array.min() >= 0 and array.max() <= 1:
        return True
    raise ImageInputError(f"image values lie in [{array.min()}, {array.max()}]: floats must be "
                          "in [0, 1] to be resized")


def center_crop(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The central (height, width) of a (C, H, W) array, zero-padded (centred) where the image
    is smaller (transformers' `center_crop`)."""
    crop_h, crop_w = size
    height, width = array.shape[1:]
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    if top >= 0 and left >= 0:
        return array[:, top:top + crop_h, left:left + crop_w]
    new_h, new_w = max(crop_h, height), max(crop_w, width)
    padded = np.zeros((array.shape[0], new_h, new_w), dtype=array.dtype)
    pad_top, pad_left = -(-(new_h - height) // 2), -(-(new_w - width) // 2)
    padded[:, pad_top:pad_top + height, pad_left:pad_left + width] = array
    top, left = top + pad_top, left + pad_left
    return padded[:, max(0, top):min(new_h, top + crop_h), max(0, left):min(new_w, left + crop_w)]


def normalize(array: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(x - mean) / std per channel, in float32 (or the array's float type)."""
    if array.shape[0] != len(mean):
        hint = (" (an RGBA or grayscale image: convert it to RGB, or set do_convert_rgb=True)"
                if array.shape[0] in (1, 4) and len(mean) == 3 else "")
        raise ImageInputError(f"the image has {array.shape[0]} channels but the processor "
                              f"normalises {len(mean)}{hint}")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
    m = np.asarray(mean, dtype=array.dtype).reshape(-1, 1, 1)
    s = np.asarray(std, dtype=array.dtype).reshape(-1, 1, 1)
    return (array - m) / s


# ---- settings parsing ---------------------------------------------------------------------------
def _size_dict(value: Any, name: str, default_to_square: bool) -> dict[str, int]:
    if isinstance(value, Mapping):
        size = dict(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        size = ({"height": value, "width": value} if default_to_square
                else {"shortest_edge": value})
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        size = {"height": value[0], "width": value[1]}
    else:
        raise TokenizerConfigError(f"{name}={value!r} must be an int, (height, width) or a dict")
    allowed = {"height", "width", "shortest_edge"}
    for key, number in size.items():
        if key not in allowed:
            raise TokenizerConfigError(f"{name} key {key!r} is not one of {sorted(allowed)}")
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise TokenizerConfigError(f"{name}[{key!r}]={number!r} must be a positive integer")
    return size


def _resample(value: Any) -> int:
    if isinstance(value, str) and value.lower() in _RESAMPLE_NAMES:
        return _RESAMPLE_NAMES[value.lower()]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 5:
        return value
    raise TokenizerConfigError(f"resample={value!r} is not a Pillow filter (0-5 or one of "
                               f"{', '.join(_RESAMPLE_NAMES)})")


def _per_channel(value: Any, name: str) -> tuple[float, ...]:
    values = [value] * 3 if isinstance(value, (int, float)) else list(value)
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise TokenizerConfigError(f"{name}={value!r} must be numbers") from None


def _image_list(images: Any) -> list[Any]:
    """One image, a batch array (B, ...) with 4 dims, or a list of images -> list."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images)
    if isinstance(images, (list, tuple)):
        if not images:
            raise ImageInputError("no images given")
        return list(images)
    return [images]
