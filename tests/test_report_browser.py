"""report.html in a real browser: a corpus run's page opens in headless Chromium with no console
error and no request beyond the file itself, and shows its charts and tables.

Driven by Selenium through Debian's chromedriver (packages `chromium` and `chromium-driver`;
.ci/run installs them). Selenium talks to chromedriver over HTTP on 127.0.0.1, so this test,
and only this one, lets the test process connect to loopback addresses (`loopback_only`); the
conftest guard still refuses every other address. Chromium itself is started with a proxy that
goes nowhere (127.0.0.1:9) and its background services off, so a request the page made would
fail, and the DevTools network log (Selenium's `performance` log) shows every request it tried.

A full-page screenshot is saved to tmp_path and copied to /tmp/report_screenshot.png.
"""

from __future__ import annotations

import _socket
import base64
import shutil
import socket
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from pipeline.report.html import render_html
from tests.conftest import corpus_file, run_config
from tests.test_report_pages import HOSTILE, expectation_results

SCREENSHOT_COPY = Path("/tmp/report_screenshot.png")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--proxy-server=127.0.0.1:9",
    "--window-size=1280,1000",
    "--hide-scrollbars",
)
LOOPBACK = ("127.0.0.1", "::1", "localhost")
LOCAL_SCHEMES = ("file:", "chrome:", "chrome-untrusted:", "data:", "about:")


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (
            f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None
        )
        if found:
            return found
    return None


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch, _block_network: None) -> None:
    """Let this test's process connect to 127.0.0.1 / ::1 (chromedriver), nothing else."""
    guarded = socket.socket.connect  # the conftest guard, which refuses every AF_INET address

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else None
        if self.family in (socket.AF_INET, socket.AF_INET6) and host in LOOPBACK:
            return _socket.socket.connect(self, address)
        return guarded(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


def _token_fields(out: Path) -> dict[str, Any]:
    """`tokens` and `messages` from the run's metrics.parquet, for a report that lacks them."""
    metrics = pd.read_parquet(out / "metrics.parquet")
    kept = metrics[metrics["split"].isin(["train", "validation"])]
    tokens = kept["tokens_total"].dropna().astype(int)
    top = int(tokens.max()) + 1
    width = max(1, -(-top // 20))
    edges = [i * width for i in range(21)]

    def stats(values: pd.Series, percentiles: bool) -> dict[str, Any] | None:
        if values.empty:
            return None
        out = {
            "count": len(values),
            "min": int(values.min()),
            "mean": round(float(values.mean()), 2),
        }
        if percentiles:
            p5, p50, p95 = np.percentile(values, [5, 50, 95])
            out |= {
                "p5": round(float(p5), 2),
                "p50": round(float(p50), 2),
                "p95": round(float(p95), 2),
            }
        return out | {"max": int(values.max())}

    splits = ("train", "validation")
    per_split = {
        s: kept.loc[kept["split"] == s, "tokens_total"].dropna().astype(int) for s in splits
    }
    histogram: dict[str, Any] = {"edges": edges}
    for s in splits:
        histogram[s] = [int(c) for c in np.histogram(per_split[s], bins=edges)[0]]
    messages = {s: kept.loc[kept["split"] == s, "messages"].dropna().astype(int) for s in splits}
    return {
        "tokens": {
            "encoding": "o200k_base",
            "limit_per_example": 65536,
            "splits": {s: stats(v, True) for s, v in per_split.items()},
            "histogram": histogram,
        },
        "messages": {"splits": {s: stats(v, False) for s, v in messages.items()}},
    }


def corpus_report(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """report.json of a real run over a corpus file, with the newer fields filled in when the
    runner does not write them yet, and one hostile rejected record."""
    path = corpus_file("messy/botbuilder_SampleForCQA.tsv")
    config = {
        "input": {"paths": [str(path)]},
        "target": "openai:gpt-4o-mini-2024-07-18",
        "stages": [
            {"name": "normalize_text"},
            {"name": "require_fields"},
            {"name": "convert", "to": "chat"},
            {"name": "validate_schema"},
            {"name": "count_tokens"},
            {"name": "dedupe"},
            {"name": "split"},
            {
                "name": "dataset_limits",
                "compare": ["openai:gpt-4o-2024-08-06", "openai:gpt-4.1-mini-2025-04-14"],
            },
        ],
    }
    report = run_config(tmp_path, config)
    out = tmp_path / "out"
    if not (report.get("tokens") or {}).get("splits"):
        report |= _token_fields(out)
    gate = report.setdefault("gate", {})
    gate.setdefault("exit_code", 1 if gate.get("failed") else 0)
    if not gate.get("expectations"):
        # the fixture suite, made to agree with this run: the dataset check passes, and only a
        # warning-level expectation fails (a gate warning, not a failure)
        suites = expectation_results()
        check = suites[0]["results"][1]
        check |= {
            "success": True,
            "observed": {"train": report["totals"]["train"], "min_examples": 10},
            "unexpected_count": 0,
            "unexpected_examples": [],
            "message": None,
        }
        suites[0]["success"] = True
        gate["expectations"] = suites
        warned = suites[0]["results"][2]
        gate.setdefault("warnings", []).append(
            {
                "code": "expectation_failed",
                "message": f"suite 'chat' (expectations/chat.json): {warned['type']}(column=tokens_user, "
                f"min_value=1, mostly=0.95) failed on the records table: {warned['message']}",
            }
        )
    reasons = report["rejected_by_reason"]
    assert reasons, "the corpus file has rows with an empty answer"
    first = next(iter(reasons.values()))
    first.setdefault("examples", []).append(
        {"source": str(path), "line": 999, "stage": "read", "message": HOSTILE, "record": HOSTILE}
    )
    return report, out


def test_report_page_loads_offline_in_chromium(tmp_path: Path, loopback_only: None) -> None:
    chromium = _find("chromium", "chromium-browser", "google-chrome")
    if chromium is None:
        pytest.skip(
            "chromium not found: `apt-get install chromium chromium-driver` to run this test"
        )
    chromedriver = _find("chromedriver")
    if chromedriver is None:
        pytest.fail(
            f"{chromium} is installed but chromedriver is not: `apt-get install chromium-driver`"
        )

    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    report, out = corpus_report(tmp_path)
    page = out / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    url = page.resolve().as_uri()

    options = Options()
    options.binary_location = chromium
    for arg in (*CHROMIUM_ARGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=chromedriver, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.get(url)
        assert driver.execute_script("return document.readyState") == "complete"
        assert driver.current_url == url

        # --- no network: every request of the page, from DevTools' network events ---
        sent = [
            message["params"]
            for entry in driver.get_log("performance")
            if (message := orjson.loads(entry["message"])["message"])["method"]
            == "Network.requestWillBeSent"
        ]
        loader = next(p["loaderId"] for p in sent if p["request"]["url"] == url)
        of_page = [
            p["request"]["url"]
            for p in sent
            if p["loaderId"] == loader or p.get("documentURL") == url
        ]
        assert of_page == [url], of_page
        # nor did anything else in the browser meanwhile (its start page loads chrome:// resources,
        # which come from the browser itself)
        remote = [
            p["request"]["url"] for p in sent if not p["request"]["url"].startswith(LOCAL_SCHEMES)
        ]
        assert not remote, remote
        resources = driver.execute_script("return performance.getEntriesByType('resource').length")
        assert resources == 0

        # --- no console errors (a CSP violation or a broken resource would be one) ---
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert not errors, errors
        assert driver.execute_script("return document.scripts.length") == 0

        # --- what the page shows ---
        verdict = driver.find_element(By.ID, "verdict").text
        assert ("Gate passed" if not report["gate"]["failed"] else "Gate failed") in verdict
        charts = driver.find_elements(By.CSS_SELECTOR, "figure svg")
        # rows per step, token histogram, cost per target; reasons when there are several
        assert len(charts) == 3 + (len(report["rejected_by_reason"]) > 1), len(charts)
        for svg in charts:
            assert svg.size["width"] > 300 and svg.size["height"] > 40, svg.size
        histogram = driver.find_element(By.CSS_SELECTOR, "#tokens figure svg")
        assert "limit 65,536 tokens" in histogram.text
        steps = driver.find_elements(By.CSS_SELECTOR, "#steps table tbody tr")
        assert len(steps) == len(report["stages"])
        assert len(driver.find_elements(By.TAG_NAME, "table")) >= 8
        rejected = driver.find_element(By.ID, "rejected").text
        assert "field_empty" in rejected and "<script>alert(1)</script>" in rejected
        cost = driver.find_element(By.ID, "limits").text
        assert "openai:gpt-4o-2024-08-06" in cost and "this run" in cost
        assert (
            "expect_column_pair_values_a_to_be_greater_than_b"
            in driver.find_element(By.ID, "expectations").text
        )

        # --- a full-page screenshot ---
        width, height = driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
        )
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
        )
        png = base64.b64decode(shot["data"])
        assert png.startswith(b"\x89PNG") and len(png) > 50_000
        (tmp_path / "report.png").write_bytes(png)
        SCREENSHOT_COPY.write_bytes(png)
    finally:
        driver.quit()
