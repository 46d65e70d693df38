"""End-to-end tests of the ispec flyte-sdk plugin: a real ``ispec`` (on
PATH) against the real BuildKit, registry and Python index, driven
through the stand-in of flyte-sdk 2.6.5 (tests/standin) as ``flyte.build``
and ``flyte deploy`` drive an image builder.

ISPEC_TEST_REGISTRY, ISPEC_TEST_BASE_PYTHON, ISPEC_TEST_PYPI_INDEX,
ISPEC_TEST_RUN, ISPEC_TEST_SERVER and BUILDKIT_HOST come from the Go test
TestFlytePlugin. Without them these tests skip, unless CI=true, when they
fail."""

import gzip
import io
import json
import os
import tarfile
import tempfile
import unittest
import urllib.request
from pathlib import Path

import flyte
import flyte._image as fi
import flyte._initialize as finit
from flyte._internal.imagebuild.image_builder import ImageBuildEngine, status_log

import ispec_flyte
from ispec_flyte import IspecError, IspecImageBuilder
from support import write_wheel

NEEDED = ["ISPEC_TEST_REGISTRY", "ISPEC_TEST_BASE_PYTHON", "ISPEC_TEST_PYPI_INDEX", "ISPEC_TEST_RUN", "ISPEC_TEST_SERVER", "BUILDKIT_HOST"]

MANIFESTS = ",".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)

SECRET_MARKER = "secret-marker-7d1f"


def registry_get(path, accept=""):
    req = urllib.request.Request(f"http://{os.environ['ISPEC_TEST_REGISTRY']}/v2/{path}")
    if accept:
        req.add_header("Accept", accept)
    return urllib.request.urlopen(req, timeout=60)


class PushedImage:
    """An image read back from the registry: its config and its layers'
    files (path without the leading /, bytes; later layers win)."""

    def __init__(self, pinned: str, files: bool = True):
        ref, _, digest = pinned.partition("@")
        repo = ref.split("/", 1)[1].rpartition(":")[0]
        manifest = self._json(f"{repo}/manifests/{digest}", MANIFESTS)
        if "manifests" in manifest:  # an index: the linux/amd64 image
            (m,) = [m for m in manifest["manifests"] if m.get("platform", {}).get("architecture") == "amd64"]
            manifest = self._json(f"{repo}/manifests/{m['digest']}", MANIFESTS)
        self.config = self._json(f"{repo}/blobs/{manifest['config']['digest']}")["config"]
        self.layers = [layer["digest"] for layer in manifest["layers"]]
        self.files = {}
        self.layer_bytes = []
        for layer in manifest["layers"] if files else []:
            with registry_get(f"{repo}/blobs/{layer['digest']}") as resp:
                blob = resp.read()
            data = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
            self.layer_bytes.append(data)
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                for m in tar.getmembers():
                    if m.isfile():
                        self.files[m.name.lstrip("./")] = tar.extractfile(m).read()

    @staticmethod
    def _json(path, accept=""):
        with registry_get(path, accept) as resp:
            return json.load(resp)

    def env(self):
        return dict(e.split("=", 1) for e in self.config.get("Env", []))

    def text(self, path):
        return self.files[path].decode()


