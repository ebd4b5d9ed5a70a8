"""`SyntheticTaskDataset`: small generated examples of every task, for the `_debug` run YAMLs and
the tests (mf ships no data sets and downloads none).

    records = synthetic_records("text_classification", model_config, num_samples=256, split="train")

Each task's examples are separable by construction, so a short run shows learning: a class's
sentences draw from its own words, a class's images have their own colour, a caption names the
colour and the stripes of its image. `split: eval` draws other examples (another seed) of the
same kind. Every word is in `debug_vocabulary()`, the WordPiece vocabulary the debug YAMLs
read from configs/data/debug_vocab/vocab.txt (a test keeps the two equal).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mf_train.errors import TrainConfigError
from mf_train.task_data.records import Records

# Word groups: one per text class, and the parts of the other tasks' sentences.
CLASS_WORDS = (
    ("good", "great", "happy", "fine", "nice", "bright", "warm", "kind"),
    ("bad", "sad", "poor", "dark", "cold", "cruel", "awful", "grim"),
    ("table", "chair", "door", "window", "paper", "stone", "river", "road"),
    ("run", "jump", "swim", "walk", "climb", "sing", "dance", "read"),
)
FILLER = ("the", "a", "is", "in", "and", "to", "of", "with", "was", "saw", "went", "on", "at",
          "from", "near", "by")
NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
PLACES = ("paris", "london", "tokyo", "rome", "berlin", "madrid", "oslo", "cairo")
COLORS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (30, 60, 220),
          "yellow": (230, 220, 40), "black": (10, 10, 10), "white": (245, 245, 245),
          "orange": (240, 140, 20), "purple": (140, 40, 180), "gray": (128, 128, 128),
          "pink": (250, 150, 200)}
PATTERNS = ("plain", "horizontal", "vertical")
OTHER = ("where", "what", "image", "stripes", "color")
NER_TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
SPLIT_SEEDS = {"train": 0, "eval": 1, "all": 0}


def debug_vocabulary() -> list[str]:
    """The debug tokenizer's WordPiece vocabulary: special tokens, every generated word, and
    the letters (alone and as ## continuations) so any other lowercase word still tokenizes."""
    words = [w for group in CLASS_WORDS for w in group] + [*FILLER, *NAMES, *PLACES, *COLORS,
                                                           *PATTERNS, *OTHER]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    seen: dict[str, None] = dict.fromkeys([*SPECIALS, *words, *letters,
                                           *(f"##{c}" for c in letters)])
    return list(seen)


def synthetic_records(task: str, model_config: Any, num_samples: int | None,
                      split: str = "train", seed: int = 0) -> Records:
    if task not in _MAKERS:
        raise TrainConfigError(f"SyntheticTaskDataset has no examples for task {task}")
    n = int(num_samples or 256)
    if n < 1:
        raise TrainConfigError(f"data_loader.num_samples = {n}; must be >= 1")
    rng = np.random.default_rng([seed, SPLIT_SEEDS.get(split, 0), 7919])
    rows = [_MAKERS[task](rng, model_config, i) for i in range(n)]
    return Records(rows, f"SyntheticTaskDataset({task}, {split}, {n})")


def _pick(rng: np.random.Generator, words: tuple[str, ...], k: int) -> list[str]:
    return [words[j] for j in rng.integers(0, len(words), k)]


def _num_labels(config: Any, most: int) -> int:
    n = int(getattr(config, "num_labels", 2))
    if n > most:
        raise TrainConfigError(f"SyntheticTaskDataset makes up to {most} classes; the model "
                               f"has num_labels {n}")
    return n


def _text_classification(rng: np.random.Generator, config: Any, i: int) -> dict[str, Any]:
    label = int(rng.integers(0, _num_labels(config, len(CLASS_WORDS))))
    words = _pick(rng, CLASS_WORDS[label], 3) + _pick(rng, FILLER, 3)
    rng.shuffle(words)
    return {"text": " ".join(words), "label": label}


def _token_classification(rng: np.random.Generator, config: Any, i: int) -> dict[str, Any]:
    tokens, tags = [], []
    for _ in range(3):
        kind = rng.integers(0, 3)
        if kind == 0:
            tokens += _pick(rng, FILLER, 2)
            tags += ["O", "O"]
        elif kind == 1:
            tokens += _pick(rng, NAMES, 2)
            tags += ["B-PER", "I-PER"]
        else:
            tokens += _pick(rng, PLACES, 1)
            tags += ["B-LOC"]
    names = list(getattr(config, "labels", None) or [])
    if names and any(t not in names for t in NER_TAGS):
        raise TrainConfigError(f"SyntheticTaskDataset tags with {', '.join(NER_TAGS)}; set "
                               "model.model_config.id2label to them")
    return {"tokens": tokens, "tags": tags}


def _question_answering(rng: np.random.Generator, config: Any, i: int) -> dict[str, Any]:
    people = rng.choice(len(NAMES), 3, replace=False)
    places = _pick(rng, PLACES, 3)
    parts = [f"{NAMES[p]} is in {place}" for p, place in zip(people, places, strict=True)]
    context = " and ".join(parts)
    asked = int(rng.integers(0, 3))
    answer = places[asked]
    start = context.index(parts[asked]) + len(parts[asked]) - len(answer)
    return {"question": f"where is {NAMES[people[asked]]}", "context": context,
            "answers": {"text": [answer], "answer_start": [start]}}


def _fill_mask(rng: np.random.Generator, config: Any, i: int) -> dict[str, Any]:
    return {"text": f"{_pick(rng, NAMES, 1)[0]} went to {_pick(rng, PLACES, 1)[0]} with the "
                    f"{_pick(rng, tuple(COLORS), 1)[0]} {_pick(rng, CLASS_WORDS[2], 1)[0]}"}


# The "language" translated into: each word's counterpart, read in reverse order.
_LEXICON = dict(zip(CLASS_WORDS[0] + NAMES, CLASS_WORDS[1] + PLACES, strict=True))


def _translation(rng: np.random.Generator, config: Any, i: int) -> dict[str, Any]:
    source = _pick(rng, tuple(_LEXICON), int(rng.integers(3, 6)))
    return {"source": " ".join(source), "target": " ".join(_LEXICON[w] for w in source[::-1])}


def _image(rng: np.random.Generator, size: int, color: tuple[int, int, int],
           pattern: str) -> np.ndarray:
    """(size, size, 3) uint8: the colour, striped or plain, with noise."""
    image = np.broadcast_to(np.asarray(color, np.float32), (size, size, 3)).copy()
    stripes = (np.arange(size) // max(size // 8, 1)) % 2 == 1
    if pattern == "horizontal":
        image[stripes, :, :] *= 0.35
    elif pattern == "vertical":
        image[:, stripes, :] *= 0.35
    image += rng.normal(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _size(config: Any) -> int:
    return int(getattr(config, "vision_config", config).image_size)


def _image_classification(rng: np.random.Generator, config: Any, i: int) -> dict[str, Any]:
    label = int(rng.integers(0, _num_labels(config, len(COLORS))))
    color = list(COLORS.values())[label]
    return {"image": _image(rng, _size(config), color, PATTERNS[int(rng.integers(0, 3))]),
            "label": label}


def _masked_image_modeling(rng: np.random.Generator, config: Any, i: int) -> dict[str, Any]:
    color = list(COLORS.values())[int(rng.integers(0, len(COLORS)))]
    return {"image": _image(rng, _size(config), color, PATTERNS[int(rng.integers(0, 3))])}


def _contrastive(rng: np.random.Generator, config: Any, i: int) -> dict[str, Any]:
    name = _pick(rng, tuple(COLORS), 1)[0]
    pattern = PATTERNS[int(rng.integers(0, 3))]
    caption = f"a {name} image" if pattern == "plain" else f"a {name} image with {pattern} stripes"
    return {"image": _image(rng, _size(config), COLORS[name], pattern), "caption": caption}


_MAKERS = {
    "text_classification": _text_classification,
    "token_classification": _token_classification,
    "question_answering": _question_answering,
    "fill_mask": _fill_mask,
    "translation": _translation,
    "image_classification": _image_classification,
    "masked_image_modeling": _masked_image_modeling,
    "contrastive_language_image_pretrain": _contrastive,
}
