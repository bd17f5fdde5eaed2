"""Write the sample input files in this folder (run: ``python sample_data/make_samples.py``).

All content is made up here: a small FAQ about a fictional product, the Kettlebot K2 smart
kettle. Every file has the same traps, so the demo and the tests can check how each reader and
stage handles them:

- two exact duplicate rows ("How do I turn on the Kettlebot?", "What is the warranty?");
- one row with an empty answer ("Can I schedule boiling?");
- one answer with an embedded newline ("How do I descale the kettle?").

Per file:

- ``faq.csv``: UTF-8, LF, header ``question,answer``; 15 rows.
- ``faq_gbk.csv``: the FAQ in Chinese, GBK-encoded, header ``question,answer``; 15 rows.
- ``faq_bom.tsv``: UTF-8 with a BOM, CRLF line ends (also inside the quoted multi-line field),
  header ``Question<TAB>Answer``; 15 rows.
- ``faq.xlsx``: sheet ``FAQ``, header ``question,answer``; 15 rows plus one empty row (sheet row
  8); the answer to "How many cups does it hold?" is the integer cell 7 (sheet row 7).
- ``alpaca.json``: JSON array of ``{instruction, input, output}``; 15 records, 5 with a
  non-empty ``input``.
- ``chat.jsonl``: OpenAI chat ``{"messages": [system, user, assistant]}``; 15 records on 17
  lines: line 8 is blank, line 9 is invalid JSON, and the last line has no trailing newline.
- ``faq.parquet``: columns ``prompt``, ``completion``; 15 rows.

The output is deterministic (fixed timestamps inside the XLSX zip), so re-running the script
leaves the committed files unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from openpyxl import Workbook

HERE = Path(__file__).resolve().parent
SYSTEM = "You are the support assistant for the Kettlebot K2 smart kettle. Answer briefly."

FAQ: list[tuple[str, str]] = [
    (
        "How do I turn on the Kettlebot?",
        "Press and hold the power ring for two seconds until it glows blue.",
    ),
    (
        "What temperatures can I set?",
        "Any temperature from 40 °C to 100 °C, in steps of 5 degrees.",
    ),
    (
        "Can I use the Kettlebot without Wi-Fi?",
        "Yes. All buttons work offline; only the app needs Wi-Fi.",
    ),
    (
        "How do I descale the kettle?",
        "Fill it with equal parts water and white vinegar, boil once, then rinse twice.\n"
        "Repeat every month in hard-water areas.",
    ),
    (
        "Why is the ring blinking red?",
        "The kettle is empty or not seated on its base. Add water and reseat it.",
    ),
    ("How many cups does it hold?", "7"),
    (
        "Is the Kettlebot dishwasher safe?",
        "No. Wipe the outside with a damp cloth and never put the base in water.",
    ),
    (
        "How do I reset the Kettlebot?",
        "Hold the power ring and the minus button together for ten seconds.",
    ),
    ("Does the app work on Android?", "Yes, on Android 10 or later, and on iOS 15 or later."),
    ("What is the warranty?", "Two years from the date of purchase, with the receipt."),
    ("Can I schedule boiling?", ""),
    (
        "How do I turn on the Kettlebot?",
        "Press and hold the power ring for two seconds until it glows blue.",
    ),
    ("Where is the serial number?", 'On the bottom of the base, next to the "K2" logo.'),
    ("What is the warranty?", "Two years from the date of purchase, with the receipt."),
    (
        "Does it keep water warm?",
        'Yes: "keep warm" holds the set temperature for up to 30 minutes.',
    ),
]

FAQ_ZH: list[tuple[str, str]] = [
    ("如何打开水壶机器人？", "按住电源环两秒钟，直到它亮起蓝光。"),
    ("可以设置哪些温度？", "从四十度到一百度的任意温度，每次调节五度。"),
    ("没有无线网络可以使用吗？", "可以。所有按键都能离线使用，只有手机应用需要无线网络。"),
    (
        "如何除水垢？",
        "加入等量的清水和白醋，煮沸一次，然后冲洗两次。\n水质较硬的地区请每月重复一次。",
    ),
    ("为什么电源环闪红灯？", "水壶里没有水，或者没有放稳在底座上。请加水并重新放好。"),
    ("水壶能装多少水？", "一点七升，大约七杯。"),
    ("水壶可以放进洗碗机吗？", "不可以。请用湿布擦拭外壳，不要把底座浸入水中。"),
    ("如何重置水壶？", "同时按住电源环和减号键十秒钟。"),
    ("手机应用支持安卓吗？", "支持安卓十及以上版本，也支持苹果系统十五及以上版本。"),
    ("保修期是多长时间？", "自购买之日起两年，请保留购物小票。"),
    ("可以预约烧水吗？", ""),
    ("如何打开水壶机器人？", "按住电源环两秒钟，直到它亮起蓝光。"),
    ("序列号在哪里？", "在底座的底部，标志旁边。"),
    ("保修期是多长时间？", "自购买之日起两年，请保留购物小票。"),
    ("水烧开后可以保温吗？", "可以，保温功能会把水温保持在设定温度，最长三十分钟。"),
]

_FIXED_ZIP_TIME = (2024, 1, 1, 0, 0, 0)
_FIXED_ISO = "2024-01-01T00:00:00Z"


def _csv_text(
    rows: list[tuple[str, str]], header: tuple[str, str], delimiter: str, eol: str
) -> str:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=eol)
    writer.writerow(header)
    for question, answer in rows:
        writer.writerow((question, answer.replace("\n", eol)))
    return buf.getvalue()


def write_faq_csv(out: Path) -> None:
    (out / "faq.csv").write_bytes(_csv_text(FAQ, ("question", "answer"), ",", "\n").encode("utf-8"))


def write_faq_gbk_csv(out: Path) -> None:
    text = _csv_text(FAQ_ZH, ("question", "answer"), ",", "\n")
    (out / "faq_gbk.csv").write_bytes(text.encode("gbk"))


def write_faq_bom_tsv(out: Path) -> None:
    text = _csv_text(FAQ, ("Question", "Answer"), "\t", "\r\n")
    (out / "faq_bom.tsv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))


def _deterministic_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed entry times and fixed document timestamps."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(
                    rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)",
                    rb"\g<1>" + _FIXED_ISO.encode() + rb"\g<2>",
                    content,
                )
            entry = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, content)
    return buf.getvalue()


def write_faq_xlsx(out: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "FAQ"
    ws.append(["question", "answer"])
    for i, (question, answer) in enumerate(FAQ):
        if i == 6:
            ws.append([])  # an empty row: sheet row 8
        value: str | int = int(answer) if answer.isdigit() else answer
        ws.append([question, value if value != "" else None])
    buf = io.BytesIO()
    wb.save(buf)
    (out / "faq.xlsx").write_bytes(_deterministic_zip(buf.getvalue()))


_ALPACA_WITH_INPUT = {1, 4, 7, 12, 14}


def write_alpaca_json(out: Path) -> None:
    records = []
    for i, (question, answer) in enumerate(FAQ):
        # Five records (none of the duplicated ones) put the question into `input`.
        if i in _ALPACA_WITH_INPUT:
            records.append(
                {
                    "instruction": "Answer the customer's question about the Kettlebot K2.",
                    "input": question,
                    "output": answer,
                }
            )
        else:
            records.append({"instruction": question, "input": "", "output": answer})
    text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    (out / "alpaca.json").write_bytes(text.encode("utf-8"))


def write_chat_jsonl(out: Path) -> None:
    lines = []
    for question, answer in FAQ:
        record = {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
        }
        lines.append(json.dumps(record, ensure_ascii=False))
    lines.insert(7, "")  # line 8: blank
    lines.insert(8, '{"messages": [{"role": "user", "content": "Is it loud?"}')  # line 9: invalid
    (out / "chat.jsonl").write_bytes("\n".join(lines).encode("utf-8"))  # no final newline


def write_faq_parquet(out: Path) -> None:
    table = pa.table(
        {
            "prompt": pa.array([q for q, _ in FAQ], pa.string()),
            "completion": pa.array([a for _, a in FAQ], pa.string()),
        }
    )
    pq.write_table(table, out / "faq.parquet", compression="snappy")


def main(out: Path = HERE) -> None:
    """Write every sample file into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_faq_csv(out)
    write_faq_gbk_csv(out)
    write_faq_bom_tsv(out)
    write_faq_xlsx(out)
    write_alpaca_json(out)
    write_chat_jsonl(out)
    write_faq_parquet(out)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write the sample input files of ftprep's demo.")
    parser.add_argument(
        "out", nargs="?", type=Path, default=HERE, help=f"folder to write into (default: {HERE})"
    )
    main(parser.parse_args().out)
