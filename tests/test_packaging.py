"""Packaging: the wheel carries every file ftprep reads at run time, and an installed ftprep works
from any folder (docs/decisions.md, "Packaging").

`python -m build` makes the sdist and then the wheel from the sdist, so a file the sdist forgot
is missing from the wheel too. The wheel is installed with `pip install --no-deps` into a fresh
virtualenv whose only other path is this environment's site-packages (a `.pth` line): the
dependencies are reused, nothing is downloaded, and `pipeline` is imported from the wheel,
never from this checkout (the checkout's editable-install hook is not processed there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import pipeline
from pipeline import shipped

ROOT = Path(__file__).resolve().parents[1]
# no project paths: the installed wheel, not a checkout on PYTHONPATH, must answer
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FTPREP_TARGETS_DIR")}

# repository folder -> where its files are in the wheel (pyproject.toml, [tool.setuptools])
SHIPPED_FOLDERS = {
    "pipeline": "pipeline",
    "configs": "pipeline/configs",
    "expectations": "pipeline/expectations",
}


def repo_payload(root: Path = ROOT) -> dict[str, bytes]:
    """What the wheel must hold: every file of the shipped folders (bytecode aside), by its
    path inside the wheel."""
    payload = {}
    for folder, inside in SHIPPED_FOLDERS.items():
        for path in sorted((root / folder).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            payload[f"{inside}/{path.relative_to(root / folder).as_posix()}"] = path.read_bytes()
    return payload


def wheel_differences(wheel: Path, payload: dict[str, bytes]) -> list[str]:
    """How the package files of `wheel` differ from `payload`: missing, changed or extra."""
    with zipfile.ZipFile(wheel) as zf:
        held = {
            name: zf.read(name)
            for name in zf.namelist()
            if name.startswith("pipeline/") and not name.endswith("/")
        }
    problems = [f"missing from the wheel: {n}" for n in sorted(payload.keys() - held.keys())]
    problems += [f"not in the repository: {n}" for n in sorted(held.keys() - payload.keys())]
    problems += [
        f"differs from the repository: {n}"
        for n in sorted(payload.keys() & held.keys())
        if payload[n] != held[n]
    ]
    return problems


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An sdist and a wheel built from this checkout (the wheel from the sdist), offline."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (found,) = dist.glob("ftprep-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A virtualenv with the wheel installed (not editable); its `bin` folder."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        env=CLEAN_ENV,
        check=True,
    ).stdout.strip()
    # the dependencies of this environment, reused; appended after the venv's own packages
    (Path(purelib) / "_ftprep_test_deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", "--force-reinstall", str(wheel)],
        capture_output=True,
        text=True,
        env=CLEAN_ENV,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    yield env_dir / "bin"


def ftprep(
    bin_dir: Path, cwd: Path, *args: str, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """The installed `ftprep` console script, from `cwd`, with no project paths in the
    environment (but `extra_env`)."""
    env = CLEAN_ENV | extra_env
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(bin_dir / "ftprep"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# --- the wheel's contents ---------------------------------------------------------------------


def test_the_wheel_holds_every_shipped_file_of_the_repository_unchanged(wheel: Path) -> None:
    payload = repo_payload()
    assert "pipeline/configs/targets/openai_gpt-4o-mini-2024-07-18.yaml" in payload
    assert "pipeline/expectations/chat.json" in payload
    assert "pipeline/report/templates/report.html.j2" in payload
    assert wheel_differences(wheel, payload) == []


def test_a_missing_or_changed_data_file_is_found(wheel: Path, tmp_path: Path) -> None:
    """The check above can fail: a wheel with one file dropped and one changed."""
    broken = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            if item.filename == "pipeline/expectations/chat.json":
                continue
            data = src.read(item)
            if item.filename == "pipeline/configs/openai_chat.yaml":
                data += b"\n# changed\n"
            dst.writestr(item, data)
    assert wheel_differences(broken, repo_payload()) == [
        "missing from the wheel: pipeline/expectations/chat.json",
        "differs from the repository: pipeline/configs/openai_chat.yaml",
    ]


def test_the_sdist_carries_the_data_folders_where_people_read_them(dist: Path) -> None:
    import tarfile

    (sdist,) = dist.glob("ftprep-*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    expected = {k for k in repo_payload() if not k.startswith("pipeline/")}
    expected |= {
        f"{folder}/{p.relative_to(ROOT / folder).as_posix()}"
        for folder in ("configs", "expectations")
        for p in (ROOT / folder).rglob("*")
        if p.is_file()
    }
    assert expected <= names, sorted(expected - names)
    assert "pyproject.toml" in names


def test_the_wheel_version_is_the_package_version(wheel: Path) -> None:
    assert wheel.name.startswith(f"ftprep-{pipeline.__version__}-")


# --- the installed wheel, from a folder that is not the repository ---------------------------


def test_installed_ftprep_imports_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(installed / "python"), "-c", "import pipeline; print(pipeline.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=CLEAN_ENV,
        check=True,
    )
    location = Path(proc.stdout.strip())
    assert installed.parent in location.parents, location
    assert ROOT not in location.parents


def test_installed_version_and_targets(installed: Path, tmp_path: Path) -> None:
    version = ftprep(installed, tmp_path, "--version")
    assert version.returncode == 0, version.stderr
    assert pipeline.__version__ in version.stdout

    targets = ftprep(installed, tmp_path, "targets")
    assert targets.returncode == 0, targets.stderr
    listed = [line.split()[0] for line in targets.stdout.splitlines()[1:] if line.strip()]
    assert len(listed) == len(shipped.names("targets")) == 39
    assert "openai:gpt-4o-mini-2024-07-18" in listed

    one = ftprep(installed, tmp_path, "targets", "vertex:gemini")
    assert one.returncode == 0, one.stderr
    assert "name: vertex:gemini" in one.stdout


def test_installed_check_of_a_generated_file(installed: Path, tmp_path: Path) -> None:
    good = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    bad = {"messages": [{"role": "user", "content": "no answer"}]}
    (tmp_path / "toy.jsonl").write_text(
        "\n".join(json.dumps(r) for r in (good, bad, good)) + "\n", encoding="utf-8"
    )
    proc = ftprep(installed, tmp_path, "check", "toy.jsonl", "--target", "openai:gpt-4o-mini-2024-07-18")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "toy.jsonl:2: error" in proc.stdout
    assert "toy.jsonl:1:" not in proc.stdout

    chats = [
        {"messages": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": f"A{i}"}]}
        for i in range(10)  # the fewest examples the target accepts
    ]
    (tmp_path / "clean.jsonl").write_text(
        "".join(json.dumps(c) + "\n" for c in chats), encoding="utf-8"
    )
    clean = ftprep(installed, tmp_path, "check", "clean.jsonl", "--target", "openai:gpt-4o-mini-2024-07-18")
    assert clean.returncode == 0, clean.stdout + clean.stderr


def _questions(path: Path, n: int) -> None:
    rows = ["question,answer"] + [f"What is {i} plus {i}?,It is {2 * i}." for i in range(n)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_installed_run_of_a_shipped_config_by_name(installed: Path, tmp_path: Path) -> None:
    _questions(tmp_path / "data.csv", 40)
    proc = ftprep(installed, tmp_path, "run", "openai_chat", "--input", "data.csv", "--out", "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "gate passed (exit 0)" in proc.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["config"] == "openai_chat (shipped)"
    assert report["totals"]["train"] + report["totals"]["validation"] == 40
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")  # the templates
    assert "<svg" in html


def test_installed_run_with_a_shipped_suite_by_name(installed: Path, tmp_path: Path) -> None:
    _questions(tmp_path / "data.csv", 12)
    (tmp_path / "mine.yaml").write_text(
        "target: openai:gpt-4o-mini-2024-07-18\n"
        "stages: [{name: convert, to: chat}, {name: validate_schema}, {name: count_tokens}]\n"
        "gate: {expectations: [chat]}\n"
        "output: {dir: out}\n",
        encoding="utf-8",
    )
    proc = ftprep(installed, tmp_path, "run", "mine.yaml", "--input", "data.csv")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    (suite,) = report["gate"]["expectations"]
    assert suite["path"] == "chat"
    assert suite["success"] is True
    assert len(suite["results"]) > 0


def test_installed_user_profiles_from_the_environment(installed: Path, tmp_path: Path) -> None:
    mine = tmp_path / "profiles"
    mine.mkdir()
    (mine / "together.yaml").write_bytes((ROOT / "configs/targets/together.yaml").read_bytes())
    proc = ftprep(installed, tmp_path, "targets", FTPREP_TARGETS_DIR=str(mine))
    assert proc.returncode == 0, proc.stderr
    assert f"from FTPREP_TARGETS_DIR ({mine.resolve()}): together" in proc.stdout
