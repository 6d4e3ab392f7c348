"""The release artefacts: what ``pip install airflow-provider-immuta`` would give a user.

Builds the sdist and the wheel (the wheel from the sdist, as ``python -m build`` does), checks
them with ``twine check --strict``, installs the wheel into a fresh virtual environment that has
only Airflow (pinned by requirements/airflow-3.3.txt), and asks that Airflow whether it found the
provider and its ``immuta`` connection type. uv's cache keeps the install to a few seconds.
"""

from __future__ import annotations

import email
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_LOCK = REPO_ROOT / "requirements" / "airflow-3.3.txt"
AIRFLOW_PIN = "apache-airflow==3.3.2"
BUILD_TIMEOUT_SECONDS = 180
INSTALL_TIMEOUT_SECONDS = 300
AIRFLOW_CLI_TIMEOUT_SECONDS = 120


def _uv() -> str:
    """The uv the Makefile installs into .venv, else one on PATH."""
    beside_python = Path(sys.executable).with_name("uv")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("uv")
    if found is None:
        raise RuntimeError("uv not found: run `make install` (it installs uv into .venv)")
    return found


def _run(
    command: list[str], *, timeout: float, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited with {result.returncode}:\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def _project_urls() -> dict[str, str]:
    section = (REPO_ROOT / "pyproject.toml").read_text().split("[project.urls]", 1)[1]
    section = section.split("\n[", 1)[0]
    return dict(re.findall(r'^(\w+) = "([^"]+)"', section, re.MULTILINE))


def _project_version() -> str:
    text = (REPO_ROOT / "pyproject.toml").read_text()
    match = re.search(r'^version = "([^"]+)"', text, re.MULTILINE)
    assert match, "no version in pyproject.toml"
    return match.group(1)


@pytest.fixture(scope="module")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build`` output: one sdist and one wheel."""
    out = tmp_path_factory.mktemp("dist")
    _run(
        [sys.executable, "-m", "build", "--installer", "uv", "--outdir", str(out), str(REPO_ROOT)],
        timeout=BUILD_TIMEOUT_SECONDS,
        cwd=out,
        # `build --installer uv` finds uv on PATH.
        env={**os.environ, "PATH": f"{Path(_uv()).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    return out


def _only(dist_dir: Path, pattern: str) -> Path:
    found = sorted(dist_dir.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {dist_dir}, found {found}"
    return found[0]


def _wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(archive.read(name))


def test_build_makes_a_wheel_and_an_sdist_that_twine_accepts(dist_dir: Path) -> None:
    version = _project_version()
    wheel = _only(dist_dir, "*.whl")
    sdist = _only(dist_dir, "*.tar.gz")
    assert wheel.name == f"airflow_provider_immuta-{version}-py3-none-any.whl"
    assert sdist.name == f"airflow_provider_immuta-{version}.tar.gz"

    check = _run(
        [sys.executable, "-m", "twine", "--no-color", "check", "--strict", str(wheel), str(sdist)],
        timeout=AIRFLOW_CLI_TIMEOUT_SECONDS,
        cwd=dist_dir,
        # Plain, unwrapped lines: one "Checking <file>: PASSED" per artefact.
        env={**os.environ, "COLUMNS": "300"},
    )
    assert check.stdout.count("PASSED") == 2, check.stdout
    print(check.stdout.strip())

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "immuta_provider/__init__.py" in names
    assert "immuta_provider/py.typed" in names, "type information must ship (Typing :: Typed)"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "docs/"))]

    metadata = _wheel_metadata(wheel)
    assert metadata["Name"] == "airflow-provider-immuta"
    assert metadata["Version"] == version
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Requires-Python"] == ">=3.10"
    urls = {
        url.split(",")[0].strip(): url.split(",", 1)[1].strip()
        for url in metadata.get_all("Project-URL", [])
    }
    for label in ("Documentation", "Source", "Issues", "Changelog"):
        assert urls.get(label, "").startswith("https://"), f"Project-URL {label} missing: {urls}"
    assert "Framework :: Apache Airflow :: Provider" in metadata.get_all("Classifier", [])
    # The long description is the README, rendered on the package index.
    assert metadata["Description-Content-Type"] == "text/markdown"

    with tarfile.open(sdist) as archive:
        members = {
            Path(m).relative_to(Path(m).parts[0]).as_posix() for m in archive.getnames() if "/" in m
        }
    for needed in (
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "src/immuta_provider/__init__.py",
    ):
        assert needed in members, f"{needed} missing from the sdist"


def test_changelog_has_a_section_for_this_version() -> None:
    version = _project_version()
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    assert re.search(
        rf"^## \[{re.escape(version)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.MULTILINE
    ), f"CHANGELOG.md has no '## [{version}] - YYYY-MM-DD' section"
    assert re.search(rf"^\[{re.escape(version)}\]: https://", changelog, re.MULTILINE)


def test_docs_site_is_where_the_metadata_points() -> None:
    """mkdocs.yml's site_url and repo_url agree with pyproject's Documentation and Source."""
    mkdocs = (REPO_ROOT / "mkdocs.yml").read_text()
    urls = _project_urls()
    assert re.search(rf"^site_url: {re.escape(urls['Documentation'])}$", mkdocs, re.MULTILINE)
    assert re.search(rf"^repo_url: {re.escape(urls['Source'])}$", mkdocs, re.MULTILINE)


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_docs_pins_agree_with_the_airflow_lock() -> None:
    """requirements/docs.txt installs into the same .venv: a shared package has one version."""
    lock = _pins(AIRFLOW_LOCK)
    docs = _pins(REPO_ROOT / "requirements" / "docs.txt")
    assert "mkdocs" in docs
    differing = {name: (docs[name], lock[name]) for name in docs.keys() & lock.keys()}
    differing = {name: pair for name, pair in differing.items() if pair[0] != pair[1]}
    assert not differing, (
        f"docs.txt and airflow-3.3.txt pin these differently (docs, lock): {differing}; re-run "
        "uv pip compile --python 3.11 requirements/docs.in -c requirements/airflow-3.3.txt "
        "-o requirements/docs.txt"
    )


def test_wheel_in_a_clean_airflow_venv_registers_provider_and_connection_type(
    dist_dir: Path, tmp_path: Path
) -> None:
    wheel = _only(dist_dir, "*.whl")
    venv = tmp_path / "venv"
    uv = _uv()
    _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], timeout=60, cwd=tmp_path)
    python = venv / "bin" / "python"
    # Only Airflow (at the lock's pins) and the wheel: no editable checkout, no dev tools.
    _run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "-c",
            str(AIRFLOW_LOCK),
            AIRFLOW_PIN,
            str(wheel),
        ],
        timeout=INSTALL_TIMEOUT_SECONDS,
        cwd=tmp_path,
    )

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "PYTHONPATH", "VIRTUAL_ENV"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    # The provider must come from the installed wheel, not from this checkout's src/.
    where = _run(
        [str(python), "-c", "import immuta_provider; print(immuta_provider.__file__)"],
        timeout=60,
        cwd=tmp_path,
        env=env,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv), where

    airflow = str(venv / "bin" / "airflow")
    # The table a person reads: package | description | version.
    providers = _run(
        [airflow, "providers", "list"], timeout=AIRFLOW_CLI_TIMEOUT_SECONDS, cwd=tmp_path, env=env
    )
    ours = [
        line
        for line in providers.stdout.splitlines()
        if line.split("|")[0].strip() == "airflow-provider-immuta"
    ]
    assert len(ours) == 1, f"airflow providers list does not show our provider:\n{providers.stdout}"
    print(ours[0].rstrip())
    assert ours[0].split("|")[-1].strip() == _project_version(), ours[0]

    hooks = _run(
        [airflow, "providers", "hooks", "--output", "json"],
        timeout=AIRFLOW_CLI_TIMEOUT_SECONDS,
        cwd=tmp_path,
        env=env,
    )
    immuta = [h for h in json.loads(hooks.stdout) if h["connection_type"] == "immuta"]
    assert immuta == [
        {
            "connection_type": "immuta",
            "class": "immuta_provider.hooks.immuta.ImmutaHook",
            "conn_id_attribute_name": "immuta_conn_id",
            "package_name": "airflow-provider-immuta",
            "hook_name": "Immuta",
        }
    ], hooks.stdout

    # What the Providers page of the UI links to: Airflow takes it from Project-URL Documentation.
    info = _run(
        [airflow, "providers", "get", "airflow-provider-immuta", "--full", "--output", "json"],
        timeout=AIRFLOW_CLI_TIMEOUT_SECONDS,
        cwd=tmp_path,
        env=env,
    )
    [provider] = json.loads(info.stdout)
    documentation = _project_urls()["Documentation"]
    assert provider["documentation-url"] == documentation, provider
    [connection_type] = provider["connection-types"]
    assert connection_type["connection-type"] == "immuta"
    assert connection_type["ui-field-behaviour"]["relabeling"] == {
        "host": "Immuta URL",
        "password": "API key",
    }
