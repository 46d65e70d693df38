"""Unit tests of the ispec KFP helper: no BuildKit, no registry. A fake
ispec records what it was given; kfp is the stand-in (tests/standin).
The project's Go test TestKFPHelperUnits runs them."""

import io
import json
import os
import pathlib
import shutil
import sys
import tempfile
import unittest

from kfp import dsl

import ispec_kfp
from ispec_kfp import IspecError

FAKE = r'''#!PYTHON
import json, os, sys
plan = json.load(open(PLAN))
spec = sys.argv[-1]
with open(plan["capture"], "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "spec": json.load(open(spec))}) + "\n")
sys.stderr.write(plan.get("stderr", ""))
sys.stdout.write(plan.get("stdout", ""))
sys.exit(plan.get("code", 0))
'''

DIGEST = "sha256:" + "ab" * 32


class Helper(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ispec-kfp-")
        self.addCleanup(shutil.rmtree, self.dir)
        self.capture = os.path.join(self.dir, "calls.jsonl")
        self.plan(stdout=json.dumps({"ref": "reg.example/preprocess:0123", "digest": DIGEST, "built": True}) + "\n")
        self.bin = os.path.join(self.dir, "ispec")
        with open(self.bin, "w") as f:
            f.write(FAKE.replace("PYTHON", sys.executable).replace("PLAN", repr(os.path.join(self.dir, "plan.json"))))
        os.chmod(self.bin, 0o755)

    def plan(self, **p):
        p["capture"] = self.capture
        with open(os.path.join(self.dir, "plan.json"), "w") as f:
            json.dump(p, f)

    def calls(self):
        with open(self.capture) as f:
            return [json.loads(l) for l in f]

    def test_component_gets_pinned_image_and_nothing_to_install(self):
        @ispec_kfp.component(
            base_image="python:3.11-slim",
            packages_to_install=["pandas==2.2.2", "pyarrow==17.0.0"],
            pip_index_urls=["https://pypi.example/simple", "https://extra.example/simple"],
            registry="reg.example",
            kfp_version="2.8.0",
            output_component_file="c.yaml",
            ispec=self.bin,
            cwd=self.dir,
            stderr=io.StringIO(),
        )
        def preprocess(rows: int) -> int:
            return rows

        self.assertIsInstance(preprocess, dsl.Component)
        self.assertEqual(preprocess.args["base_image"], "reg.example/preprocess:0123@" + DIGEST)
        self.assertIsNone(preprocess.args["packages_to_install"])
        self.assertIsNone(preprocess.args["pip_index_urls"])
        self.assertFalse(preprocess.args["install_kfp_package"])
        self.assertEqual(preprocess.args["output_component_file"], "c.yaml", "other arguments pass through")
        self.assertEqual(preprocess(3), 3)
        (call,) = self.calls()
        self.assertEqual(call["spec"], {
            "name": "preprocess",
            "registry": "reg.example",
            "base_image": "python:3.11-slim",
            "packages": ["pandas==2.2.2", "pyarrow==17.0.0", "kfp==2.8.0"],
            "pip_index": "https://pypi.example/simple",
            "pip_extra_index_url": ["https://extra.example/simple"],
        })
        self.assertEqual(call["argv"][:2], ["build", "--json"])
        self.assertTrue(call["argv"][-1].startswith(".ispec-kfp-"), call["argv"])
        self.assertEqual(os.path.realpath(call["cwd"]), os.path.realpath(self.dir))
        self.assertEqual([p for p in os.listdir(self.dir) if p.startswith(".ispec-kfp-")], [], "the spec file is removed")

    def test_bare_decorator_and_defaults(self):
        kw = ispec_kfp.component_kwargs(install_kfp_package=False, ispec=self.bin, cwd=self.dir, stderr=io.StringIO())
        self.assertEqual(kw, {"base_image": "reg.example/preprocess:0123@" + DIGEST, "install_kfp_package": False})
        (call,) = self.calls()
        self.assertEqual(call["spec"], {"name": "kfp-component", "base_image": ispec_kfp.DEFAULT_BASE_IMAGE})

    def test_kfp_version_from_installed_or_clear_error(self):
        with self.assertRaisesRegex(ValueError, "kfp_version="):
            ispec_kfp.spec_document("python:3.11", ["x"], name="a")
        doc = ispec_kfp.spec_document("python:3.11", ["x"], name="a", kfp_package_path="kfp @ https://example.com/kfp.whl")
        self.assertEqual(doc["packages"], ["x", "kfp @ https://example.com/kfp.whl"])

    def test_server_and_args_are_argv(self):
        ispec_kfp.component_kwargs(
            name="n; rm -rf /", install_kfp_package=False, server="unix:///run/ispec.sock",
            ispec_args=["--registry", "reg.example"], ispec=self.bin, cwd=self.dir, stderr=io.StringIO(),
        )
        (call,) = self.calls()
        self.assertEqual(call["argv"][:5], ["build", "--json", "--server", "unix:///run/ispec.sock", "--registry"])
        self.assertEqual(call["spec"]["name"], "n; rm -rf /", "passed in the spec file, never through a shell")

    def test_error_names_the_image(self):
        rec = {"spec": "x", "error": {"class": "invalid", "message": "SPEC: packages[0]: \"a b\" is not a PEP 508 requirement"}}
        self.plan(stdout=json.dumps(rec) + "\n", code=2)
        with self.assertRaises(IspecError) as cm:
            ispec_kfp.component_kwargs(packages_to_install=["a b"], install_kfp_package=False, ispec=self.bin, cwd=self.dir, stderr=io.StringIO())
        self.assertEqual(cm.exception.code, 2)
        self.assertEqual(cm.exception.error_class, "invalid")
        self.assertIn("is not a PEP 508 requirement", str(cm.exception))

    def test_missing_ispec(self):
        with self.assertRaisesRegex(IspecError, "not found"):
            ispec_kfp.component_kwargs(install_kfp_package=False, ispec=os.path.join(self.dir, "none"), cwd=self.dir)

    def test_progress_passed_on(self):
        self.plan(stdout=json.dumps({"ref": "r:t", "digest": DIGEST, "built": False}) + "\n", stderr="#1 [ispec] base\n")
        err = io.StringIO()
        res = ispec_kfp.build({"name": "a"}, ispec=self.bin, cwd=self.dir, stderr=err)
        self.assertEqual(err.getvalue(), "#1 [ispec] base\n")
        self.assertEqual(res.pinned, "r:t@" + DIGEST)
        self.assertFalse(res.built)

    def test_trusted_hosts_refused(self):
        with self.assertRaisesRegex(ValueError, "pip_trusted_hosts"):
            ispec_kfp.component_kwargs(pip_trusted_hosts=["x"], ispec=self.bin, cwd=self.dir)


if __name__ == "__main__":
    unittest.main()
