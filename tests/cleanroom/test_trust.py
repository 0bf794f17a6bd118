"""``cleanroom trust reset``: starting over deliberately, and the rollback message that names it."""

from __future__ import annotations

from cleanroom.audit import AuditHead, default_head_store
from cleanroom.cli import main
from tests.cleanroom.saved_results import write_saved_overlap


def test_rollback_names_the_head_store_and_the_reset_command(tmp_path, policy, policy_bytes, enclave,
                                                             other_enclave, make_bundle, now, capsys):
    saved, policy_file = write_saved_overlap(tmp_path, policy, policy_bytes, enclave,
                                             make_bundle(enclave, policy_bytes), now, [["loyalty", 900]])
    store = default_head_store()
    store.observe(policy.collaboration_id, other_enclave.sig_pub, AuditHead(3, bytes(32)))
    argv = ["check", str(saved), "--policy", str(policy_file), "--insecure-allow-simulation",
            "--now", str(now)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "error [rollback_detected]" in err
    assert str(store.directory) in err and f"cleanroom trust reset --policy {policy_file}" in err

    assert main(["trust", "show"]) == 0
    assert other_enclave.sig_pub.hex() in capsys.readouterr().out

    assert main(["trust", "reset", "--policy", str(policy_file)]) == 1  # no --yes: nothing changes
    err = capsys.readouterr().err
    assert "What you give up" in err and other_enclave.sig_pub.hex() in err and "--yes" in err
    assert store.load(policy.collaboration_id) is not None

    assert main(["trust", "reset", "--policy", str(policy_file), "--yes"]) == 0
    assert store.load(policy.collaboration_id) is None
    assert main(argv) == 0  # the new enclave is accepted, as if it were the first


def test_reset_with_nothing_remembered(tmp_path, policy_bytes, capsys):
    policy_file = tmp_path / "policy.toml"
    policy_file.write_bytes(policy_bytes)
    assert main(["trust", "reset", "--policy", str(policy_file), "--yes"]) == 0
    assert "nothing to reset" in capsys.readouterr().out
    assert main(["trust", "show", "--policy", str(policy_file)]) == 0
    assert "nothing remembered" in capsys.readouterr().out
