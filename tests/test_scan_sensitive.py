"""scan_sensitive: crafted positives and negatives per kind, the actions, and precision on the corpus."""

from __future__ import annotations

import base64
import copy
import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from pipeline.config import parse_config
from pipeline.errors import PipelineError
from pipeline.records import make_batch
from pipeline.stages.scan_sensitive import KIND_NAMES, ScanSensitiveConfig, find, scan_sensitive
from tests.conftest import CORPUS, read_jsonl, run_config, write_jsonl


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()


OPENAI = "sk-proj-" + "Ab3dEf6hIj9lMn2pQr5t" + "T3BlbkFJ" + "uV8wXy1zAb4cDe7fGh0i"
ANTHROPIC = "sk-ant-api03-" + "aB3_dE6-" * 11 + "xYz1q" + "AA"
AWS_ID = "AKIAIOSFODNN7EXAMPLE"  # the AWS documentation's example key id
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" + "k1L2m3N4o5P6q7R8"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0" + "x" * 72
SLACK = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_HOOK = "https://hooks.slack.com/services/T0000AAAA/B0000BBBB/XXXXXXXXXXXXXXXXXXXXXXXX"
GOOGLE = "AIza" + "SyB" + "x7-Q_" * 6 + "ab"  # 35 characters after AIza
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM\n-----END RSA PRIVATE KEY-----"
JWT = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64({'sub': '1234567890'})}.SflKxwRJSMeKKF2QT4fw"
CN_ID = "11010519491231002X"  # the example of GB 11643-1999


def kinds_and_values(text: str) -> list[tuple[str, str]]:
    return [(h.kind, h.value) for h in find([text])]


POSITIVES: list[tuple[str, str, str]] = [
    ("openai_key", f"my key is {OPENAI} ok", OPENAI),
    ("openai_key", f"密钥{OPENAI}。", OPENAI),  # CJK around the key
    ("anthropic_key", f"ANTHROPIC_API_KEY={ANTHROPIC}", ANTHROPIC),
    ("aws_access_key", f"id: {AWS_ID}\n", AWS_ID),
    ("aws_secret_key", f'aws_secret_access_key = "{AWS_SECRET}"', AWS_SECRET),
    ("github_token", f"token {GITHUB}", GITHUB),
    ("github_token", f"({GITHUB_PAT})", GITHUB_PAT),
    ("slack_token", f"SLACK={SLACK}", SLACK),
    ("slack_token", f"post to {SLACK_HOOK}", SLACK_HOOK),
    ("google_api_key", f"key={GOOGLE}&q=1", GOOGLE),
    ("private_key", f"here:\n{PEM}\nthanks", PEM),
    # no END line (a cut text): the BEGIN line alone
    (
        "private_key",
        "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNz",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
    ),
    ("jwt", f"Authorization: Bearer {JWT}", JWT),
    ("connection_password", "postgres://admin:s3cr3tPass@db.internal:5432/app", "s3cr3tPass"),
    ("connection_password", "Server=tcp:db;User ID=sa;Password=Hunter2!;Encrypt=true", "Hunter2!"),
    ("email", "write to jane.roe@mail.net today", "jane.roe@mail.net"),
    ("email", "邮箱是jane@corp.cn。", "jane@corp.cn"),
    ("email", "<a href='mailto:jane@mail.net'>", "jane@mail.net"),
    ("phone", "call +1 415 555 2671 now", "+1 415 555 2671"),
    ("phone", "手机13812345678联系", "13812345678"),
    ("phone", "手机 +86 138 1234 5678", "+86 138 1234 5678"),
    ("phone", "office (202) 555-0164.", "(202) 555-0164"),
    ("phone", "my number is 555-123-4567.", "555-123-4567"),
    ("cn_id", f"身份证号{CN_ID}，", CN_ID),
    ("cn_id", "id 11010519491231002x end", "11010519491231002x"),
    ("credit_card", "card 4111 1111 1111 1111 exp", "4111 1111 1111 1111"),
    ("credit_card", "MC 5500-0000-0000-0004.", "5500-0000-0000-0004"),
    ("credit_card", "amex 378282246310005", "378282246310005"),
    ("credit_card", "amex 3782 822463 10005", "3782 822463 10005"),
    ("ip_address", "server at 93.184.216.34 port 443", "93.184.216.34"),
    ("ip_address", "ping 8.8.8.8.", "8.8.8.8"),
]


