"""End-to-end tests of the ispec flytekit plugin: a real `ispec` (on PATH)
against a real BuildKit, registry and Python index, driven through the
stand-in of flytekit 1.16.24 (tests/standin) as `pyflyte register` drives
a builder.

ISPEC_TEST_REGISTRY, ISPEC_TEST_BASE_BUSYBOX, ISPEC_TEST_BASE_PYTHON,
ISPEC_TEST_PYPI_INDEX and BUILDKIT_HOST come from the caller (the Go test
TestFlytekitPlugin sets them from the test environment, and serves a
flytekit wheel of the stand-in's version from the index). Without them
these tests skip, unless CI=true, when they fail. Images on the busybox
base have no Python: there the plugin adds no flytekit
(ISPEC_FLYTEKIT_ADD_FLYTEKIT=false).
"""

import json
import os
import pathlib
import shutil
import tempfile
import textwrap
import time
import unittest
import urllib.error
import urllib.request

import flytekit
from flytekit.configuration import ImageConfig
from flytekit.core.python_auto_container import get_registerable_container_image
from flytekit.image_spec.image_spec import _F_IMG_ID, ImageBuildEngine, ImageSpec

import flytekitplugins_ispec
from flytekitplugins_ispec import IspecError
from support import entry_points_dir, run_python

NEEDED = ["ISPEC_TEST_REGISTRY", "ISPEC_TEST_BASE_BUSYBOX", "ISPEC_TEST_BASE_PYTHON", "ISPEC_TEST_PYPI_INDEX", "BUILDKIT_HOST"]

MANIFESTS = ",".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def need_env(test):
    missing = [n for n in NEEDED if not os.environ.get(n)]
    if missing and os.environ.get("CI") != "true":
        test.skipTest(f"no test environment ({', '.join(missing)} unset)")
    if missing:
        test.fail(f"CI=true but {', '.join(missing)} unset")


def registry_get(path, accept="", method="GET"):
    req = urllib.request.Request(f"http://{os.environ['ISPEC_TEST_REGISTRY']}/v2/{path}", method=method)
    if accept:
        req.add_header("Accept", accept)
    return urllib.request.urlopen(req, timeout=30)


def split_ref(image):
    """registry/repo:tag@digest as (repo, tag, digest)."""
    ref, _, digest = image.partition("@")
    repo, _, tag = ref.split("/", 1)[1].rpartition(":")
    return repo, tag, digest


def manifest_digest(repo, reference):
    """The registry's digest of repo's manifest at reference (a tag or a
    digest), from a HEAD request, as a container runtime resolves it."""
    with registry_get(f"{repo}/manifests/{reference}", MANIFESTS, "HEAD") as resp:
        return resp.headers["Docker-Content-Digest"]


def image_config(image):
    """The config of a pushed image, read from the registry."""
    repo, _, digest = split_ref(image)
    with registry_get(f"{repo}/manifests/{digest}", MANIFESTS) as resp:
        manifest = json.load(resp)
    with registry_get(f"{repo}/blobs/{manifest['config']['digest']}") as resp:
        return json.load(resp)["config"]


def image_env(image):
    return dict(e.split("=", 1) for e in image_config(image).get("Env", []))


def image_labels(image):
    return image_config(image).get("Labels") or {}