class EndToEnd(unittest.TestCase):
    def setUp(self):
        missing = [n for n in NEEDED if not os.environ.get(n)]
        if missing and os.environ.get("CI") != "true":
            self.skipTest(f"no test environment ({', '.join(missing)} unset)")
        if missing:
            self.fail(f"CI=true but {', '.join(missing)} unset")
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.project = os.path.realpath(tmp.name)
        cwd = os.getcwd()
        os.chdir(self.project)
        self.addCleanup(os.chdir, cwd)
        self.addCleanup(setattr, finit, "_config", None)
        self.addCleanup(setattr, fi, "DIST_FOLDER", fi.DIST_FOLDER)
        self.index = os.environ["ISPEC_TEST_PYPI_INDEX"]
        self.run_id = os.environ["ISPEC_TEST_RUN"]
        self.registry = f"{os.environ['ISPEC_TEST_REGISTRY']}/flyte2-{self.run_id}"

    def use(self, builder):
        """flyte.init(image_builder=builder) with a fresh engine."""
        finit._config = finit._InitConfig(image_builder=builder)
        ImageBuildEngine.image_exists.cache_clear()
        ImageBuildEngine.build.cache_clear()
        status_log.clear()

    def base(self, name="every-layer"):
        return flyte.Image.from_base(os.environ["ISPEC_TEST_BASE_PYTHON"]).clone(
            registry=self.registry, name=name, extendable=True, python_version=(3, 11)
        )

    def test_every_layer_kind(self):
        Path("requirements.txt").write_text("ispec-demo-c==0.1.0\n")
        Path("src/pkg").mkdir(parents=True)
        Path("src/pkg/app.py").write_text("print('app')\n")
        Path("conf.ini").write_text("[app]\nmode = e2e\n")
        write_wheel(Path("dist"), "flyte", "2.6.5", {"flyte/__init__.py": "__version__ = '2.6.5-local'\n"})
        fi.DIST_FOLDER = Path(self.project) / "dist"
        os.environ["PIP_CONF"] = f"[global]\nindex-url = {self.index}\n# {SECRET_MARKER}\n"
        self.addCleanup(os.environ.pop, "PIP_CONF")
        # flyte's default secret, an env variable: the requirements layer
        # finds its index only in PIP_INDEX_URL, whose password is the marker.
        os.environ["IDX_URL"] = self.index.replace("://", f"://flyte:{SECRET_MARKER}@", 1)
        self.addCleanup(os.environ.pop, "IDX_URL")
        image = (
            self.base()
            .with_apt_packages("jq")
            .with_env_vars({"ISPEC_TEST_RUN": self.run_id, "PIP_CONFIG_FILE": "/etc/flyte/secrets", "MODE": "e2e"})
            .with_pip_packages(
                "ispec-demo-a==1.0.0", index_url=self.index, extra_index_urls=[self.index], pre=True, extra_args="--no-compile"
            )
            .with_pip_packages("ispec-demo-b==2.0.0", secret_mounts=flyte.Secret("pip_conf", mount="/etc/flyte/secrets"))
            .with_requirements("requirements.txt", secret_mounts=flyte.Secret("url", group="idx", as_env_var="PIP_INDEX_URL"))
            .with_local_v2()
            .with_workdir("/app")
            .with_env_vars({"DATA": "/app/data"})
            .with_source_folder(Path("src"))
            .with_source_file(Path("conf.ini"), dst="/etc/app/")
            .with_commands(
                [
                    "python -c 'import ispec_demo_a, ispec_demo_b, ispec_demo_c, flyte; print(flyte.__version__)' > versions.txt",
                    "jq --version >> versions.txt",
                    "test ! -e /etc/flyte/secrets",
                    'test -z "${PIP_INDEX_URL:-}"',
                ]
            )
        )
        self.assertEqual(len(image._layers), 11)
        self.use(IspecImageBuilder(stderr=io.StringIO()))
        first = flyte.build(image)
        self.assertRegex(first.uri, r"^" + self.registry + r"/every-layer:[0-9a-f]{32}@sha256:[0-9a-f]{64}$")
        self.assertIn("not found, building", " ".join(status_log))

        pushed = PushedImage(first.uri)
        env = pushed.env()
        self.assertEqual(pushed.config.get("WorkingDir"), "/app")
        self.assertEqual(env["MODE"], "e2e")
        self.assertEqual(env["ISPEC_TEST_RUN"], self.run_id)
        self.assertEqual(env["DATA"], "/app/data")
        self.assertEqual(env["VIRTUAL_ENV"], "/opt/venv")
        self.assertTrue(env["PATH"].startswith("/opt/venv/bin:"), env["PATH"])
        self.assertEqual(pushed.text("app/src/pkg/app.py"), "print('app')\n", "with_source_folder: ./src under the workdir")
        self.assertEqual(pushed.text("etc/app/conf.ini"), "[app]\nmode = e2e\n")
        versions = pushed.text("app/versions.txt")
        self.assertTrue(versions.startswith("2.6.5-local\njq-"), versions)
        site = "opt/venv/lib/python3.11/site-packages/"
        for dist in ("ispec_demo_a-1.0.0", "ispec_demo_b-2.0.0", "ispec_demo_c-0.1.0", "flyte-2.6.5"):
            self.assertIn(site + dist + ".dist-info/METADATA", pushed.files, dist)
        self.assertIn("usr/bin/jq", pushed.files)
        self.assertNotIn("etc/flyte/secrets", pushed.files)
        self.assertFalse(any(SECRET_MARKER.encode() in b for b in pushed.layer_bytes), "the secret is in no layer")
        self.assertEqual([p for p in os.listdir(".") if p.startswith(".ispec-flyte-")], [])

        # A second build, as a new `flyte deploy` makes it: the checker
        # finds the image through ispec's lookup and nothing is built.
        self.use(IspecImageBuilder(stderr=io.StringIO()))
        second = flyte.build(image)
        self.assertEqual(second.uri, first.uri)
        self.assertIn(f"Image {first.uri} already exists, skipping build", status_log)
        self.assertEqual(ispec_flyte.IspecImageChecker.answers[-1][2].state, "exists")

    def test_light_change_keeps_the_heavy_layers(self):
        # The user's cache strategy: a heavy layer first, a light one after.
        # Changing the light package gives an image that shares every layer
        # up to the heavy one with the first.
        def image(light):
            return (
                self.base("light")
                .with_env_vars({"ISPEC_TEST_RUN": self.run_id})
                .with_pip_packages("ispec-demo-b==2.0.0", index_url=self.index)
                .with_pip_packages(light, index_url=self.index)
            )

        self.use(IspecImageBuilder(stderr=io.StringIO()))
        one = PushedImage(flyte.build(image("ispec-demo-a==1.0.0")).uri, files=False)
        progress = io.StringIO()
        self.use(IspecImageBuilder(stderr=progress))
        two = PushedImage(flyte.build(image("ispec-demo-a==1.1.0")).uri, files=False)
        self.assertEqual(len(one.layers), len(two.layers))
        self.assertEqual(one.layers[:-1], two.layers[:-1], "the base, venv and heavy layers are shared")
        self.assertNotEqual(one.layers[-1], two.layers[-1])
        # ispec's plain progress: "#6 [ispec] layers[1] packages ..." then "#6 CACHED".
        shown = progress.getvalue()
        self.assertRegex(shown, r"(?m)^#(\d+) \[ispec\] layers\[1\] packages ispec-demo-b==2\.0\.0\n(?:.*\n)*?#\1 CACHED$",
                         "the heavy layer came from the cache")
        self.assertNotRegex(shown, r"(?m)^#(\d+) \[ispec\] layers\[2\] packages .*\n(?:.*\n)*?#\1 CACHED$")

    def test_through_the_service(self):
        # Built through `ispec serve`; the CLI's lookup then finds the same
        # image, and the service's lookup answers the checker.
        Path("app.py").write_text("print('served')\n")
        image = (
            self.base("served")
            .with_env_vars({"ISPEC_TEST_RUN": self.run_id})
            .with_pip_packages("ispec-demo-b==2.0.0", index_url=self.index)
            .with_source_file(Path("app.py"), dst="/srv/")
        )
        server = os.environ["ISPEC_TEST_SERVER"]
        self.use(IspecImageBuilder(server=server, stderr=io.StringIO()))
        built = flyte.build(image)
        self.assertRegex(built.uri, r"@sha256:[0-9a-f]{64}$")
        self.assertEqual(IspecImageBuilder().lookup(image).pinned, built.uri)
        self.assertEqual(PushedImage(built.uri).text("srv/app.py"), "print('served')\n")
        self.use(IspecImageBuilder(server=server, stderr=io.StringIO()))
        self.assertEqual(flyte.build(image).uri, built.uri)
        self.assertIn(f"Image {built.uri} already exists, skipping build", status_log)

    def test_uv_project_reaches_ispecs_uv_layer(self):
        # The base has no uv (nor can it be installed here): ispec's uv
        # layer runs and fails with its advice, naming the layer.
        Path("proj").mkdir()
        Path("proj/pyproject.toml").write_text("[project]\nname = 'p'\nversion = '1'\nrequires-python = '>=3.11'\n")
        Path("proj/uv.lock").write_text("version = 1\nrequires-python = '>=3.11'\n")
        image = self.base("uv").with_env_vars({"ISPEC_TEST_RUN": self.run_id}).with_uv_project("proj/pyproject.toml")
        self.use(IspecImageBuilder(stderr=io.StringIO()))
        with self.assertRaises(IspecError) as cm:
            flyte.build(image)
        self.assertEqual(cm.exception.code, 1)
        self.assertIn("layers[1]", str(cm.exception))
        self.assertIn("uv", str(cm.exception))

    def test_unreachable_registry_is_never_taken_for_exists(self):
        # flyte-sdk takes an image for existing when every checker raises;
        # ispec's checker does not raise: the build asks again and fails
        # with the registry's reason.
        image = (
            flyte.Image.from_base(os.environ["ISPEC_TEST_BASE_PYTHON"])
            .clone(registry="127.0.0.1:1/x", name="nowhere", extendable=True)
            .with_env_vars({"A": "1"})
        )
        self.use(IspecImageBuilder(stderr=io.StringIO()))
        with self.assertRaises(IspecError) as cm:
            flyte.build(image)
        self.assertEqual((cm.exception.code, cm.exception.kind), (3, "unavailable"))
        self.assertEqual(ispec_flyte.IspecImageChecker.answers[-1][2].state, "unknown")
        self.assertNotIn("assuming it exists", " ".join(status_log))


if __name__ == "__main__":
    unittest.main()