@pytest.mark.parametrize(
    ("kind", "text", "value"), POSITIVES, ids=[f"{p[0]}-{i}" for i, p in enumerate(POSITIVES)]
)
def test_each_kind_finds_its_crafted_positive(kind: str, text: str, value: str) -> None:
    assert kinds_and_values(text) == [(kind, value)]


NEGATIVES: list[tuple[str, str]] = [
    ("openai_key", "task-" + OPENAI[3:]),  # the key inside a longer word
    ("openai_key", "sk-" + "a" * 20 + "T3BlbkFX" + "b" * 20),  # no T3BlbkFJ marker
    ("anthropic_key", ANTHROPIC[:-2] + "AB"),
    ("aws_access_key", "X" + AWS_ID),  # inside a longer word
    ("aws_access_key", AWS_ID + "9"),
    ("aws_access_key", "AKIA" + "0" * 16),  # 0 is not base32
    ("aws_secret_key", f'aws_region = "{AWS_SECRET}"'),  # no key word between
    ("aws_secret_key", f'aws_secret_key = "{AWS_SECRET}X"'),  # 41 characters
    ("github_token", "xghp_" + GITHUB[4:]),
    ("github_token", GITHUB[:-1]),  # 35 characters
    ("slack_token", "xoxq-123456789012-abc and xoxb-abc"),
    ("slack_token", "ab" + SLACK),
    ("google_api_key", GOOGLE[:-1]),
    ("google_api_key", "MAIza" + GOOGLE[4:]),
    ("private_key", "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----"),
    ("jwt", "eyJub3QganNvbiBhdCBhbGw.eyJub3QganNvbiBlaXRoZXI.abc"),  # parts are not JSON
    ("jwt", "eyJhbGciOiJIUzI1NiJ9"),  # a header alone
    ("connection_password", "postgres://user:<password>@localhost/db"),
    ("connection_password", "mysql://root:password@localhost"),
    ("connection_password", "Server=db;User ID=sa;Password=****;"),
    ("connection_password", "see https://example.com/a:b and me@x"),
    ("email", "user@localhost and a@b"),
    ("email", "scale icon@2x"),
    ("email", "https://bob:pa55@mail.example.org/"),  # the userinfo of a URL
    ("connection_password", "mailto:jane@mail.net"),
    ("phone", "on 2023-10-12 at 10:30"),
    ("phone", "12812345678 and 138123456789"),  # 12x is no mobile segment; 12 digits
    ("phone", "ISBN 978-0-7475-3269-9"),
    ("cn_id", CN_ID[:-1] + "1"),  # wrong check digit
    ("cn_id", "110105194913310025"),  # month 13
    ("cn_id", "A" + CN_ID),
    ("credit_card", "4111 1111 1111 1112"),  # Luhn fails
    ("credit_card", "5309 7677 8244 1346"),  # Luhn fails
    ("credit_card", "1234567812345670"),  # Luhn passes, no card starts with 1
    ("credit_card", "4111-1111 1111-1111"),  # mixed separators
    ("credit_card", "v4111111111111111"),
    ("ip_address", "private 192.168.1.1, 10.0.0.8, 127.0.0.1; docs 203.0.113.5"),
    ("ip_address", "version 1.2.3.4.5 and v8.8.8.8 and 256.1.1.1"),
    ("ip_address", "结果1.3.4.5.阳性"),  # a dotted list, not an address
]


@pytest.mark.parametrize(
    ("kind", "text"), NEGATIVES, ids=[f"{n[0]}-{i}" for i, n in enumerate(NEGATIVES)]
)
def test_each_kind_ignores_its_crafted_negative(kind: str, text: str) -> None:
    assert [k for k, _ in kinds_and_values(text) if k == kind] == []


def test_every_kind_has_a_positive_and_a_negative() -> None:
    assert {p[0] for p in POSITIVES} == set(KIND_NAMES)
    assert {n[0] for n in NEGATIVES} == set(KIND_NAMES)


