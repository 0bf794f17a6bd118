"""The client profile: flags win over CLEANROOM_* variables, which win over profile.toml."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from cleanroom.cli import main
from cleanroom.client_profile import load_profile, profile_path, save_profile
from cleanroom.commands.arguments import (
    UsageError,
    add_attestation_flags,
    add_host,
    add_policy,
    apply_profile,
)
from protocol.errors import InvalidInput
from tests.cleanroom.saved_results import write_saved_overlap


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_host(parser)
    add_policy(parser)
    add_attestation_flags(parser)
    return parser.parse_args(argv)


def test_flag_beats_environment_beats_profile(tmp_path, monkeypatch):
    save_profile(profile_path(), {"host": "http://profile:1", "policy": tmp_path / "profile.toml",
                                  "insecure_allow_simulation": True})
    args = _parse([])
    apply_profile(args)
    assert args.host == "http://profile:1" and args.policy == tmp_path / "profile.toml"
    assert args.insecure_allow_simulation is True and args.verifier_policy is None

    monkeypatch.setenv("CLEANROOM_HOST", "http://env:2")
    monkeypatch.setenv("CLEANROOM_INSECURE_ALLOW_SIMULATION", "0")
    args = _parse([])
    apply_profile(args)
    assert args.host == "http://env:2" and args.insecure_allow_simulation is False

    args = _parse(["--host", "http://flag:3", "--insecure-allow-simulation"])
    apply_profile(args)
    assert args.host == "http://flag:3" and args.insecure_allow_simulation is True

    monkeypatch.delenv("CLEANROOM_INSECURE_ALLOW_SIMULATION")
    args = _parse(["--no-insecure-allow-simulation"])  # the flag can switch the profile's opt-in off
    apply_profile(args)
    assert args.insecure_allow_simulation is False


def test_a_needed_setting_set_nowhere_names_every_way_to_set_it():
    with pytest.raises(UsageError, match=r"--host URL is required.*CLEANROOM_HOST.*profile set host"):
        apply_profile(_parse(["--policy", "p.toml"]))


def test_a_typo_in_the_profile_or_a_bad_boolean_is_an_error(monkeypatch):
    path = profile_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('hots = "http://x"\n')
    with pytest.raises(InvalidInput, match="unknown key 'hots'"):
        load_profile(path)
    path.write_text("")
    monkeypatch.setenv("CLEANROOM_INSECURE_ALLOW_SIMULATION", "maybe")
    with pytest.raises(InvalidInput, match="CLEANROOM_INSECURE_ALLOW_SIMULATION"):
        apply_profile(_parse(["--host", "h", "--policy", "p"]))


def test_profile_set_show_unset(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.toml").write_text("")
    assert main(["profile", "set", "host", "http://127.0.0.1:8700"]) == 0
    assert main(["profile", "set", "policy", "policy.toml"]) == 0  # stored absolute
    assert main(["profile", "set", "insecure-allow-simulation", "yes"]) == 0
    assert "SIMULATED" in capsys.readouterr().out
    assert main(["profile", "set", "colour", "blue"]) == 1
    assert "the settings are: host, policy, keys" in capsys.readouterr().err
    monkeypatch.setenv("CLEANROOM_KEYS", "mine.key.json")
    assert main(["profile", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["settings"]
    where = f"profile {profile_path()}"
    assert shown["host"] == {"value": "http://127.0.0.1:8700", "source": where}
    assert shown["policy"] == {"value": str(tmp_path / "policy.toml"), "source": where}
    assert shown["keys"] == {"value": "mine.key.json", "source": "environment CLEANROOM_KEYS"}
    assert shown["verifier_policy"] == {"value": None, "source": "unset"}
    assert shown["insecure_allow_simulation"] == {"value": True, "source": where}
    assert main(["profile", "show"]) == 0
    assert "(environment CLEANROOM_KEYS)" in capsys.readouterr().out
    assert main(["profile", "unset", "host"]) == 0
    assert "host" not in load_profile(profile_path())


def test_values_with_quotes_and_backslashes_survive_the_file(tmp_path):
    odd = tmp_path / 'a "quoted" \\ dir' / "p.toml"
    save_profile(profile_path(), {"policy": odd, "host": "http://h/\u00e9"})
    assert load_profile(profile_path()) == {"policy": odd, "host": "http://h/\u00e9"}


def test_everyday_commands_need_no_flags(tmp_path, policy, policy_bytes, enclave, make_bundle, now,
                                         capsys):
    saved, policy_file = write_saved_overlap(tmp_path, policy, policy_bytes, enclave,
                                             make_bundle(enclave, policy_bytes), now, [["loyalty", 900]])
    assert main(["check", str(saved), "--now", str(now)]) == 2
    assert "--policy FILE is required" in capsys.readouterr().err
    save_profile(profile_path(), {"policy": policy_file, "insecure_allow_simulation": True})
    assert main(["check", str(saved), "--now", str(now)]) == 0
    out, err = capsys.readouterr()
    assert "result signature: ok" in out
    assert "WARNING: --insecure-allow-simulation" in err and f"profile {profile_path()}" in err


def test_the_profile_lives_in_cleanroom_home_unless_named(tmp_path, monkeypatch):
    assert profile_path() == Path(os.environ["CLEANROOM_HOME"]) / "profile.toml"
    monkeypatch.setenv("CLEANROOM_PROFILE", str(tmp_path / "other.toml"))
    assert profile_path() == tmp_path / "other.toml"
