"""scan_sensitive: find secrets and personal data in every text of a record; reject, redact or warn.

Every string inside a record's canonical fields is scanned: prompt and completion, message
contents (text and text parts), tool-call and function-call arguments and names, tool and
function definitions, preference inputs and outputs. Base64 `data:` URLs (images) are skipped.

Kinds (placeholder used by `redact` in brackets):

- secrets: `openai_key` [OPENAI_KEY], `anthropic_key` [ANTHROPIC_KEY], `aws_access_key`
  [AWS_ACCESS_KEY], `aws_secret_key` [AWS_SECRET_KEY], `github_token` [GITHUB_TOKEN],
  `slack_token` [SLACK_TOKEN], `google_api_key` [GOOGLE_API_KEY], `private_key`
  [PRIVATE_KEY], `jwt` [JWT], `connection_password` [PASSWORD] (only the password of a
  `scheme://user:password@host` URL or a `Password=...;` connection string is replaced);
- personal data (PII): `email` [EMAIL], `phone` [PHONE] (international `+` numbers, North
  American numbers, Chinese mobile numbers), `cn_id` [CN_ID] (Chinese resident ID numbers whose
  GB 11643-1999 check digit is right), `credit_card` [CREDIT_CARD] (a known card prefix and
  length, and the Luhn check), `ip_address` [IP_ADDRESS] (public IPv4 addresses).

What happens to a record with a hit is the action of the hit's kind: `secrets` for every secret
kind (default `reject`), `pii` for every PII kind (default `warn`), `actions` per kind over both.
`reject` rejects the record; `redact` replaces each match with its placeholder and counts it in
the stage's changes (`redacted_<kind>`); `warn` keeps the record unchanged with a warning;
`off` does not look for the kind. Messages name the kind and the field path, never the whole
match (rejected.jsonl and the report would otherwise repeat the secret once more).

Metrics: `m_secrets` and `m_pii`, the hits per record (all actions, `off` kinds excluded).

Reason codes: `secret_found`, `pii_found`. Warning codes: `secret_detected`, `pii_detected`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from pipeline.configdoc import ConfigValueError, doc
from pipeline.records import ALL_FIELDS, count_change, drop_where, warn
from pipeline.registry import Changes, register

Action = Literal["reject", "redact", "warn", "off"]
SECRET, PII = "secret", "pii"
_SEP = "\x00"  # joins a batch's texts into one string; no pattern matches across it


# --- validators: a regex finds candidates, these decide --------------------------------------


def _luhn(digits: str) -> bool:
    """The Luhn (mod 10) check of ISO/IEC 7812-1."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# IIN ranges and lengths per brand (ISO/IEC 7812; the brands' published ranges as collected in
# https://en.wikipedia.org/wiki/Payment_card_number#Issuer_identification_number_(IIN)).
_CARD_RULES: tuple[tuple[Callable[[str], bool], frozenset[int]], ...] = (
    (lambda d: d[0] == "4", frozenset({13, 16, 19})),  # Visa
    (lambda d: 51 <= int(d[:2]) <= 55 or 2221 <= int(d[:4]) <= 2720, frozenset({16})),  # Mastercard
    (lambda d: d[:2] in ("34", "37"), frozenset({15})),  # American Express
    (
        lambda d: d[:4] == "6011" or d[:2] == "65" or 644 <= int(d[:3]) <= 649,
        frozenset({16, 17, 18, 19}),
    ),  # Discover
    (lambda d: 3528 <= int(d[:4]) <= 3589, frozenset({16, 17, 18, 19})),  # JCB
    (lambda d: d[:2] == "62", frozenset({16, 17, 18, 19})),  # UnionPay
    (
        lambda d: d[:2] in ("36", "38", "39") or 300 <= int(d[:3]) <= 305 or d[:4] == "3095",
        frozenset({14, 15, 16, 17, 18, 19}),
    ),  # Diners Club
)


def _credit_card(match: str) -> bool:
    digits = match.replace(" ", "").replace("-", "")
    n = len(digits)
    brand = any(n in lengths and prefix(digits) for prefix, lengths in _CARD_RULES)
    return brand and _luhn(digits)