def _batch(rows: list[dict[str, Any]]) -> pd.DataFrame:
    for i, r in enumerate(rows):
        r.update(_source="s.jsonl", _line=i + 1, _ord=i, _record=dict(r))
    return make_batch(rows)


def _chat(*contents: Any, **extra: Any) -> dict[str, Any]:
    roles = ["user", "assistant"]
    msgs = [{"role": roles[i % 2], "content": c} for i, c in enumerate(contents)]
    return {"kind": "chat", "messages": msgs, **extra}


def test_defaults_reject_secrets_and_warn_on_pii() -> None:
    batch = _batch(
        [
            _chat("my key", f"use {OPENAI}"),
            _chat("mail me at jane.roe@mail.net", "ok"),
            {"kind": "prompt_completion", "prompt": "hi", "completion": "there"},
        ]
    )
    before = copy.deepcopy(batch)
    out, changes = scan_sensitive(batch, ScanSensitiveConfig())
    assert out["_reason"].tolist() == ["secret_found", None, None]
    message = out["_message"].iloc[0]
    assert "openai_key at messages[1].content" in message and OPENAI not in message
    assert out["_warnings"].iloc[1][0][0] == "pii_detected"
    assert "email at messages[0].content" in out["_warnings"].iloc[1][0][1]
    assert out["messages"].iloc[1] == before["messages"].iloc[1]  # warn changes nothing
    assert out["m_secrets"].tolist() == [1, 0, 0] and out["m_pii"].tolist() == [0, 1, 0]
    assert changes == Counter()
    pd.testing.assert_frame_equal(batch, before)


def test_redact_puts_typed_placeholders_everywhere_and_counts_them() -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {
            "name": "send",
            "arguments": orjson.dumps({"to": "a.b@mail.org", "key": GITHUB}).decode(),
        },
    }
    rec = _chat(
        [{"type": "text", "text": f"ip 93.184.216.34, card 4111 1111 1111 1111, {AWS_ID}"}],
        None,
        tools=[
            {"type": "function", "function": {"name": "send", "description": "mail ops@corp.io"}}
        ],
    )
    rec["messages"][1] = {"role": "assistant", "content": None, "tool_calls": [call]}
    pc = {"kind": "prompt_completion", "prompt": "db?", "completion": "postgres://u:Pa55word@h/db"}
    batch = _batch([rec, pc])
    before = copy.deepcopy(batch)
    out, changes = scan_sensitive(batch, ScanSensitiveConfig(secrets="redact", pii="redact"))
    assert out["_reason"].isna().all()
    msgs = out["messages"].iloc[0]
    assert msgs[0]["content"][0]["text"] == "ip [IP_ADDRESS], card [CREDIT_CARD], [AWS_ACCESS_KEY]"
    args = orjson.loads(msgs[1]["tool_calls"][0]["function"]["arguments"])
    assert args == {"to": "[EMAIL]", "key": "[GITHUB_TOKEN]"}
    assert out["tools"].iloc[0][0]["function"]["description"] == "mail [EMAIL]"
    assert out["completion"].iloc[1] == "postgres://u:[PASSWORD]@h/db"
    assert changes == Counter(
        redacted_ip_address=1,
        redacted_credit_card=1,
        redacted_aws_access_key=1,
        redacted_email=2,
        redacted_github_token=1,
        redacted_connection_password=1,
    )
    pd.testing.assert_frame_equal(batch, before)  # the input is not mutated
    assert batch["messages"].iloc[0] == before["messages"].iloc[0]


def test_preference_records_are_scanned_in_every_part() -> None:
    rec = {
        "kind": "preference",
        "input": {"messages": [{"role": "user", "content": "who?"}]},
        "preferred_output": [{"role": "assistant", "content": "mail x.y@mail.com"}],
        "non_preferred_output": [{"role": "assistant", "content": f"{CN_ID}"}],
    }
    out, changes = scan_sensitive(_batch([rec]), ScanSensitiveConfig(pii="redact"))
    assert out["preferred_output"].iloc[0][0]["content"] == "mail [EMAIL]"
    assert out["non_preferred_output"].iloc[0][0]["content"] == "[CN_ID]"
    assert changes == Counter(redacted_email=1, redacted_cn_id=1)


