"""Speed of the scan_sensitive stage on a generated chat batch (default 100,000 records).

Records are synthetic chat (system, user, assistant; English, Chinese and mixed words from
bench/make_chat_jsonl.py); one record in 50 carries a secret or a piece of personal data, so
the validators and the redaction path run too. The records are cut into batches of
`--batch` (the runner's default, 10,000) built before timing; each configuration is timed
`--repeat` times and the best CPU time (`time.process_time`) counts.

Usage: .venv/bin/python bench/scan_sensitive_bench.py [--records 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from make_chat_jsonl import text  # noqa: E402

from pipeline.records import make_batch  # noqa: E402
from pipeline.stages.scan_sensitive import (  # noqa: E402
    ScanSensitiveConfig,
    find,
    record_texts,
    scan_sensitive,
)

PLANTED = [
    "write to jane.roe@mail.net today",
    "my number is 13812345678",
    "card 4111 1111 1111 1111 exp 12/29",
    "key AKIAZ7Q2WL4MN5RST6UV in the config",
    "server at 93.184.216.34 port 443",
    "token ghp_" + "a1B2c3D4e5" * 3 + "F6g7H8",
]


def records(n: int, seed: int = 42) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        answer = text(rng, rng.randint(20, 120))
        if i % 50 == 0:
            answer += " " + PLANTED[(i // 50) % len(PLANTED)]
        out.append(
            {
                "_source": "bench.jsonl",
                "_line": i + 1,
                "_ord": i,
                "kind": "chat",
                "messages": [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": text(rng, rng.randint(5, 40))},
                    {"role": "assistant", "content": answer},
                ],
            }
        )
    return out


def best(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()  # type: ignore[operator]
        times.append(time.process_time() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows = records(args.records)
    batches = [make_batch(rows[i : i + args.batch]) for i in range(0, len(rows), args.batch)]
    texts = [t for b in batches for t in record_texts(b)[0]]
    chars = sum(len(t) for t in texts)
    n = args.records
    print(f"{n:,} records, {len(texts):,} texts, {chars / 1e6:.1f} M characters")

    collect = best(lambda: [record_texts(b) for b in batches], args.repeat)
    print(f"collect texts only     {collect:6.2f} s  {n / collect:>10,.0f} records/s")
    joined = [record_texts(b)[0] for b in batches]
    scan = best(lambda: [find(t) for t in joined], args.repeat)
    print(f"find (all kinds) only  {scan:6.2f} s  {n / scan:>10,.0f} records/s")
    for name, cfg in (
        ("stage, defaults", ScanSensitiveConfig()),
        ("stage, redact all", ScanSensitiveConfig(secrets="redact", pii="redact")),
    ):
        t = best(lambda cfg=cfg: [scan_sensitive(b, cfg) for b in batches], args.repeat)
        print(f"{name:22} {t:6.2f} s  {n / t:>10,.0f} records/s  {chars / t / 1e6:5.1f} M chars/s")


if __name__ == "__main__":
    main()
