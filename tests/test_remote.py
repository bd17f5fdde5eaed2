"""fsspec URLs as inputs: copied into the run's scratch folder, named by their URL, and one clear
line (exit 2) when fsspec or the protocol's package is missing."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config import parse_config
from pipeline.errors import PipelineError
from pipeline.read import expand_inputs, expand_paths
from pipeline.read.remote import is_url
from pipeline.runner import run
from tests.conftest import read_jsonl

fsspec = pytest.importorskip("fsspec", reason="fsspec (ftprep[remote]) reads URL inputs")

ROWS = [
    {"prompt": "What is 2 + 2?", "completion": "4"},
    {"prompt": "Capital of France?", "completion": "Paris"},
    {"prompt": "What is 2 + 2?", "completion": "4"},  # a duplicate: rejected by dedupe
    {"prompt": "Colour of the sky?", "completion": "Blue"},
    {"prompt": "", "completion": "empty prompt"},
]
STAGES = [{"name": "require_fields"}, {"name": "dedupe"}, {"name": "split", "validation": 0.25}]


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


@pytest.fixture
def memory() -> Iterator[tuple[Any, str]]:
    """fsspec's in-process memory filesystem and a fresh folder URL in it (removed after)."""
    fs = fsspec.filesystem("memory")
    root = f"/ftprep-test-{uuid.uuid4().hex[:8]}"
    fs.mkdir(root)
    yield fs, f"memory://{root}"
    fs.rm(root, recursive=True)


def put(fs: Any, url: str, data: bytes) -> str:
    with fs.open(url.removeprefix("memory://"), "wb") as f:
        f.write(data)
    return url


def run_into(tmp_path: Path, paths: list[str], name: str, workers: int = 1) -> dict[str, Any]:
    out = tmp_path / name
    cfg = {
        "input": {"paths": paths},
        "stages": STAGES,
        "output": {"dir": str(out)},
        "runner": {"workers": workers},
    }
    run(parse_config(cfg, "test.yaml"))
    return dict(orjson.loads((out / "report.json").read_bytes()))


def cli_run(url: str, out: Path) -> Any:
    return CliRunner().invoke(main, ["run", "openai_chat", "--input", url, "--out", str(out)])


def test_is_url() -> None:
    assert is_url("s3://bucket/data.jsonl") and is_url("memory://x") and is_url("gcs+x://a")
    assert not is_url("data/train.jsonl") and not is_url("C:\\data\\x.csv")
    assert not is_url("weird:name.jsonl") and not is_url("://nothing")


