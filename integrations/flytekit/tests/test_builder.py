"""Tests of the ispec flytekit plugin.

flytekit cannot be installed here (no Python package index), so these run
against a minimal stand-in of flytekit's ImageSpec, ImageSpecBuilder and
ImageBuildEngine (tests/standin/flytekit, see its docstring), with the
plugin imported the way flytekit's entry point imports it. The end-to-end
tests drive a real `ispec` (on PATH) against a real BuildKit and registry:
ISPEC_TEST_REGISTRY, ISPEC_TEST_BASE_BUSYBOX and BUILDKIT_HOST come from
the caller (cmd/ispec's Go test sets them from the test environment).
Without them the end-to-end tests skip, unless CI=true, when they fail.
"""

import importlib
import json
import os
import pathlib
import subprocess
import tempfile
import time
import tomllib
import unittest
import urllib.error
import urllib.request

from flytekit.image_spec.image_spec import _F_IMG_ID, ImageBuildEngine, ImageSpec

import flytekitplugins_ispec
from flytekitplugins_ispec import IspecError, IspecImageSpecBuilder, spec_document

ROOT = pathlib.Path(__file__).resolve().parent.parent


def need_env(test):
    names = ["ISPEC_TEST_REGISTRY", "ISPEC_TEST_BASE_BUSYBOX", "BUILDKIT_HOST"]
    missing = [n for n in names if not os.environ.get(n)]
    if missing and os.environ.get("CI") != "true":
        test.skipTest(f"no test environment ({', '.join(missing)} unset)")
    if missing:
        test.fail(f"CI=true but {', '.join(missing)} unset")


class Registration(unittest.TestCase):
    def test_entry_point_registers_the_builder(self):
        meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
        eps = meta["project"]["entry-points"]["flytekit.plugins"]
        self.assertEqual(eps, {"ispec": "flytekitplugins_ispec"})
        ImageBuildEngine._REGISTRY.pop("ispec", None)
        importlib.reload(importlib.import_module(eps["ispec"]))
        builder, _ = ImageBuildEngine._REGISTRY["ispec"]
        self.assertIsInstance(builder, IspecImageSpecBuilder)


class SpecDocument(unittest.TestCase):
    def test_fields_unchanged_and_image_id_added(self):
        spec = ImageSpec(
            name="wf",
            registry="ghcr.io/Org",
            python_version="3.11",
            packages=["pandas==2.2.2"],
            apt_packages=["git"],
            env={"A": "1"},
            pip_secret_mounts=[("pip.conf", "/etc/pip.conf")],
            builder="ispec",
            platform="linux/amd64,linux/arm64",
        )
        doc = spec_document(spec)
        self.assertEqual(doc["registry"], "ghcr.io/org")
        self.assertEqual(doc["packages"], ["pandas==2.2.2"])
        self.assertEqual(doc["python_version"], "3.11")
        self.assertEqual(doc["platform"], "linux/amd64,linux/arm64")
        self.assertEqual(doc["pip_secret_mounts"], [["pip.conf", "/etc/pip.conf"]])
        self.assertEqual(doc["builder"], "ispec")
        self.assertEqual(doc["env"], {"A": "1", _F_IMG_ID: spec.id})
        self.assertEqual(spec.env, {"A": "1"}, "the ImageSpec itself is not changed")
        self.assertNotIn("cuda", doc, "unset fields are left out")
        self.assertFalse([k for k in doc if k.startswith("_")])

    def test_nested_image_spec_base(self):
        base = ImageSpec(name="base", registry="r.example/x")
        doc = spec_document(ImageSpec(name="c", registry="r.example/x", base_image=base))
        self.assertEqual(doc["base_image"], base.image_name())


