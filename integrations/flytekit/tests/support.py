"""What the plugin's tests share: the stand-in flytekit on the path, the
plugin "installed" (its entry point visible to importlib.metadata, as
``pip install`` makes it), fresh Python processes, and a fake ispec."""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
STANDIN = ROOT / "tests" / "standin"
SRC = ROOT / "src"


def entry_points_dir() -> str:
    """A folder holding the plugin's distribution metadata with its
    ``flytekit.plugins`` entry point from pyproject.toml: on sys.path, it
    makes ``import flytekit`` load the plugin as an installed plugin is
    loaded."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = meta["project"]
    d = pathlib.Path(tempfile.mkdtemp(prefix="ispec-flytekit-dist-"))
    info = d / f"flytekitplugins_ispec-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    eps = "".join(f"{k} = {v}\n" for k, v in project["entry-points"]["flytekit.plugins"].items())
    (info / "entry_points.txt").write_text("[flytekit.plugins]\n" + eps)
    return str(d)


def python_env(dist: str, **extra: str) -> dict:
    """The environment of a fresh process that runs flytekit with the
    plugin installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(STANDIN), str(SRC), dist])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def run_python(code: str, dist: str, cwd: str = None, timeout: float = 600, **extra: str) -> subprocess.CompletedProcess:
    """Runs code in a new Python process (as a new ``pyflyte`` would be)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=python_env(dist, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


FAKE_ISPEC = r'''
# A fake ispec: does what its plan says.
import json, os, shutil, sys, time
plan = json.load(open(PLAN))
spec = sys.argv[-1]
if plan.get("capture"):
    with open(plan["capture"], "w") as f:
        json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(), "spec": json.load(open(spec)),
                   "spec_path": os.path.abspath(spec)}, f)
if plan.get("stderr"):
    sys.stderr.write(plan["stderr"].replace("SPEC", spec))
    sys.stderr.flush()
if plan.get("wait_for"):
    deadline = time.monotonic() + 30
    while not os.path.exists(plan["wait_for"]):
        if time.monotonic() > deadline:
            sys.stderr.write("fake ispec: nobody read my progress within 30 s\n")
            sys.exit(9)
        time.sleep(0.01)
sys.stdout.write(plan.get("stdout", "").replace("SPEC", spec))
sys.exit(plan.get("code", 0))
'''


def fake_ispec(folder: str, plan: dict) -> str:
    """Writes a fake ispec that follows plan (capture: file to record its
    argv, cwd and spec in; stderr: text to write first, SPEC replaced by
    the spec's name; wait_for: a file to wait for before going on; stdout;
    code) and returns its path."""
    plan_file = pathlib.Path(folder) / "plan.json"
    plan_file.write_text(json.dumps(plan))
    p = pathlib.Path(folder) / "ispec"
    p.write_text(f"#!{sys.executable}\nPLAN = {str(plan_file)!r}\n" + FAKE_ISPEC)
    p.chmod(0o755)
    return str(p)


def record(ref: str, digest: str, outcome: str = "built", error: dict = None) -> str:
    """A line of ``ispec build --json``."""
    rec = {"spec": "SPEC", "ref": ref, "digest": digest, "built": outcome == "built", "outcome": outcome}
    if error:
        rec["error"] = error
    return json.dumps(rec) + "\n"