def test_a_memory_url_gives_the_outputs_of_the_same_local_file_on_two_workers(
    tmp_path: Path, memory: tuple[Any, str]
) -> None:
    # the copy sits in the run's scratch folder, so worker processes (which do not share the
    # parent's memory:// filesystem) read it like a local file
    fs, root = memory
    url = put(fs, f"{root}/train.jsonl", jsonl(ROWS))
    local = tmp_path / "train.jsonl"
    local.write_bytes(jsonl(ROWS))
    remote_report = run_into(tmp_path, [url], "remote", workers=2)
    local_report = run_into(tmp_path, [str(local)], "local", workers=2)
    for name in ("train.jsonl", "validation.jsonl"):
        assert (tmp_path / "remote" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    rejected = read_jsonl(tmp_path / "remote" / "rejected.jsonl")
    assert sorted(r["reason"] for r in rejected) == ["duplicate", "field_empty"]
    assert {r["source"] for r in rejected} == {url}
    assert [i["path"] for i in remote_report["inputs"]] == [url]
    assert remote_report["totals"] == local_report["totals"]
    # nothing but the outputs is left in the output folder: the copy went with the scratch
    assert not [p for p in (tmp_path / "remote").iterdir() if p.name.startswith(".")]


def test_a_url_glob_is_expanded_sorted_with_formats_by_extension(
    tmp_path: Path, memory: tuple[Any, str]
) -> None:
    fs, root = memory
    put(fs, f"{root}/part-b.jsonl", jsonl(ROWS[2:]))
    put(fs, f"{root}/part-a.csv", b"prompt,completion\nHello?,Hi.\nBye?,Bye.\n")
    put(fs, f"{root}/notes.txt", b"not an input")
    report = run_into(tmp_path, [f"{root}/part-*"], "out")
    assert [(i["path"], i["format"]) for i in report["inputs"]] == [
        (f"{root}/part-a.csv", "csv"),
        (f"{root}/part-b.jsonl", "jsonl"),
    ]
    assert report["totals"]["rows_in"] == 2 + 3
    # a folder URL reads its files of a known format, sorted
    files = expand_inputs([root], "auto", tmp_path / "copies")
    assert [source for _path, source in files] == [f"{root}/part-a.csv", f"{root}/part-b.jsonl"]
    assert all(path.is_file() and tmp_path / "copies" in path.parents for path, _ in files)


def test_a_file_url_is_read_in_place(tmp_path: Path) -> None:
    local = tmp_path / "data.jsonl"
    local.write_bytes(jsonl(ROWS))
    url = local.as_uri()
    assert url.startswith("file://")
    files = expand_inputs([url], "auto", tmp_path / "copies")
    assert files == [(local, url)]
    report = run_into(tmp_path, [url], "out", workers=2)
    assert [i["path"] for i in report["inputs"]] == [url]
    assert report["totals"]["rows_in"] == len(ROWS)


def test_a_problem_in_a_copied_file_names_the_url(tmp_path: Path, memory: tuple[Any, str]) -> None:
    fs, root = memory
    url = put(fs, f"{root}/broken.xlsx", b"PK\x03\x04 not a workbook")
    with pytest.raises(PipelineError) as info:
        run_into(tmp_path, [url], "out")
    message = str(info.value)
    assert message.startswith(f"{url}: ") and "scratch" not in message
    assert not (tmp_path / "out" / "train.jsonl").exists()


def test_a_missing_url_is_one_line_exit_2(tmp_path: Path, memory: tuple[Any, str]) -> None:
    _fs, root = memory
    for url, said in [
        (f"{root}/nope.jsonl", "no such file or folder"),
        (f"{root}/*.jsonl", "no file matches this pattern"),
    ]:
        result = cli_run(url, tmp_path / "o")
        assert result.exit_code == 2, result.output
        assert f"{url}: {said}" in result.output and "Traceback" not in result.output


def test_without_fsspec_a_url_is_one_line_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)  # `import fsspec` raises ImportError
    url = "s3://bucket/train.jsonl"
    result = cli_run(url, tmp_path / "o")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert url in lines[0] and "pip install 'ftprep[remote]'" in lines[0] and "s3fs" in lines[0]
    assert not (tmp_path / "o").exists()  # refused before the output folder was made


@pytest.mark.parametrize(
    ("url", "package"),
    [
        ("s3://bucket/train.jsonl", "s3fs"),
        ("gs://bucket/train.jsonl", "gcsfs"),
        ("az://container/train.jsonl", "adlfs"),
        ("https://example.org/train.jsonl", "aiohttp"),
    ],
)
def test_without_the_protocol_package_a_url_is_one_line_naming_it(
    tmp_path: Path, url: str, package: str
) -> None:
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed: the URL would be read")
    result = cli_run(url, tmp_path / "o")
    assert result.exit_code == 2
    protocol = url.split("://")[0]
    assert f"{url}: reading {protocol}:// URLs needs pip install {package}" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_an_unknown_scheme_says_so(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"nosuch://x/a\.jsonl: fsspec knows no nosuch://"):
        expand_inputs(["nosuch://x/a.jsonl"], "auto", tmp_path)


def test_commands_other_than_run_refuse_urls_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"URLs are read by `ftprep run` \(input.paths\) only"):
        expand_paths(["memory://x/a.jsonl"], "auto")
    result = CliRunner().invoke(
        main, ["check", "memory://x/a.jsonl", "--target", "openai:gpt-4o-mini-2024-07-18"]
    )
    assert result.exit_code == 2 and "URLs are read by `ftprep run`" in result.output