# GB 11643-1999 (ISO 7064 MOD 11-2): weights of the first 17 digits and the check character.
_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_ID_CHECK = "10X98765432"


def _cn_id(match: str) -> bool:
    total = sum(int(c) * w for c, w in zip(match[:17], _CN_ID_WEIGHTS, strict=True))
    return _CN_ID_CHECK[total % 11] == match[17].upper()


def _phone(match: str) -> bool:
    digits = sum(c.isdigit() for c in match)
    return 8 <= digits <= 15  # E.164: at most 15 digits; fewer than 8 is no full number


def _public_ipv4(match: str) -> bool:
    # private, loopback, link-local, documentation (RFC 5737) and reserved ranges name no one
    return ipaddress.IPv4Address(match).is_global


def _b64json_object(part: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        return raw.lstrip()[:1] == b"{" and raw.rstrip()[-1:] == b"}"
    except (binascii.Error, ValueError):
        return False


def _jwt(match: str) -> bool:
    # detect-secrets' JwtTokenDetector.is_formally_valid: header and payload are base64url JSON
    header, payload, *_ = match.split(".")
    return _b64json_object(header) and _b64json_object(payload)


_PLACEHOLDER_PASSWORDS = frozenset(
    {"password", "passwd", "pass", "pwd", "secret", "your_password", "yourpassword", "mypassword"}
)


def _real_password(value: str) -> bool:
    """A password that is not a template placeholder (`<password>`, `${DB_PASS}`, `****`)."""
    if value[:1] in "<{$%[(*" or set(value) <= set("x*.X"):
        return False
    return value.lower() not in _PLACEHOLDER_PASSWORDS


# --- the kinds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of sensitive text: its group, placeholder, regex and optional validator.

    A regex group whose name starts with `v` marks the part to validate and redact (the
    password of a connection string); without one the whole match is. `needles` are cheap
    regexes one of which every match contains (a literal such as `sk-`, or `@`), or one of the
    vectorised tests `DIGIT_RUN` (three digits in a row) and `DIGIT_DOT` (`1.2`): they are
    searched over a whole batch at once, and `regex` runs only on the texts where one occurs.
    """

    name: str
    group: str
    placeholder: str
    regex: re.Pattern[str]
    needles: tuple[str, ...]
    valid: Callable[[str], bool] | None = None


_A = r"A-Za-z0-9"  # ASCII boundaries: CJK text around a key must not hide it (\w would)


DIGIT_RUN, DIGIT_DOT = "<digit run>", "<digit.digit>"


def _k(
    name: str,
    group: str,
    needles: str | tuple[str, ...],
    pattern: str,
    valid: Callable[[str], bool] | None = None,
    flags: int = 0,
) -> Kind:
    needles = (needles,) if isinstance(needles, str) else needles
    return Kind(name, group, f"[{name.upper()}]", re.compile(pattern, flags), needles, valid)


KINDS: tuple[Kind, ...] = (
    # detect-secrets OpenAIDetector (`sk-[A-Za-z0-9-_]*[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}`);
    # T3BlbkFJ is base64 of "openai"; project and service-account keys (sk-proj-, sk-svcacct-)
    # carry it too and may have `-`/`_` after it (gitleaks rule openai-api-key).
    _k(
        "openai_key",
        SECRET,
        "T3BlbkFJ",
        rf"(?<![{_A}_-])sk-[{_A}_-]*[{_A}]{{20}}T3BlbkFJ[{_A}_-]{{20,}}(?![{_A}_-])",
    ),
    # gitleaks rules anthropic-api-key and anthropic-admin-api-key:
    # `sk-ant-api03-[a-zA-Z0-9_\-]{93}AA`, `sk-ant-admin01-[a-zA-Z0-9_\-]{93}AA`.
    _k(
        "anthropic_key",
        SECRET,
        "sk-ant-",
        rf"(?<![{_A}_-])sk-ant-(?:api03|admin01)-[{_A}_-]{{93}}AA(?![{_A}_-])",
    ),
    # detect-secrets AWSKeyDetector, first pattern; the 16 characters after the prefix are
    # base32 (gitleaks rule aws-access-token: `[A-Z2-7]{16}`).
    _k(
        "aws_access_key",
        SECRET,
        "A(?:3T|KIA|SIA|BIA|CCA)",
        rf"(?<![{_A}])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{{16}}(?![{_A}])",
    ),
    # detect-secrets AWSKeyDetector, second pattern: a 40-character secret access key quoted
    # within 20 characters of "aws" and a key word.
    _k(
        "aws_secret_key",
        SECRET,
        ("aws", "AWS", "Aws"),
        r"aws.{0,20}?(?:key|pwd|pw|password|pass|token).{0,20}?['\"](?P<v>[0-9a-zA-Z/+]{40})['\"]",
        flags=re.IGNORECASE,
    ),
    # detect-secrets GitHubTokenDetector (classic tokens, github.blog 2021-04-05 "Behind GitHub's
    # new authentication token formats"); fine-grained tokens: gitleaks rule
    # github-fine-grained-pat `github_pat_\w{82}`.
    _k(
        "github_token",
        SECRET,
        ("gh[pousr]_", "github_pat_"),
        rf"(?<![{_A}_])(?:gh[pousr]_[{_A}]{{36}}|github_pat_[{_A}_]{{82}})(?![{_A}_])",
    ),
    # detect-secrets SlackDetector: tokens and incoming-webhook URLs.
    _k(
        "slack_token",
        SECRET,
        ("xox", r"hooks\.slack\.com"),
        rf"(?<![{_A}_-])(?:xox[aboprs]-(?:[0-9]+-)+[a-z0-9]+|https://hooks\.slack\.com/services/"
        r"T[a-zA-Z0-9_]+/B[a-zA-Z0-9_]+/[a-zA-Z0-9_]+)",
        flags=re.IGNORECASE,
    ),
    # Google API keys: `AIza` and 35 characters (gitleaks rule gcp-api-key `AIza[\w-]{35}`).
    _k("google_api_key", SECRET, "AIza", rf"(?<![{_A}_-])AIza[{_A}_-]{{35}}(?![{_A}_-])"),
    # detect-secrets PrivateKeyDetector (after pre-commit-hooks' detect-private-key): the BEGIN
    # line of any PEM/OpenSSH/PGP private key, with the body up to its END line when present
    # (a JSON-escaped `\n` may separate the lines), and PuTTY key files.
    _k(
        "private_key",
        SECRET,
        ("PRIVATE KEY", "PuTTY-User-Key-File"),
        r"-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[A-Za-z0-9+/=\s\\:,.-]{0,20000}?-----END[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----)?"
        r"|PuTTY-User-Key-File-[23]:",
    ),
    # detect-secrets JwtTokenDetector (`eyJ...`); header and payload must decode to JSON objects
    # (RFC 7519: the first two parts are base64url JSON; `{"` encodes as `eyJ`, `{ "`/`{\n` as
    # `ey`/`ew`, allowed in the payload).
    _k(
        "jwt",
        SECRET,
        "eyJ",
        rf"(?<![{_A}_-])eyJ[{_A}_-]{{8,}}\.e[wy][{_A}_-]{{8,}}\.[{_A}_-]*",
        _jwt,
    ),
    # detect-secrets BasicAuthDetector: `scheme://user:password@` (RFC 3986 reserved characters
    # cannot be in either part); and ADO.NET/ODBC connection strings `...;Password=...;`.
    _k(
        "connection_password",
        SECRET,
        ("://", "assword", "ASSWORD", "wd", "WD"),
        r"[A-Za-z][A-Za-z0-9+.-]{1,20}://[^:/?#\[\]@!$&'()*+,;=\s\x00]+:"
        r"(?P<v>[^:/?#\[\]@!$&'()*+,;=\s\x00]+)@"
        r"|(?<![A-Za-z0-9_])(?:password|pwd)\s*=\s*(?P<v2>[^;'\"\s\x00]+)\s*;"
        r"|;\s*(?:password|pwd)\s*=\s*(?P<v3>[^;'\"\s\x00]+)",
        _real_password,
        re.IGNORECASE,
    ),
    # WHATWG HTML "valid e-mail address", ASCII, with a dotted domain and an alphabetic TLD;
    # not after `:` (the `user:password@host` of a URL) unless after `mailto:`.
    _k(
        "email",
        PII,
        "@",
        r"(?:(?<=mailto:)|(?<![A-Za-z0-9._%+:-]))[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}"
        r"(?![A-Za-z0-9-])",
    ),
    # Chinese mobile numbers (MIIT numbering plan: 11 digits, 13x-19x), optionally +86 / 0086;
    # E.164 numbers written with `+` (8 to 15 digits); North American 3-3-4 numbers (NANP), with
    # the same `-` or `.` between the groups, or `(area code) 555-0100`. NANP says area and
    # exchange codes start with 2-9, but the fictional 555-123-4567 is a phone number to every
    # reader, so any digits are taken: the grouping is what makes it a phone number.
    _k(
        "phone",
        PII,
        DIGIT_RUN,
        r"(?<![0-9A-Za-z+])(?:(?:\+|00)86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?![0-9A-Za-z])"
        r"|(?<![0-9A-Za-z+])\+[1-9][0-9]{0,2}[ .-]?(?:\([0-9]{1,4}\)[ .-]?)?[0-9]{1,4}"
        r"(?:[ .-]?[0-9]{2,4}){1,4}(?![0-9A-Za-z])"
        r"|(?<![0-9A-Za-z+.-])(?:\([0-9]{3}\) ?|[0-9]{3}(?P<sep>[-.]))[0-9]{3}(?(sep)(?P=sep)|-)[0-9]{4}"
        r"(?![0-9A-Za-z-]|\.[0-9])",
        _phone,
    ),
    # GB 11643-1999 resident ID: region (first digit 1-8), birth date 18xx-20xx, sequence, check.
    _k(
        "cn_id",
        PII,
        DIGIT_RUN,
        r"(?<![0-9A-Za-z])[1-8][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
        r"[0-9]{3}[0-9Xx](?![0-9A-Za-z])",
        _cn_id,
    ),
    # 13-19 digits, plain or in groups of 4 (Amex 4-6-5) with one space or dash between groups.
    _k(
        "credit_card",
        PII,
        DIGIT_RUN,
        r"(?<![0-9A-Za-z.,-])(?:[0-9]{13,19}|[0-9]{4}(?P<s>[ -])[0-9]{4}(?P=s)[0-9]{4}(?P=s)[0-9]{1,7}"
        r"|3[47][0-9]{2}(?P<t>[ -])[0-9]{6}(?P=t)[0-9]{5})(?![0-9A-Za-z-]|[.,][0-9])",
        _credit_card,
    ),
    # detect-secrets IPPublicDetector (dotted quad, octets 0-255, not inside a longer dotted
    # run such as a version number or a list "1.3.4.5.阳性"; a dot that ends a sentence is
    # fine); only public (globally routable) addresses count.
    _k(
        "ip_address",
        PII,
        DIGIT_DOT,
        r"(?<![0-9A-Za-z.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}"
        r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?![0-9A-Za-z]|\.(?![\s\x00]|$))",
        _public_ipv4,
    ),
)
KIND_NAMES = tuple(k.name for k in KINDS)
_BY_NAME = {k.name: k for k in KINDS}
_PASSWORD_KIND = "connection_password"
_CONNECTION_PLACEHOLDER = "[PASSWORD]"


def placeholder(kind: str) -> str:
    """The text `redact` puts in place of a match of `kind`."""
    return _CONNECTION_PLACEHOLDER if kind == _PASSWORD_KIND else _BY_NAME[kind].placeholder


# --- finding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One match: which text (index into the scanned list), kind, and the span to redact."""

    text: int
    kind: str
    start: int
    end: int
    value: str


class _Batch:
    """A batch's texts joined into one string, to search every needle once over all of them."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.joined = _SEP.join(texts)
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + 1
        self.starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        self._cache: dict[str, np.ndarray] = {}

    def _texts_at(self, positions: np.ndarray) -> np.ndarray:
        return np.unique(np.searchsorted(self.starts, positions, side="right") - 1)

    def _digit_tests(self) -> None:
        # code points as one numpy array: three digits in a row, and digit-dot-digit
        codes = np.frombuffer(self.joined.encode("utf-32-le"), dtype=np.uint32)
        digit = (codes >= 48) & (codes <= 57)
        run = digit[:-2] & digit[1:-1] & digit[2:]
        dot = digit[:-2] & (codes[1:-1] == 46) & digit[2:]
        self._cache[DIGIT_RUN] = self._texts_at(np.flatnonzero(run))
        self._cache[DIGIT_DOT] = self._texts_at(np.flatnonzero(dot))

    def holding(self, needle: str) -> np.ndarray:
        """Indices of the texts where `needle` occurs, ascending."""
        if needle not in self._cache:
            if needle in (DIGIT_RUN, DIGIT_DOT):
                self._digit_tests()
            else:
                where = [m.start() for m in re.finditer(needle, self.joined)]
                self._cache[needle] = self._texts_at(np.array(where, dtype=np.int64))
        return self._cache[needle]


def find(texts: list[str], kinds: tuple[str, ...] = KIND_NAMES) -> list[Hit]:
    """Every hit of `kinds` in `texts`, in text order then position order.

    The texts are joined into one string and each needle is searched over it once (a C scan,
    or a numpy test over the code points for the digit needles); each kind's full regex and
    validator run only on the texts holding one of its needles. Most texts of a batch hold
    none, so they cost a few list operations.
    """
    if not texts:
        return []
    batch = _Batch(texts)
    hits: list[Hit] = []
    for name in kinds:
        kind = _BY_NAME[name]
        candidates = [batch.holding(n) for n in kind.needles]
        which = candidates[0] if len(candidates) == 1 else np.unique(np.concatenate(candidates))
        for i in which.tolist():
            text = texts[i]
            for m in kind.regex.finditer(text):
                group = next((g for g, v in m.groupdict().items() if g[0] == "v" and v), None)
                s, e = m.span(group) if group else m.span()
                value = text[s:e]
                if kind.valid is None or kind.valid(value):
                    hits.append(Hit(i, name, s, e, value))
    hits.sort(key=lambda h: (h.text, h.start))
    return hits


Path = tuple[str | int, ...]


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        if not value.startswith("data:"):  # base64 images: no text to scan
            yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*path, k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))


def record_texts(batch: pd.DataFrame) -> tuple[list[str], list[int], list[Path]]:
    """Every string in the canonical fields of `batch`: the texts, the row position of each,
    and its path (`("messages", 2, "content")`)."""
    texts: list[str] = []
    rows: list[int] = []
    paths: list[Path] = []
    fields = [f for f in ALL_FIELDS if f in batch.columns]
    for col in fields:
        for pos, value in enumerate(batch[col].tolist()):
            if value is None or isinstance(value, float | bool | int):
                continue
            for path, s in _strings(value, (col,)):
                texts.append(s)
                rows.append(pos)
                paths.append(path)
    return texts, rows, paths


def path_text(path: Path) -> str:
    """`messages[2].content` for `("messages", 2, "content")`."""
    out = str(path[0])
    for p in path[1:]:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _masked(value: str) -> str:
    return f"{value[:4]}... ({len(value)} chars)" if len(value) > 8 else f"({len(value)} chars)"


def _replaced(value: Any, path: Path, new: str) -> Any:
    """A copy of `value` with the string at `path` replaced; containers off the path shared."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    out = list(value)
    assert isinstance(head, int)
    out[head] = _replaced(value[head], rest, new)
    return out if isinstance(value, list) else tuple(out)


def _redact(text: str, hits: list[Hit]) -> tuple[str, list[Hit]]:
    """`text` with each hit replaced by its placeholder, and the hits replaced."""
    parts, last, done = [], 0, []
    for h in hits:
        if h.start < last:  # overlapping matches of two kinds: the first one redacted wins
            continue
        parts += [text[last : h.start], placeholder(h.kind)]
        last = h.end
        done.append(h)
    parts.append(text[last:])
    return "".join(parts), done


# --- the stage ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanSensitiveConfig:
    secrets: Action = doc(
        "What to do with a record holding a secret (API keys and tokens, private keys, JWTs, "
        "passwords in connection strings): `reject` (reason `secret_found`), `redact` (replace "
        "it with a placeholder such as `[OPENAI_KEY]`, counted), `warn` (keep it; warning "
        "`secret_detected`) or `off`.",
        "reject",
    )
    pii: Action = doc(
        "What to do with a record holding personal data (email addresses, phone numbers, "
        "Chinese resident ID numbers, credit-card numbers, public IP addresses): `reject` "
        "(reason `pii_found`), `redact` (placeholder such as `[EMAIL]`), `warn` (warning "
        "`pii_detected`) or `off`.",
        "warn",
    )
    actions: dict[str, Action] | None = doc(
        "Per-kind actions over `secrets`/`pii`, e.g. `{email: redact, ip_address: off}`. "
        "Kinds: " + ", ".join(f"`{n}`" for n in KIND_NAMES) + ".",
        None,
    )

    def __post_init__(self) -> None:
        for name in self.actions or {}:
            if name not in _BY_NAME:
                raise ConfigValueError(
                    f"actions.{name}",
                    f"unknown kind {name!r}; known kinds: {', '.join(KIND_NAMES)}",
                )

    def action(self, kind: str) -> Action:
        if self.actions and kind in self.actions:
            return self.actions[kind]
        return self.secrets if _BY_NAME[kind].group == SECRET else self.pii


_CODES = {
    (SECRET, "reject"): "secret_found",
    (PII, "reject"): "pii_found",
    (SECRET, "warn"): "secret_detected",
    (PII, "warn"): "pii_detected",
}
_ADVICE = {
    SECRET: "remove it from the source, or set scan_sensitive `secrets: redact`",
    PII: "remove it from the source, or set scan_sensitive `pii: redact`",
}


@register(
    "scan_sensitive", ScanSensitiveConfig, "Find secrets and personal data; reject, redact or warn."
)
def scan_sensitive(batch: pd.DataFrame, cfg: ScanSensitiveConfig) -> tuple[pd.DataFrame, Changes]:
    out = batch.copy()
    changes: Changes = Counter()
    kinds = tuple(k for k in KIND_NAMES if cfg.action(k) != "off")
    texts, rows, paths = record_texts(out)
    hits = find(texts, kinds)
    n = len(out)
    counts = {SECRET: np.zeros(n, dtype=np.int64), PII: np.zeros(n, dtype=np.int64)}
    # (group, action) -> row position -> ["kind at path", ...]
    found: dict[tuple[str, str], dict[int, list[str]]] = {}
    to_redact: dict[int, list[Hit]] = {}
    for h in hits:
        group = _BY_NAME[h.kind].group
        pos = rows[h.text]
        counts[group][pos] += 1
        act = cfg.action(h.kind)
        if act == "redact":
            to_redact.setdefault(h.text, []).append(h)
            continue
        notes = found.setdefault((group, act), {}).setdefault(pos, [])
        note = f"{h.kind} at {path_text(paths[h.text])} {_masked(h.value)}"
        if note not in notes:
            notes.append(note)
    out["m_secrets"] = counts[SECRET]
    out["m_pii"] = counts[PII]

    # secrets before PII: a record with both is rejected for its secret
    for (group, what), code in _CODES.items():
        by_row = found.get((group, what))
        if not by_row:
            continue
        mask = np.zeros(n, dtype=bool)
        mask[list(by_row)] = True
        messages = pd.Series(
            [
                "; ".join(by_row[p]) + f": {_ADVICE[group]}" if p in by_row else None
                for p in range(n)
            ],
            index=out.index,
            dtype=object,
        )
        if what == "reject":
            drop_where(out, pd.Series(mask, index=out.index), code, messages)
        else:
            warn(out, pd.Series(mask, index=out.index), code, messages)

    if to_redact:
        rejected = out["_reason"].notna().to_numpy()
        columns: dict[str, list[Any]] = {}
        for t, text_hits in to_redact.items():
            pos = rows[t]
            if rejected[pos]:
                continue  # rejected for another hit: the record is written as it came
            col, *rest = paths[t]
            assert isinstance(col, str)
            values = columns.setdefault(col, out[col].tolist())
            new, done = _redact(texts[t], text_hits)
            values[pos] = _replaced(values[pos], tuple(rest), new)
            for h in done:
                count_change(changes, f"redacted_{h.kind}", 1)
        for col, values in columns.items():
            out[col] = pd.Series(values, index=out.index, dtype=object)
    return out, changes
