"""What the plugin's tests share: a project folder, the plugin
"installed" (its entry point visible to importlib.metadata, as pip
install makes it), fresh Python processes, and a fake ispec."""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import tomllib
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
STANDIN = ROOT / "tests" / "standin"
SRC = ROOT / "src"


def entry_points_dir() -> str:
    """A folder holding the plugin's distribution metadata with its
    ``flyte.plugins.image_builders`` entry point from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    d = pathlib.Path(tempfile.mkdtemp(prefix="ispec-flyte-dist-"))
    info = d / f"flyteplugins_ispec-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    group = "flyte.plugins.image_builders"
    eps = "".join(f"{k} = {v}\n" for k, v in project["entry-points"][group].items())
    (info / "entry_points.txt").write_text(f"[{group}]\n" + eps)
    return str(d)


def run_python(code: str, dist: str, cwd: str = None, timeout: float = 600, **extra: str) -> subprocess.CompletedProcess:
    """Runs code in a new Python process with the stand-in flyte and the
    plugin installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(STANDIN), str(SRC), dist])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


FAKE_ISPEC = r'''
# A fake ispec: answers each command (argv[1]) as its plan says, and
# records every call (argv, cwd, spec, the secret files present).
import json, os, sys
plan = json.load(open(PLAN))
spec = sys.argv[-1]
doc = json.load(open(spec))
secrets = {}
mounts = list(doc.get("pip_secret_mounts", []))
for item in doc.get("layers", []):
    mounts += item.get("pip_secret_mounts", [])
for m in mounts:
    src = m["source"] if isinstance(m, dict) else m[0]
    secrets[src] = open(src).read() if os.path.exists(src) else None
with open(LOG, "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "spec": doc, "spec_path": os.path.abspath(spec),
                        "secrets": secrets}) + "\n")
answer = plan.get(sys.argv[1], {})
sys.stderr.write(answer.get("stderr", "").replace("SPEC", spec))
sys.stdout.write(answer.get("stdout", "").replace("SPEC", spec))
sys.exit(answer.get("code", 0))
'''


class FakeIspec:
    """A fake ispec in folder: plan maps a command (build, exists, tag) to
    its stdout, stderr and exit code; calls() lists what it was run with."""

    def __init__(self, folder: str, plan: dict):
        self.folder = pathlib.Path(folder)
        self.log = self.folder / "calls.jsonl"
        (self.folder / "plan.json").write_text(json.dumps(plan))
        self.path = str(self.folder / "ispec")
        pathlib.Path(self.path).write_text(
            f"#!{sys.executable}\nPLAN = {str(self.folder / 'plan.json')!r}\nLOG = {str(self.log)!r}\n" + FAKE_ISPEC
        )
        os.chmod(self.path, 0o755)

    def calls(self) -> list:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def build_record(ref: str, digest: str, built: bool = True, error: dict = None) -> dict:
    """A line of ``ispec build --json``."""
    rec = {"spec": "SPEC", "ref": ref, "digest": digest, "built": built, "outcome": "built" if built else "found"}
    if error:
        rec = {"spec": "SPEC", "ref": ref, "error": error}
    code = 0 if not error else {"invalid": 2, "unavailable": 3}.get(error["class"], 1)
    return {"stdout": json.dumps(rec) + "\n", "code": code}


def exists_record(ref: str, state: str, digest: str = "", reason: str = "") -> dict:
    """A line of ``ispec exists --json`` and its exit code."""
    rec = {"spec": "SPEC", "ref": ref, "state": state}
    if digest:
        rec["digest"] = digest
    if reason:
        rec["reason"] = reason
    return {"stdout": json.dumps(rec) + "\n", "code": {"exists": 0, "absent": 1}.get(state, 3)}


def write_wheel(folder: pathlib.Path, name: str, version: str, files: dict) -> pathlib.Path:
    """A pure-Python wheel of name and version holding files."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{dist}-py3-none-any.whl"
    meta = {
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: ispec-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    entries = {**files, **meta}
    record = "".join(f"{p},,\n" for p in entries) + f"{dist}.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as z:
        for p, text in entries.items():
            z.writestr(p, text)
        z.writestr(f"{dist}.dist-info/RECORD", record)
    return path