def registry_get(path, accept=""):
    req = urllib.request.Request(f"http://{os.environ['ISPEC_TEST_REGISTRY']}/v2/{path}")
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def image_env(ref_digest):
    """The env of a pushed image, read from the registry over HTTP."""
    ref, digest = ref_digest.split("@")
    repo = ref.split("/", 1)[1].rsplit(":", 1)[0]
    manifest = registry_get(
        f"{repo}/manifests/{digest}",
        "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json",
    )
    config = registry_get(f"{repo}/blobs/{manifest['config']['digest']}")
    return dict(e.split("=", 1) for e in config["config"].get("Env", []))


class EndToEnd(unittest.TestCase):
    def setUp(self):
        need_env(self)
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.cwd = os.getcwd()
        os.chdir(self.dir.name)
        self.addCleanup(os.chdir, self.cwd)
        self.registry = f"{os.environ['ISPEC_TEST_REGISTRY']}/flytekit-{time.time_ns()}"
        importlib.reload(flytekitplugins_ispec)

    def spec(self, **kw):
        return ImageSpec(
            name="wf", registry=self.registry, base_image=os.environ["ISPEC_TEST_BASE_BUSYBOX"], builder="ispec", **kw
        )

    def test_build_through_ispec(self):
        pathlib.Path("data.txt").write_text("copied\n")
        spec = self.spec(env={"GREETING": "hi"}, commands=["echo built > /built.txt"], copy=["data.txt"])
        builder = IspecImageSpecBuilder()
        self.assertTrue(builder.should_build(spec), "a new spec's image is absent")

        ImageBuildEngine.build(spec)
        real = spec.image_name()
        self.assertRegex(real, r"^" + self.registry + r"/wf:[0-9a-f]{32}@sha256:[0-9a-f]{64}$")
        self.assertEqual([p for p in os.listdir(".") if p.startswith(".ispec-flytekit-")], [], "spec file left behind")

        # What Flyte sees at run time: flytekit's image id, so
        # is_container() is true inside the task, and the spec's env.
        env = image_env(real)
        self.assertEqual(env.get(_F_IMG_ID), spec.id)
        self.assertEqual(env.get("GREETING"), "hi")
        os.environ[_F_IMG_ID] = env[_F_IMG_ID]
        self.addCleanup(os.environ.pop, _F_IMG_ID, None)
        self.assertTrue(spec.is_container())
        self.assertFalse(self.spec(env={"GREETING": "other"}).is_container())

        # Built once: now it exists, and building again finds it.
        self.assertFalse(builder.should_build(spec))
        self.assertEqual(builder.build_image(spec), real)

    def test_failed_build_raises_and_pushes_nothing(self):
        spec = self.spec(commands=["echo the-reason >&2; exit 3"])
        with self.assertRaises(IspecError) as cm:
            ImageBuildEngine.build(spec)
        self.assertEqual(cm.exception.code, 1)
        self.assertIn("the-reason", str(cm.exception))
        with self.assertRaises(urllib.error.HTTPError):
            registry_get(f"{self.registry.split('/', 1)[1]}/wf/tags/list")

    def test_invalid_spec_raises(self):
        for kw, field in [
            ({"apt_packages": ["curl; id"]}, "apt_packages"),
            ({"requirements": "missing.txt"}, "requirements"),
            ({"pip_index": "https://user:pw@example.com/simple"}, "pip_index"),
        ]:
            with self.subTest(field=field), self.assertRaises(IspecError) as cm:
                IspecImageSpecBuilder().should_build(self.spec(**kw))
            self.assertEqual(cm.exception.code, 2)
            self.assertIn(field, str(cm.exception))
            self.assertNotIn("pw@", str(cm.exception))

    def test_unreachable_registry_is_never_taken_for_exists(self):
        spec = ImageSpec(name="wf", registry="127.0.0.1:1/x", base_image="127.0.0.1:1/b:1", builder="ispec")
        with self.assertRaises(IspecError) as cm:
            IspecImageSpecBuilder().should_build(spec)
        self.assertEqual(cm.exception.code, 3)


if __name__ == "__main__":
    unittest.main()