def test_per_kind_actions_override_the_groups() -> None:
    batch = _batch(
        [
            _chat("a@mail.com and 93.184.216.34", "ok"),
            _chat(f"{GOOGLE}", "ok"),
            _chat(f"{JWT}", "ok"),
        ]
    )
    cfg = ScanSensitiveConfig(
        pii="reject", actions={"ip_address": "off", "google_api_key": "warn", "email": "redact"}
    )
    out, changes = scan_sensitive(batch, cfg)
    assert out["_reason"].tolist() == [None, None, "secret_found"]
    assert out["messages"].iloc[0][0]["content"] == "[EMAIL] and 93.184.216.34"
    assert out["_warnings"].iloc[1][0][0] == "secret_detected"
    assert out["m_pii"].tolist() == [1, 0, 0]  # an `off` kind is not looked for
    assert changes == Counter(redacted_email=1)


def test_pii_reject_uses_its_own_code_and_a_rejected_record_is_not_redacted() -> None:
    batch = _batch([_chat("call 13812345678", "ok"), _chat(f"{SLACK} and z@mail.com", "ok")])
    out, changes = scan_sensitive(batch, ScanSensitiveConfig(pii="reject", secrets="reject"))
    assert out["_reason"].tolist() == ["pii_found", "secret_found"]
    assert "phone at messages[0].content" in out["_message"].iloc[0]
    out, changes = scan_sensitive(batch, ScanSensitiveConfig(pii="redact"))
    assert out["_reason"].tolist() == [None, "secret_found"]
    assert out["messages"].iloc[1] == batch["messages"].iloc[1]  # written as it came
    assert changes == Counter(redacted_phone=1)


def test_an_unknown_kind_in_the_config_names_the_key_and_the_kinds() -> None:
    with pytest.raises(PipelineError, match=r"actions\.emails.*unknown kind 'emails'.*email"):
        parse_config({"stages": [{"name": "scan_sensitive", "actions": {"emails": "redact"}}]})


def test_a_run_counts_redactions_and_rejects_in_the_report(tmp_path: Path) -> None:
    src = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": "hi a@mail.com"},
                    {"role": "assistant", "content": "ok"},
                ]
            },
            {
                "messages": [
                    {"role": "user", "content": f"k {OPENAI}"},
                    {"role": "assistant", "content": "ok"},
                ]
            },
        ],
    )
    stages = [{"name": "scan_sensitive", "pii": "redact"}]
    report = run_config(tmp_path, {"input": {"paths": [str(src)]}, "stages": stages})
    assert report["totals"]["rows_in"] == 2 and report["identity"]["holds"]
    assert {k: v["count"] for k, v in report["rejected_by_reason"].items()} == {"secret_found": 1}
    step = next(s for s in report["stages"] if s["name"] == "scan_sensitive")
    assert step["changes"] == {"redacted_email": 1}
    train = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert train[0]["messages"][0]["content"] == "hi [EMAIL]"
    rejected = read_jsonl(tmp_path / "out" / "rejected.jsonl")
    assert rejected[0]["reason"] == "secret_found" and OPENAI not in rejected[0]["message"]


# --- precision on the corpus ---------------------------------------------------------------
#
# Every corpus file, read through ftprep's own readers; files without a recognised shape get
# the mapping a user would give. Each hit was inspected by hand (docs/decisions.md, "Secrets
# and personal data"): the values judged true positives are listed by sha256 prefix (the
# corpus text is not copied here). A hit whose value is not listed is a false positive.

CORPUS_COLUMNS: dict[str, dict[str, str]] = {
    "english/stanford_alpaca_seed_tasks.jsonl": {
        "prompt": "instruction",
        "completion": "instances",
    },
    "messy/chinese_medical_dialogue_IM_sample_gb18030.csv": {
        "prompt": "ask",
        "completion": "answer",
    },
    "messy/aoai_classification_bulk_test.tsv": {
        "prompt": "user_prompt",
        "completion": "classification",
    },
    "messy/aoai_synthetic_data_topic_classifier.csv": {
        "prompt": "customer_question",
        "completion": "agent_reply",
    },
    "messy/awesome_chatgpt_prompts_2025-12-16.csv": {"prompt": "act", "completion": "prompt"},
    "messy/songys_kor_Pair_test_bom.csv": {"prompt": "question1", "completion": "question2"},
}

