"""Config files compared key by key, by type; text when they do not parse; never freezing."""

from __future__ import annotations

import json
import time
from pathlib import Path

from workbench.configfiles import parse_env
from workbench.diff.config import ConfigDiff
from workbench.diff.render import change_line
from workbench.diff.values import Shower
from workbench.secrets import SecretPolicy

PATTERNS = ["config/*", "config/**/*.yaml", ".env", "*.toml"]


def roots(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    for r in (a, b):
        (r / "config").mkdir(parents=True)
    return a, b


def write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def changes(a: Path, b: Path, **kw):
    d = ConfigDiff(kw.pop("patterns", PATTERNS), a, b, Shower(SecretPolicy()), **kw)
    out = list(d.changes())
    return out, {g.name: g for g in d.groups}


def test_each_type_is_compared_key_by_key(tmp_path):
    a, b = roots(tmp_path)
    write(a, "config/app.yaml", "feature:\n  rounding: floor\n  list: [1, 2]\nname: shop\n")
    write(b, "config/app.yaml", "feature:\n  rounding: round\n  list: [1, 2, 3]\nname: shop\nnew: true\n")
    write(a, "config/limits.json", json.dumps({"max": 10, "a.b": {"c": 1}}))
    write(b, "config/limits.json", json.dumps({"max": 11, "a.b": {"c": 2}}))
    write(a, "pyproject.toml", "[tool.x]\nlevel = 1\n")
    write(b, "pyproject.toml", "[tool.x]\nlevel = 2\n")
    write(a, "config/db.ini", "[pool]\nsize = 5\nname = main\n")
    write(b, "config/db.ini", "[pool]\nsize = 6\n")
    write(a, ".env", "MODE=floor\n# comment\nexport A='x y'\n")
    write(b, ".env", "MODE=round\nexport A='x y'\n")
    got, groups = changes(a, b)
    assert {(c.path, c.kind, json.dumps(c.left), json.dumps(c.right)) for c in got} == {
        ("config/app.yaml:feature.rounding", "changed", '"floor"', '"round"'),
        ("config/app.yaml:feature.list[2]", "added", "null", "3"),
        ("config/app.yaml:new", "added", "null", "true"),
        ("config/limits.json:max", "changed", "10", "11"),
        ('config/limits.json:["a.b"].c', "changed", "1", "2"),
        ("pyproject.toml:tool.x.level", "changed", "1", "2"),
        ("config/db.ini:pool.size", "changed", '"5"', '"6"'),
        ("config/db.ini:pool.name", "removed", '"main"', "null"),
        (".env:MODE", "changed", '"floor"', '"round"'),
    }
    assert "'floor' → 'round'" in change_line(got[0])
    assert all(g.status != "same" for g in groups.values())


def test_identical_files_are_not_parsed(tmp_path):
    a, b = roots(tmp_path)
    write(a, "config/app.yaml", "a: [\n")       # broken, but equal on both sides
    write(b, "config/app.yaml", "a: [\n")
    got, groups = changes(a, b)
    assert got == [] and groups["config/app.yaml"].status == "same"


def test_unparseable_file_is_a_text_diff_with_secrets_masked(tmp_path):
    a, b = roots(tmp_path)
    write(a, "config/app.yaml", "a: [\npassword: old-pw-1\nurl: redis://u:old-url-pw@h\nx: 1\n")
    write(b, "config/app.yaml", "a: [\npassword: new-pw-2\nurl: redis://u:new-url-pw@h\nx: 2\n")
    got, groups = changes(a, b)
    [ch] = got
    assert ch.path == "config/app.yaml" and ch.lines and ch.masked
    text = "\n".join(ch.lines) + json.dumps(ch.as_dict())
    assert "-x: 1" in text and "+x: 2" in text
    for raw in ("old-pw-1", "new-pw-2", "old-url-pw", "new-url-pw"):
        assert raw not in text
    assert "compared as text" in groups["config/app.yaml"].note


def test_files_added_and_removed(tmp_path):
    a, b = roots(tmp_path)
    write(a, "config/old.yaml", "token: abc-secret-1\nx: 1\n")
    write(b, "config/new.json", json.dumps({"y": 2}))
    got, _ = changes(a, b)
    by = {c.path: c for c in got}
    assert by["config/old.yaml"].kind == "removed" and by["config/new.json"].kind == "added"
    assert by["config/new.json"].right == {"y": 2}
    assert "abc-secret-1" not in json.dumps(by["config/old.yaml"].as_dict())


def test_secrets_nested_in_lists_and_under_secret_keys(tmp_path):
    a, b = roots(tmp_path)
    write(a, "config/app.yaml", "credentials:\n  user: bob\n  pass: one-1\ntokens: [k-old-1]\n")
    write(b, "config/app.yaml", "credentials:\n  user: bob\n  pass: two-2\ntokens: [k-new-2, k-new-3]\n")
    got, _ = changes(a, b)
    text = json.dumps([c.as_dict() for c in got]) + "\n".join(change_line(c) for c in got)
    for raw in ("one-1", "two-2", "k-old-1", "k-new-2", "k-new-3"):
        assert raw not in text
    assert all(c.masked for c in got) and len(got) >= 2


def test_a_big_yaml_does_not_freeze(tmp_path):
    a, b = roots(tmp_path)
    body = "".join(f"item{i}:\n  name: value number {i}\n  enabled: true\n  tags: [a, b, c]\n" for i in range(70000))
    assert len(body) > 5_000_000
    write(a, "config/big.yaml", body)
    write(b, "config/big.yaml", body.replace("value number 12345\n", "value number twelve\n"))
    t0 = time.perf_counter()
    got, groups = changes(a, b)
    assert time.perf_counter() - t0 < 5
    [ch] = got
    assert any("twelve" in line for line in ch.lines)
    assert "too slow to parse" in groups["config/big.yaml"].note


def test_big_structured_json_uses_the_budget_not_a_freeze(tmp_path):
    a, b = roots(tmp_path)
    left = {"items": [{"id": i, "v": i} for i in range(100000)], "x": 1}
    right = {"items": [{"id": i, "v": i + (i % 3 == 0)} for i in range(100001)], "x": 2}
    write(a, "config/big.json", json.dumps(left))
    write(b, "config/big.json", json.dumps(right))
    t0 = time.perf_counter()
    got, groups = changes(a, b, limit=20)
    assert time.perf_counter() - t0 < 10
    g = groups["config/big.json"]
    assert g.shown == 20 and len(got) == 20
    assert g.total == 100000 // 3 + 1 + 1 + 1 or "stopped after" in (g.note or "")   # v changes, items[100000], x
    assert got[0].path == "config/big.json:items[0].v"


def test_env_parser():
    assert parse_env("A=1\nexport B = 'two words'\nC=\"q\" \nD=x # note\n\n# c\n") == {
        "A": "1", "B": "two words", "C": "q", "D": "x"}
