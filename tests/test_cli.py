"""The command line: config errors, keys, listings and the usage report."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.gateway_harness import run_cli


def write(tmp_path: Path, config: dict | str) -> Path:
    path = tmp_path / "torouter.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


BASE = {
    "upstreams": [
        {
            "name": "up",
            "platform": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key": "${UP_KEY:-sk-x}",
        }
    ],
    "groups": [{"name": "team", "platform": "openai", "upstreams": ["up"]}],
}


@pytest.mark.parametrize(
    ("config", "field", "fix"),
    [
        (
            {**BASE, "upstreams": [{**BASE["upstreams"][0], "platform": "opanai"}]},
            "upstreams[0].platform",
            "use one of",
        ),
        (
            {**BASE, "groups": [{**BASE["groups"][0], "upstreams": ["nope"]}]},
            "groups[0].upstreams[0]",
            "declare it first",
        ),
        (
            {**BASE, "upstreams": [{**BASE["upstreams"][0], "api_key": "${MISSING_VAR_X}"}]},
            "upstreams[0].api_key",
            "export it",
        ),
        ({**BASE, "databse_url": "x"}, "databse_url", "use one of"),
        (
            {**BASE, "upstreams": [{**BASE["upstreams"][0], "weight": "heavy"}]},
            "upstreams[0].weight",
            "must be a number",
        ),
        ("upstreams: [unclosed", "line", "fix the syntax"),
    ],
)
def test_invalid_config_exits_2_with_one_line_naming_file_field_and_fix(
    tmp_path: Path, config, field: str, fix: str
) -> None:
    path = write(tmp_path, config)
    proc = run_cli("groups", "list", config=path, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(path) in lines[0] and field in lines[0] and fix in lines[0]
    assert "Traceback" not in proc.stderr


def test_keys_lifecycle_through_the_cli(tmp_path: Path) -> None:
    path = write(tmp_path, {**BASE, "database_url": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"})
    created = run_cli("keys", "create", "--group", "team", "--name", "ci-bot", config=path)
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("sk-tr-") and len(key) > 30
    listed = run_cli("keys", "list", config=path).stdout
    assert "ci-bot" in listed and key[:12] in listed and key not in listed
    shown = run_cli("keys", "show", "ci-bot", config=path).stdout
    assert "team" in shown and "active" in shown
    run_cli("keys", "revoke", key, config=path)
    assert "revoked" in run_cli("keys", "show", "ci-bot", config=path).stdout
    missing = run_cli("keys", "create", "--group", "nobody", config=path, check=False)
    assert missing.returncode == 1 and "known groups: team" in missing.stderr
    groups = run_cli("groups", "list", config=path).stdout
    assert "team" in groups and "up" in groups
    ups = run_cli("upstreams", "list", config=path).stdout
    assert "http://127.0.0.1:9/v1" in ups and "sk-x" not in ups
    # A mistyped key is named by its prefix: the error line may well end up in a log.
    typo = key[:-1] + ("A" if key[-1] != "A" else "B")
    unknown = run_cli("keys", "revoke", typo, config=path, check=False)
    assert unknown.returncode == 1 and f"no key matches '{key[:12]}…'" in unknown.stderr
    assert typo not in unknown.stderr


def test_every_command_explains_itself() -> None:
    for args in (
        [],
        ["serve"],
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "show"],
        ["keys", "revoke"],
        ["groups", "list"],
        ["upstreams", "list"],
        ["usage"],
        ["emulator"],
        ["demo"],
    ):
        proc = run_cli(*args, "--help")
        assert proc.returncode == 0 and "Usage" in proc.stdout and len(proc.stdout) > 200, args