TRUE_POSITIVES: dict[str, set[str]] = {
    "email": {
        "8d492a1cc67d4d01",
        "b6901f375e99b751",
        "55bf4952e2308638",
        "0619ab4494d14732",
        "f632a98a3d7ca8bd",
        "503f518411a8ea94",
        "86e0b9e56c17cc4d",
        "836f82db99121b34",
        "8e621e3d0368631d",
        "fab1e2e699b3b927",
        "833295521c143ed4",
        "55e79200c1635b37",
        "fc9f90b4c1fac66b",
        "5f9174c852a1f980",
    },
    "phone": {
        "f032ddf6a20ce9b2",
        "92ce3ded4c676c14",
        "ecb6332622271bcc",
        "7ee8fbde138e2e5b",
        "a28583fa6bb7d643",
        "29ec0a06044bedff",
        "d36e83082288d9f2",
    },
}

# Hits per (file, kind) as documented; every other file and kind has none.
DOCUMENTED_HITS: dict[tuple[str, str], int] = {
    ("chinese/alpaca_data_0-3252_zh.json", "email"): 1,
    ("chinese/alpaca_data_0-3252_zh.json", "phone"): 4,
    ("chinese/llamafactory_glaive_toolcall_zh_demo.json", "email"): 17,
    ("chinese/llamafactory_glaive_toolcall_zh_demo.json", "phone"): 1,
    ("english/alpaca_data_0-3252_en.json", "email"): 1,
    ("english/alpaca_data_0-3252_en.json", "phone"): 4,
    ("english/stanford_alpaca_seed_tasks.jsonl", "email"): 3,
    ("english/stanford_alpaca_seed_tasks.jsonl", "phone"): 2,
    ("messy/botbuilder_smartLightFAQ_bom.tsv", "email"): 5,
    ("messy/botbuilder_smartLightFAQ_bom.tsv", "phone"): 5,
    ("sharegpt/llamafactory_glaive_toolcall_en_demo.json", "email"): 25,
    ("sharegpt/llamafactory_v1_sft_demo_content_parts.jsonl", "email"): 5,
    ("sharegpt/llamafactory_v1_sft_demo_content_parts.jsonl", "phone"): 1,
}
DOCUMENTED_FALSE_POSITIVES: dict[str, int] = dict.fromkeys(KIND_NAMES, 0)
CORPUS_FILES = 25


def corpus_hits(path: Path, columns: dict[str, str] | None) -> list[tuple[str, str]]:
    """(kind, value) of every hit in a corpus file, read as `ftprep run` reads it."""
    from pipeline.read.plan import UnitReader, iter_units, plan_inputs
    from pipeline.stages.scan_sensitive import record_texts

    inp: dict[str, Any] = {"paths": [str(path)]}
    if columns:
        inp["columns"] = columns
    cfg = parse_config({"input": inp})
    out = []
    for unit in iter_units(plan_inputs(cfg), cfg):
        for batch in UnitReader(unit, cfg.runner.batch_size):
            texts = record_texts(batch)[0]
            out += [(h.kind, h.value) for h in find(texts)]
    return out


def test_precision_on_every_corpus_file_is_as_documented() -> None:
    if not CORPUS.exists():
        pytest.skip(
            f"corpus folder {CORPUS} is absent (the ../shared/corpus folder is not beside the repo)"
        )
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "SOURCES.md")
    assert len(files) == CORPUS_FILES, (
        "a corpus file was added or removed: measure it and document it"
    )
    hits: Counter[tuple[str, str]] = Counter()
    false_positives: Counter[str] = Counter()
    for path in files:
        rel = path.relative_to(CORPUS).as_posix()
        for kind, value in corpus_hits(path, CORPUS_COLUMNS.get(rel)):
            hits[(rel, kind)] += 1
            if hashlib.sha256(value.encode()).hexdigest()[:16] not in TRUE_POSITIVES.get(
                kind, set()
            ):
                false_positives[kind] += 1
    for kind in KIND_NAMES:
        assert false_positives[kind] <= DOCUMENTED_FALSE_POSITIVES[kind], kind
    assert dict(hits) == DOCUMENTED_HITS
