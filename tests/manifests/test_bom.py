"""The bill of materials: each trusted file's SHA-256 and origin, and the diff of two BOMs.

Made from a small fixture tree (a project file, a wheel with RECORD and METADATA, a venv file,
a file of no known origin), so it needs neither Gramine nor the real venv.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from manifests import check as cli
from manifests.gramine_check import bom


def _tree(root: Path) -> dict:
    (root / "enclave").mkdir()
    (root / "enclave" / "app.py").write_text("X = 1\n")
    site = root / "venv" / "lib" / "python3.11" / "site-packages"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("Y = 1\n")
    (site / "pkg" / "__pycache__").mkdir()
    (site / "pkg" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"pyc")  # compiled later
    info = site / "pkg-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg\nVersion: 1.2\n\nbody\n")
    (info / "RECORD").write_text("pkg/__init__.py,sha256=x,6\npkg-1.2.dist-info/RECORD,,\n")
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (root / "blob.bin").write_bytes(b"\0" * 3)
    uris = ["file:enclave/app.py", f"file:{site}/pkg/__init__.py",
            f"file:{site}/pkg/__pycache__/__init__.cpython-311.pyc", f"file:{root}/venv/pyvenv.cfg",
            f"file:{root}/blob.bin"]
    return {"sgx": {"trusted_files": uris}}


@pytest.fixture(autouse=True)
def _no_dpkg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bom, "dpkg_owners", lambda paths: {})


def test_bom_of_a_fixture_tree(tmp_path: Path) -> None:
    result = bom.bill_of_materials(_tree(tmp_path), root=tmp_path)
    assert result["format"] == bom.FORMAT
    by_uri = {r["uri"]: r for r in result["files"]}
    assert [r["uri"] for r in result["files"]] == sorted(by_uri)
    app = by_uri["file:enclave/app.py"]
    assert app["sha256"] == hashlib.sha256(b"X = 1\n").hexdigest() and app["size"] == 6
    kinds = {Path(u).name: (r["origin"]["kind"], r["origin"].get("name"), r["origin"].get("version"))
             for u, r in by_uri.items()}
    assert kinds == {
        "app.py": ("project", None, None),
        "__init__.py": ("wheel", "pkg", "1.2"),
        "__init__.cpython-311.pyc": ("wheel", "pkg", "1.2"),  # byte-code: its source's wheel
        "pyvenv.cfg": ("venv", None, None),
        "blob.bin": ("unknown", None, None),
    }


def test_dpkg_origin_and_signed_hash_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = _tree(tmp_path)
    blob = tmp_path / "blob.bin"
    manifest["sgx"]["trusted_files"][-1] = {"uri": f"file:{blob}", "sha256": "0" * 64}
    monkeypatch.setattr(bom, "dpkg_owners", lambda paths: {blob: ("zlib1g:amd64", "1:1.2.13")})
    row = next(r for r in bom.bill_of_materials(manifest, root=tmp_path)["files"] if r["path"] == str(blob))
    assert row["origin"] == {"kind": "debian", "name": "zlib1g:amd64", "version": "1:1.2.13"}
    assert row["manifest_sha256"] == "0" * 64  # the .manifest.sgx measured other bytes


def test_diff_names_added_removed_and_changed_with_origins(tmp_path: Path) -> None:
    manifest = _tree(tmp_path)
    before = bom.bill_of_materials(manifest, root=tmp_path)
    (tmp_path / "enclave" / "app.py").write_text("X = 2\n")
    (tmp_path / "enclave" / "new.py").write_text("Z = 1\n")
    manifest["sgx"]["trusted_files"] = [*manifest["sgx"]["trusted_files"][:-1], "file:enclave/new.py"]
    after = bom.bill_of_materials(manifest, root=tmp_path)
    lines = bom.diff(before, after)
    assert [line.split()[:2] for line in lines] == [  # sorted by URI
        ["-", f"file:{tmp_path}/blob.bin"],
        ["~", "file:enclave/app.py"],
        ["+", "file:enclave/new.py"],
    ]
    assert lines[0].endswith("(unknown)") and "(project) ->" in lines[1]
    assert bom.diff(before, before) == []


def test_diff_reports_the_measurement_itself() -> None:
    a = {"format": bom.FORMAT, "mr_enclave": "aa" * 32, "files": []}
    assert bom.diff(a, a | {"mr_enclave": "bb" * 32}) == [f"~ mr_enclave: {'aa' * 8} -> {'bb' * 8}"]


def test_cli_bom_and_bom_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert cli.main(["--bom", str(a)]) == 0
    data = json.loads(a.read_text())
    assert a.read_text().endswith("\n") and len(data["files"]) > 100
    assert {r["origin"]["kind"] for r in data["files"]} >= {"project", "wheel"}
    data["files"] = [r for r in data["files"] if r["uri"] != "file:protocol/wire.py"]
    b.write_text(json.dumps(data))
    capsys.readouterr()
    assert cli.main(["--bom-diff", str(a), str(a)]) == 0
    assert cli.main(["--bom-diff", str(a), str(b)]) == 1
    assert "- file:protocol/wire.py" in capsys.readouterr().out
