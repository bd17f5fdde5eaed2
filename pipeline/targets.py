"""Target profiles: what each fine-tuning service or trainer accepts, kept as data.

One YAML file per target in ``configs/targets/``; the file name is the profile name with ``:``
written as ``_`` (``openai:gpt-4o-mini-2024-07-18`` -> ``openai_gpt-4o-mini-2024-07-18.yaml``).
Every fact in a profile carries a source tag (``sources:`` lists each tag with the page or
repository it stands for and its date); a fact that could not be sourced is ``null`` and the
profile's ``notes:`` says so. ``docs/targets.md``
is generated from the profiles by ``profiles_markdown()`` (``python -m pipeline.targets``).

Where the profiles come from:

1. the ``directory`` argument of ``load_profiles`` / ``get_target``: that directory only;
2. otherwise the profiles ftprep ships (``configs/targets/`` of the repository, package data
   ``pipeline/configs/targets/`` of an installed wheel: :mod:`pipeline.shipped`), with the
   profiles of the directories in the ``FTPREP_TARGETS_DIR`` environment variable on top
   (several directories separated by ``os.pathsep``; the first one listed wins). A user
   profile adds a target, or replaces the shipped profile of the same ``name``. A directory
   in ``FTPREP_TARGETS_DIR`` that does not exist or holds no ``*.yaml`` is an error, not a
   silent fallback.

Every key of every file is checked on load: an unknown or missing key, or a value of the wrong
type, raises ``PipelineError`` naming the file and the key. Write ``key: null`` for an unknown
fact rather than leaving the key out.

No short aliases (``openai:gpt-4o-mini`` for a dated snapshot): the references do not say which
snapshot an undated name resolves to, so only the dated names are accepted.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from pipeline import shipped
from pipeline.errors import PipelineError

ENV_DIR = "FTPREP_TARGETS_DIR"

# The record shapes a profile can accept (the shape written to output).
FORMATS = frozenset(
    {
        "chat",  # {"messages": [...]} (OpenAI chat; TRL conversational; axolotl chat_template)
        "prompt_completion",  # {"prompt": ..., "completion": ...}
        "preference",  # OpenAI {input, preferred_output, ...} or TRL {prompt, chosen, rejected}
        "vertex",  # Gemini {"contents": [...], "systemInstruction": ...}
        "bedrock_conversation",  # {"schemaVersion": "bedrock-conversation-2024", ...}
        "alpaca",  # {"instruction", "input", "output", ...}
        "sharegpt",  # {"conversations": [{"from", "value"}], ...}
        "rft",  # OpenAI reinforcement fine-tuning: messages + arbitrary grader keys
    }
)

# Machine-checkable ordering rules for the messages of one record.
ROLE_ORDERS: Mapping[str, str] = MappingProxyType(
    {
        "user_first_alternating_assistant_last": (
            "first message user, last assistant, user/assistant alternate (Bedrock)"
        ),
        "user_model_alternating": "user and model turns alternate (legacy Vertex messages)",
        "system_or_user_first_alternating": (
            "starts with system or user, then user/assistant alternate (Together)"
        ),
        "system_first_if_present": "a system message, if any, is the first message (Fireworks)",
        "sharegpt_human_odd_gpt_even": (
            "human/observation at odd positions, gpt/function_call at even positions"
        ),
    }
)

TOKENIZERS = frozenset({"r50k_base", "cl100k_base", "o200k_base", "o200k_harmony", "hf"})
OVER_LIMIT = frozenset({"truncate", "reject"})
EPOCHS_RULES = frozenset({"openai_default"})
ANY_KEY = "*"  # in allowed_top_level_keys: any further key is allowed (RFT grader fields)

_PARTIAL_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_NULL = "—"



def today() -> dt.date:
    """The date shutdown warnings are judged against (one place, so tests can pin it)."""
    return dt.date.today()

@dataclass(frozen=True)
class Vision:
    supported: bool
    max_images_per_example: int | None
    max_image_bytes: int | None


@dataclass(frozen=True)
class OutputSpec:
    encoding: str
    bom: bool
    newline: str


@dataclass(frozen=True)
class Shutdown:
    """The day new fine-tuning jobs stop, and the day the base model (and its fine-tunes) stops."""

    training_shutdown: dt.date | None
    model_shutdown: dt.date | None


@dataclass(frozen=True)
class TargetProfile:
    """One target, mirroring one file of ``configs/targets`` key for key.

    ``formats``: record shapes accepted (see FORMATS); ``allowed_top_level_keys``: per format,
    the keys a record may carry (``*`` = any further key); ``roles`` / ``allowed_message_keys``:
    message roles and, per role, the keys a message may carry (null for shapes without
    messages); ``role_order``: a rule name from ROLE_ORDERS or null; ``content_types``: content
    part types. Limits are null when not sourced; ``over_limit`` is what the service does with an
    example over ``max_tokens_per_example``. ``chat_template``: true when the service or trainer
    formats each chat example with the base model's own (Hugging Face) chat template, so the
    template's tokens count; false when it has a format of its own (OpenAI); null when not
    documented. ``epochs_rule``: ``openai_default`` (3 epochs clamped
    so that n * epochs stays within [100, 25000], epochs within [1, 25]), a fixed number, or null.
    """

    name: str
    provider: str
    description: str
    formats: tuple[str, ...]
    roles: tuple[str, ...] | None
    role_order: str | None
    allowed_top_level_keys: Mapping[str, tuple[str, ...]]  # format -> keys
    allowed_message_keys: Mapping[str, tuple[str, ...]] | None  # role -> keys
    content_types: tuple[str, ...] | None
    vision: Vision
    output: OutputSpec
    max_file_bytes: int | None
    min_examples: int | None
    max_examples: int | None
    max_tokens_per_example: int | None
    over_limit: str | None
    tokenizer: str | None
    chat_template: bool | None
    price_per_1m_training_tokens: float | None
    price_date: str | None
    epochs_rule: str | int | None
    shutdown: Shutdown
    checked: str
    sources: tuple[str, ...]
    notes: str | None

    def __hash__(self) -> int:  # the mappings are not hashable; the name identifies a profile
        return hash(self.name)

    def top_level_keys(self, fmt: str) -> frozenset[str] | None:
        """Keys a record of `fmt` may carry; None when any key is allowed."""
        keys = self.allowed_top_level_keys[fmt]
        return None if ANY_KEY in keys else frozenset(keys)

    def is_past_shutdown(self, today: dt.date) -> str | None:
        """A warning when `today` is on or after a shutdown date, else None.

        The dates are the day the service stops (no new jobs from `training_shutdown`; the base
        model and its fine-tuned versions gone from `model_shutdown`), so the day itself counts.
        """
        warnings = []
        training, model = self.shutdown.training_shutdown, self.shutdown.model_shutdown
        if training is not None and today >= training:
            warnings.append(f"new fine-tuning jobs are not accepted since {training.isoformat()}")
        if model is not None and today >= model:
            warnings.append(
                f"the base model and its fine-tuned versions were shut down on {model.isoformat()}"
            )
        if not warnings:
            return None
        return f"target {self.name}: " + "; ".join(warnings) + " (see docs/targets.md)"


# --- validation -------------------------------------------------------------------------------


class _Bad(Exception):
    """A value of the wrong type or range; the loader adds the file and the key."""


def _nullable(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def inner(value: Any) -> Any:
        return None if value is None else check(value)

    return inner


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"expected a non-empty string, got {value!r}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Bad(f"expected a non-negative integer, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"expected true or false, got {value!r}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _Bad(f"expected a non-negative number, got {value!r}")
    return float(value)


def _one_of(allowed: Mapping[str, Any] | frozenset[str]) -> Callable[[Any], str]:
    def inner(value: Any) -> str:
        if value not in allowed:
            raise _Bad(f"expected one of {', '.join(sorted(allowed))}, got {value!r}")
        return str(value)

    return inner


def _str_list(item: Callable[[Any], str] = _str) -> Callable[[Any], tuple[str, ...]]:
    def inner(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise _Bad(f"expected a list, got {value!r}")
        items = tuple(item(v) for v in value)
        if len(set(items)) != len(items):
            raise _Bad(f"duplicate entries in {value!r}")
        return items

    return inner


def _key_lists(value: Any) -> Mapping[str, tuple[str, ...]]:
    if not isinstance(value, dict) or not value:
        raise _Bad(f"expected a mapping of name -> list of keys, got {value!r}")
    return MappingProxyType({_str(k): _str_list()(v) for k, v in value.items()})


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(_str(value))
    except ValueError:
        raise _Bad(f"expected a date YYYY-MM-DD, got {value!r}") from None


def _partial_date(value: Any) -> str:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if not isinstance(value, str) or not _PARTIAL_DATE.match(value):
        raise _Bad(f"expected a date YYYY-MM-DD, YYYY-MM or YYYY, got {value!r}")
    return value


def _epochs(value: Any) -> str | int:
    if isinstance(value, str):
        return _one_of(EPOCHS_RULES)(value)
    number = _int(value)
    if number < 1:
        raise _Bad(f"expected a positive number of epochs, got {value!r}")
    return number


_VISION: dict[str, Callable[[Any], Any]] = {
    "supported": _bool,
    "max_images_per_example": _nullable(_int),
    "max_image_bytes": _nullable(_int),
}
_OUTPUT: dict[str, Callable[[Any], Any]] = {
    "encoding": _str,
    "bom": _bool,
    "newline": _one_of(frozenset({"\n", "\r\n"})),
}
_SHUTDOWN: dict[str, Callable[[Any], Any]] = {
    "training_shutdown": _nullable(_date),
    "model_shutdown": _nullable(_date),
}


_FIELDS: dict[str, Callable[[Any], Any] | dict[str, Callable[[Any], Any]]] = {
    "name": _str,
    "provider": _str,
    "description": _str,
    "formats": _str_list(_one_of(FORMATS)),
    "roles": _nullable(_str_list()),
    "role_order": _nullable(_one_of(ROLE_ORDERS)),
    "allowed_top_level_keys": _key_lists,
    "allowed_message_keys": _nullable(_key_lists),
    "content_types": _nullable(_str_list()),
    "vision": _VISION,
    "output": _OUTPUT,
    "max_file_bytes": _nullable(_int),
    "min_examples": _nullable(_int),
    "max_examples": _nullable(_int),
    "max_tokens_per_example": _nullable(_int),
    "over_limit": _nullable(_one_of(OVER_LIMIT)),
    "tokenizer": _nullable(_one_of(TOKENIZERS)),
    "chat_template": _nullable(_bool),
    "price_per_1m_training_tokens": _nullable(_number),
    "price_date": _nullable(_partial_date),
    "epochs_rule": _nullable(_epochs),
    "shutdown": _SHUTDOWN,
    "checked": _partial_date,
    "sources": _str_list(),
    "notes": _nullable(_str),
}

FIELD_NAMES: tuple[str, ...] = tuple(_FIELDS)


def _check_keys(data: dict[str, Any], allowed: Mapping[str, Any], where: str, prefix: str) -> None:
    for key in data:
        if key not in allowed:
            raise PipelineError(
                f"{where}: unknown key '{prefix}{key}' (allowed: {', '.join(allowed)})"
            )
    for key in allowed:
        if key not in data:
            raise PipelineError(
                f"{where}: missing key '{prefix}{key}' (write `{key}: null` if it is unknown)"
            )


def _validate(data: Any, path: Traversable) -> TargetProfile:
    where = str(path)
    if not isinstance(data, dict):
        raise PipelineError(
            f"{where}: expected a mapping of profile keys, got {type(data).__name__}"
        )
    _check_keys(data, _FIELDS, where, "")
    values: dict[str, Any] = {}
    for key, check in _FIELDS.items():
        value = data[key]
        if isinstance(check, dict):
            if not isinstance(value, dict):
                raise PipelineError(f"{where}: key '{key}': expected a mapping, got {value!r}")
            _check_keys(value, check, where, f"{key}.")
            nested = {}
            for sub, sub_check in check.items():
                try:
                    nested[sub] = sub_check(value[sub])
                except _Bad as e:
                    raise PipelineError(f"{where}: key '{key}.{sub}': {e}") from None
            values[key] = nested
            continue
        try:
            values[key] = check(value)
        except _Bad as e:
            raise PipelineError(f"{where}: key '{key}': {e}") from None

    profile = TargetProfile(
        **{
            **values,
            "vision": Vision(**values["vision"]),
            "output": OutputSpec(**values["output"]),
            "shutdown": Shutdown(**values["shutdown"]),
        }
    )
    _check_consistency(profile, where, path)
    return profile


def _check_consistency(p: TargetProfile, where: str, path: Traversable) -> None:
    def bad(key: str, message: str) -> PipelineError:
        return PipelineError(f"{where}: key '{key}': {message}")

    expected_stem = p.name.replace(":", "_")
    if path.name.removesuffix(".yaml") != expected_stem:
        raise bad("name", f"'{p.name}' must live in {expected_stem}.yaml")
    if p.name.split(":")[0] != p.provider:
        raise bad("provider", f"'{p.provider}' must be the part of the name before ':'")
    if not p.formats:
        raise bad("formats", "list at least one format")
    if set(p.allowed_top_level_keys) != set(p.formats):
        raise bad("allowed_top_level_keys", f"needs exactly one entry per format {list(p.formats)}")
    if p.roles is None:
        if p.allowed_message_keys is not None or p.role_order is not None:
            key = "allowed_message_keys" if p.allowed_message_keys is not None else "role_order"
            raise bad(key, "must be null when roles is null")
    elif p.allowed_message_keys is None or set(p.allowed_message_keys) != set(p.roles):
        raise bad("allowed_message_keys", f"needs exactly one entry per role {list(p.roles)}")
    if not p.vision.supported and (
        p.vision.max_images_per_example is not None or p.vision.max_image_bytes is not None
    ):
        raise bad("vision", "image limits must be null when supported is false")
    if (p.price_per_1m_training_tokens is None) != (p.price_date is None):
        raise bad("price_date", "give a price_date exactly when a price is given")
    if not p.sources:
        raise bad("sources", "cite at least one source")


# --- loading ----------------------------------------------------------------------------------


def user_dirs() -> list[Path]:
    """The directories of ``FTPREP_TARGETS_DIR``, in order (first wins); each must exist."""
    dirs = []
    for part in os.environ.get(ENV_DIR, "").split(os.pathsep):
        if not part.strip():
            continue
        path = Path(part)
        if not path.is_dir():
            raise PipelineError(
                f"{ENV_DIR}: {part} is not a directory; point it at a folder of target "
                "profile *.yaml files (docs/targets.md), or unset it to use the shipped ones"
            )
        dirs.append(path.resolve())
    return dirs


_LOADED: dict[str, Mapping[str, TargetProfile]] = {}  # by directory: each is read once


def _load_dir(directory: Traversable) -> Mapping[str, TargetProfile]:
    if str(directory) not in _LOADED:
        _LOADED[str(directory)] = _read_dir(directory)
    return _LOADED[str(directory)]


def _read_dir(directory: Traversable) -> Mapping[str, TargetProfile]:
    profiles: dict[str, TargetProfile] = {}
    paths = sorted(
        (e for e in directory.iterdir() if e.name.endswith(".yaml") and e.is_file()),
        key=lambda e: e.name,
    )
    if not paths:
        raise PipelineError(f"{directory}: no *.yaml target profiles in this directory")
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise PipelineError(f"{path}: cannot read target profile: {e}") from None
        profile = _validate(data, path)
        if profile.name in profiles:
            raise PipelineError(f"{path}: key 'name': duplicate target name '{profile.name}'")
        profiles[profile.name] = profile
    return MappingProxyType(profiles)


def load_profiles(directory: Path | None = None) -> dict[str, TargetProfile]:
    """All profiles by name, read and validated once per directory (see the module docstring
    for where they come from)."""
    if directory is not None:
        if not Path(directory).is_dir():
            raise PipelineError(f"{directory}: no such directory of target profiles")
        return dict(_load_dir(Path(directory).resolve()))
    profiles = dict(_load_dir(shipped.folder("targets")))
    for user in reversed(user_dirs()):
        profiles.update(_load_dir(user))
    return profiles


def origins() -> dict[str, str]:
    """For the profiles that come from ``FTPREP_TARGETS_DIR``: name -> that directory."""
    found: dict[str, str] = {}
    for user in reversed(user_dirs()):
        found.update(dict.fromkeys(_load_dir(user), str(user)))
    return found


def get_target(name: str, directory: Path | None = None) -> TargetProfile:
    """The profile called `name`, or a PipelineError suggesting the closest names."""
    profiles = load_profiles(directory)
    if name in profiles:
        return profiles[name]
    # A bare provider ("openai") lists its profiles that still take jobs, the latest
    # announced first (retired ones only when none does); otherwise the closest spellings.
    close = _of_provider(name, profiles)[:5]
    close = close or difflib.get_close_matches(name, list(profiles), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise PipelineError(f"unknown target '{name}'{hint} (run `ftprep targets` for the full list)")


def _of_provider(provider: str, profiles: Mapping[str, TargetProfile]) -> list[str]:
    """The names of `provider`'s profiles (`provider:...`): those that take new jobs today
    first, ordered as `replacement` orders them (a known training stop, the latest first),
    then the retired ones."""
    on = today()
    own = [p for n, p in profiles.items() if n.startswith(f"{provider}:")]
    return [
        p.name
        for p in sorted(
            own,
            key=lambda q: (
                is_retired(q, on),
                q.shutdown.training_shutdown is None,
                -(q.shutdown.training_shutdown or dt.date.min).toordinal(),
                _natural(q.name),
            ),
        )
    ]


# --- docs -------------------------------------------------------------------------------------


def _bytes(n: int | None) -> str:
    if n is None:
        return _NULL
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("GB", 10**9), ("MB", 10**6)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n:,}"


def _cell(value: object) -> str:
    if value is None:
        return _NULL
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def _price(p: TargetProfile) -> str:
    if p.price_per_1m_training_tokens is None:
        return _NULL
    return f"${p.price_per_1m_training_tokens:.2f} ({p.price_date})"


def _shutdown(p: TargetProfile) -> str:
    parts = []
    if p.shutdown.training_shutdown:
        parts.append(f"training {p.shutdown.training_shutdown.isoformat()}")
    if p.shutdown.model_shutdown:
        parts.append(f"model {p.shutdown.model_shutdown.isoformat()}")
    return "; ".join(parts) or _NULL


def _natural(text: str) -> list[Any]:
    """Sort key: S2 before S10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def profiles_markdown(directory: Path | None = None) -> str:
    """docs/targets.md: a table of every profile, then each profile's notes and the sources."""
    found = load_profiles(directory) if directory else _load_dir(shipped.folder("targets"))
    profiles = sorted(found.values(), key=lambda p: p.name)  # the shipped ones: no user dirs
    lines = [
        "# Target profiles",
        "",
        "<!-- Generated from configs/targets/*.yaml by pipeline.targets.profiles_markdown();",
        "     regenerate with `python -m pipeline.targets > docs/targets.md`. Do not edit. -->",
        "",
        "What each fine-tuning service or trainer accepts. One YAML file per target in",
        "`configs/targets/` (an installed ftprep carries them); the name is what you write as",
        "the target in a config. To add a target or change a shipped one, copy a profile into",
        "a folder of your own, edit it (the file name is the name with `:` written as `_`) and",
        f"set `{ENV_DIR}` to that folder: its profiles add to the shipped ones and replace a",
        "shipped profile of the same name. Several folders are separated by `:` (`;` on",
        "Windows); the first one listed wins. `ftprep targets` says which profiles came from",
        "there; a folder that does not exist is an error.",
        f"`{_NULL}` = not found in the references or not applicable: the profile's notes say which.",
        "",
        "- **tokens/example**: maximum tokens of one training example; **over limit**: what the",
        "  service does with a longer one (`truncate` = cut from the end, `reject`).",
        "- **tokenizer**: a tiktoken encoding, or `hf` = the model's own Hugging Face tokenizer.",
        "- **chat template**: `yes` = each chat example is formatted with the base model's own",
        "  chat template (its tokens are billed and count toward the limit; `count_tokens`",
        "  renders it when given the model's files), `no` = the service's own format, `—` = not",
        "  documented.",
        "- **price**: USD per 1M training tokens (billed tokens = tokens in file × epochs),",
        "  with the date of the price source.",
        "- **shutdown**: `training` = no new fine-tuning jobs from that day; `model` = the base",
        "  model and its fine-tuned versions are shut down that day.",
        "- **sources**: tags `S*` are OpenAI's pages and repositories, the others `A`zure,",
        "  `V`ertex, `B`edrock, `F`ireworks, `T`ogether, `M`istral, `O`pen-source trainers and",
        "  `PEERS` (the trainers' own code); the full entries are listed at the end.",
        "- **checked**: the date of the reference the facts were taken from.",
        "",
        "| name | formats | tokens/example | over limit | tokenizer | chat template | max file "
        "| min examples | price / 1M (date) | shutdown | sources | checked |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in profiles:
        tags = ", ".join(s.split()[0] for s in p.sources)
        row = [
            f"`{p.name}`",
            ", ".join(p.formats),
            _cell(p.max_tokens_per_example),
            _cell(p.over_limit),
            _cell(p.tokenizer),
            _NULL if p.chat_template is None else ("yes" if p.chat_template else "no"),
            _bytes(p.max_file_bytes),
            _cell(p.min_examples),
            _price(p),
            _shutdown(p),
            tags,
            p.checked,
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Notes", ""]
    for p in profiles:
        notes = (p.notes or _NULL).replace("*", "\\*")
        lines.append(f"- `{p.name}` ({p.description}): {notes}")
    lines += ["", "## Sources", ""]
    for source in sorted({s for p in profiles for s in p.sources}, key=_natural):
        lines.append(f"- {source}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(profiles_markdown(), end="")


def is_retired(p: TargetProfile, on: dt.date) -> bool:
    """Whether `p` no longer accepts fine-tuning jobs on `on` (its `training_shutdown` day
    counts: no new jobs from that day)."""
    stop = p.shutdown.training_shutdown
    return stop is not None and on >= stop


def replacement(p: TargetProfile, on: dt.date) -> TargetProfile | None:
    """The profile to suggest instead of a retired `p`, or None when no profile fits.

    Among the profiles not retired on `on`, the first tier that has any: (1) the same provider
    and a format of `p`; (2) the same provider, any format (the data must be converted); (3)
    another provider with a format of `p`. Within a tier: profiles with a known
    `training_shutdown` before those without one (an announced date means a current model),
    the latest date first, then the same tokenizer as `p`, then by name.
    """
    live = [q for q in load_profiles().values() if q.name != p.name and not is_retired(q, on)]
    tiers = (
        [q for q in live if q.provider == p.provider and set(q.formats) & set(p.formats)],
        [q for q in live if q.provider == p.provider],
        [q for q in live if set(q.formats) & set(p.formats)],
    )
    for tier in tiers:
        if tier:
            return min(
                tier,
                key=lambda q: (
                    q.shutdown.training_shutdown is None,
                    -(q.shutdown.training_shutdown or dt.date.min).toordinal(),
                    q.tokenizer != p.tokenizer,
                    _natural(q.name),
                ),
            )
    return None


def retired_message(p: TargetProfile, on: dt.date) -> str | None:
    """Why `p` cannot be trained on `on`, with the date and the replacement; None when it can."""
    if not is_retired(p, on):
        return None
    stop = p.shutdown.training_shutdown
    assert stop is not None
    text = f"target {p.name} takes no new fine-tuning jobs since {stop.isoformat()}"
    new = replacement(p, on)
    if new is None:
        return text + ": no other profile takes its format; choose another target (ftprep targets)"
    text += f": target {new.name} instead"
    if not set(new.formats) & set(p.formats):
        text += (
            f" (it takes {', '.join(new.formats)}, not {', '.join(p.formats)}: "
            f"convert the data, e.g. ftprep convert FILE --to {new.formats[0]} --out DIR)"
        )
    return text


def run_facts(name: str) -> dict[str, Any]:
    """What a run's target means for its output (report.json `target`), with the warning past
    its shutdown dates (None before them)."""
    profile = get_target(name)
    return {
        "name": profile.name,
        "bom": profile.output.bom,
        "max_file_bytes": profile.max_file_bytes,
        "checked": profile.checked,
        "shutdown_warning": profile.is_past_shutdown(today()),
    }