class EndToEnd(unittest.TestCase):
    def setUp(self):
        need_env(self)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.project = os.path.realpath(tmp.name)
        self.cwd = os.getcwd()
        os.chdir(self.project)
        self.addCleanup(os.chdir, self.cwd)
        self.registry = f"{os.environ['ISPEC_TEST_REGISTRY']}/flytekit-{time.time_ns()}"
        os.environ["ISPEC_FLYTEKIT_ADD_FLYTEKIT"] = "false"
        self.addCleanup(os.environ.pop, "ISPEC_FLYTEKIT_ADD_FLYTEKIT", None)
        ImageBuildEngine.register("ispec", flytekitplugins_ispec.IspecImageSpecBuilder(), priority=0)
        ImageBuildEngine._IMAGE_NAME_TO_REAL_NAME.clear()
        ImageBuildEngine.build.cache_clear()

    def spec(self, **kw):
        return ImageSpec(
            name="wf", registry=self.registry, base_image=os.environ["ISPEC_TEST_BASE_BUSYBOX"], builder="ispec", **kw
        )

    def assertExists(self, image):
        """image (ref:tag@digest) can be pulled: its tag and its digest
        name the same manifest in the registry."""
        self.assertRegex(image, r"^" + self.registry + r"/wf:[0-9a-f]{32}@sha256:[0-9a-f]{64}$")
        repo, tag, digest = split_ref(image)
        self.assertEqual(manifest_digest(repo, digest), digest)
        self.assertEqual(manifest_digest(repo, tag), digest, "the tag names the recorded digest")

    def test_build_through_ispec(self):
        pathlib.Path("data.txt").write_text("copied\n")
        spec = self.spec(env={"GREETING": "hi"}, commands=["echo built > /built.txt"], copy=[os.path.abspath("data.txt")])
        real = get_registerable_container_image(spec, ImageConfig())
        self.assertExists(real)
        self.assertEqual(spec.image_name(), real)
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

        # Built once; asked again, ispec finds it and returns the same image.
        self.assertEqual(flytekitplugins_ispec.IspecImageSpecBuilder().build_image(spec), real)

    def test_two_registrations_in_two_processes(self):
        # What `pyflyte register` does, twice, each in a new process: import
        # flytekit (which loads the installed plugin), make the ImageSpec
        # (source_root "." and a requirements file beside the module, named
        # through __file__), and serialize a task's container_image.
        wf = pathlib.Path("workflows")
        wf.mkdir()
        (wf / "__init__.py").write_text("")
        (wf / "requirements.txt").write_text("ispec-demo-a==1.0.0\n")
        (wf / "app.py").write_text(
            textwrap.dedent(
                f"""
                import json, os
                from pathlib import Path
                import flytekit
                from flytekit import ImageSpec
                from flytekit.configuration import ImageConfig
                from flytekit.core.python_auto_container import get_registerable_container_image

                image = ImageSpec(
                    name="wf",
                    registry={self.registry!r},
                    base_image={os.environ["ISPEC_TEST_BASE_PYTHON"]!r},
                    pip_index={os.environ["ISPEC_TEST_PYPI_INDEX"]!r},
                    builder="ispec",
                    source_root=".",
                    requirements=str(Path(__file__).parent / "requirements.txt"),
                )
                print(json.dumps({{"image": get_registerable_container_image(image, ImageConfig())}}))
                """
            )
        )
        dist = entry_points_dir()
        self.addCleanup(shutil.rmtree, dist)
        images = []
        for attempt in (1, 2):
            proc = run_python(
                "import runpy; runpy.run_path('workflows/app.py')", dist, cwd=self.project, ISPEC_FLYTEKIT_ADD_FLYTEKIT=""
            )
            self.assertEqual(proc.returncode, 0, f"registration {attempt}:\n{proc.stderr}")
            images.append(json.loads(proc.stdout.strip().splitlines()[-1])["image"])
            if attempt == 1:
                self.assertIn("#", proc.stderr, "the first registration shows the build's progress")
        self.assertEqual(images[0], images[1], "the second registration finds the first's image: same tag, same digest")
        for image in images:
            self.assertExists(image)
        self.assertEqual([p for p in os.listdir(".") if p.startswith(".ispec-flytekit-")], [])
        # The spec names no flytekit: the plugin installs the caller's.
        spec = json.loads(image_labels(images[0])["dev.ispec.spec"])["spec"]
        self.assertIn(f"flytekit=={flytekit.__version__}", spec.get("packages", []))

    def test_image_placeholders_resolve_to_the_image(self):
        # pyflyte register --image wf=spec.yaml: flytekit builds the YAML
        # ImageSpec and parses the returned name (ref:tag@digest) into
        # fqn "ref:tag" and version "sha256:...".
        pathlib.Path("wf.yaml").write_text(
            f"name: wf\nregistry: {self.registry}\nbase_image: {os.environ['ISPEC_TEST_BASE_BUSYBOX']}\nbuilder: ispec\n"
            "env: {PLACEHOLDER: '1'}\n"
        )
        cfg = ImageConfig.validate_image(None, "image", ("wf=wf.yaml",))
        image = get_registerable_container_image("{{.image.wf}}", cfg)
        self.assertExists(image)
        # flytekit 1.16.24 writes fqn:version of a digest with "@"; earlier
        # versions give ref:tag:sha256:..., which is why the README names
        # {{.image.wf}}.
        self.assertEqual(get_registerable_container_image("{{.image.wf.fqn}}:{{.image.wf.version}}", cfg), image)

    def test_failed_build_raises_and_pushes_nothing(self):
        spec = self.spec(commands=["echo the-reason >&2; exit 3"])
        with self.assertRaises(IspecError) as cm:
            ImageBuildEngine.build(spec)
        self.assertEqual((cm.exception.code, cm.exception.kind), (1, "failed"))
        self.assertIn("the-reason", str(cm.exception))
        with self.assertRaises(urllib.error.HTTPError):
            registry_get(f"{self.registry.split('/', 1)[1]}/wf/tags/list").close()

    def test_invalid_spec_raises(self):
        # build_image called as ImageBuildEngine.build calls it (which would
        # first fail on its own hash of a missing requirements file).
        builder = flytekitplugins_ispec.IspecImageSpecBuilder()
        for kw, field in [
            ({"apt_packages": ["curl; id"]}, "apt_packages"),
            ({"requirements": "missing.txt"}, "requirements"),
            ({"pip_index": "https://user:pw@example.com/simple"}, "pip_index"),
            ({"requirements": "/etc/hostname"}, "requirements"),
        ]:
            with self.subTest(field=field), self.assertRaises(IspecError) as cm:
                builder.build_image(self.spec(**kw))
            self.assertEqual(cm.exception.code, 2)
            self.assertIn(field, str(cm.exception))
            self.assertIn('ImageSpec "wf"', str(cm.exception), "named by its ImageSpec, not a temporary file")
            self.assertNotIn("pw@", str(cm.exception))

    def test_unreachable_registry_is_never_taken_for_exists(self):
        spec = ImageSpec(name="wf", registry="127.0.0.1:1/x", base_image="127.0.0.1:1/b:1", builder="ispec")
        with self.assertRaises(IspecError) as cm:
            ImageBuildEngine.build(spec)
        self.assertEqual((cm.exception.code, cm.exception.kind), (3, "unavailable"))


if __name__ == "__main__":
    unittest.main()
