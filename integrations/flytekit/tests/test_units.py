"""Unit tests of the ispec flytekit plugin: no BuildKit, no registry.

They run against the stand-in of flytekit 1.16.24 (tests/standin, see its
docstring) and, where ispec would be called, a fake ispec that records what
it was given. The project's Go test TestFlytekitPluginUnits runs them.
"""

import json
import os
import pathlib
import shutil
import tempfile
import tomllib
import unittest

from flytekit.constants import CopyFileDetection
from flytekit.image_spec.default_builder import get_flytekit_for_pypi
from flytekit.image_spec.image_spec import _F_IMG_ID, ImageBuildEngine, ImageSpec

import flytekitplugins_ispec
from flytekitplugins_ispec import IspecError, IspecImageSpecBuilder, spec_document
from support import ROOT, entry_points_dir, fake_ispec, record, run_python

STANDIN_VERSION = "1.16.24"


class Registration(unittest.TestCase):
    """How flytekit finds the builder: its entry point, loaded by `import
    flytekit` in a new process, and its priority."""

    @classmethod
    def setUpClass(cls):
        cls.dist = entry_points_dir()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dist)

    def probe(self, **env):
        code = (
            "import json, flytekit\n"
            "from flytekit import ImageSpec\n"
            "from flytekit.image_spec.image_spec import ImageBuildEngine\n"
            "reg = ImageBuildEngine.get_registry()\n"
            "print(json.dumps({'priorities': {k: v[1] for k, v in reg.items()},"
            " 'unnamed': ImageSpec(name='a').builder, 'named': ImageSpec(name='a', builder='ispec').builder,"
            " 'type': type(reg['ispec'][0]).__name__}))\n"
        )
        proc = run_python(code, self.dist, **env)
        return proc

    def test_entry_point(self):
        meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
        self.assertEqual(meta["project"]["entry-points"]["flytekit.plugins"], {"ispec": "flytekitplugins_ispec"})

    def test_below_flytekits_default_builder(self):
        proc = self.probe(ISPEC_FLYTEKIT_DEFAULT_BUILDER="")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        got = json.loads(proc.stdout)
        self.assertEqual(got["type"], "IspecImageSpecBuilder", "import flytekit loads the plugin")
        self.assertLess(got["priorities"]["ispec"], got["priorities"]["default"])
        self.assertEqual(got["unnamed"], "default", "an ImageSpec naming no builder keeps flytekit's")
        self.assertEqual(got["named"], "ispec")

    def test_opt_in_makes_ispec_the_default(self):
        proc = self.probe(ISPEC_FLYTEKIT_DEFAULT_BUILDER="true")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        got = json.loads(proc.stdout)
        self.assertEqual(got["unnamed"], "ispec")
        self.assertGreater(got["priorities"]["ispec"], 5, "above envd's default priority too")

    def test_opt_in_value_must_be_a_boolean(self):
        proc = self.probe(ISPEC_FLYTEKIT_DEFAULT_BUILDER="sometimes")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("ISPEC_FLYTEKIT_DEFAULT_BUILDER='sometimes': expected true or false", proc.stderr)


class SpecDocument(unittest.TestCase):
    def test_fields_unchanged_and_image_id_added(self):
        spec = ImageSpec(
            name="wf",
            registry="ghcr.io/Org",
            python_version="3.11",
            packages=["pandas==2.2.2", "flytekit==1.13.5"],
            apt_packages=["git"],
            env={"A": "1"},
            pip_secret_mounts=[("pip.conf", "/etc/pip.conf")],
            builder="ispec",
            platform="linux/amd64,linux/arm64",
            source_root=".",
            runtime_packages=["rich"],
            builder_config={"uv_image": "x"},
        )
        doc = spec_document(spec, add_flytekit=True)
        self.assertEqual(doc["registry"], "ghcr.io/org")
        self.assertEqual(doc["packages"], ["pandas==2.2.2", "flytekit==1.13.5"], "the spec's own flytekit is kept")
        self.assertEqual(doc["python_version"], "3.11")
        self.assertEqual(doc["platform"], "linux/amd64,linux/arm64")
        self.assertEqual(doc["pip_secret_mounts"], [["pip.conf", "/etc/pip.conf"]])
        self.assertEqual(doc["builder"], "ispec")
        self.assertEqual(doc["source_copy_mode"], "LOADED_MODULES", "flytekit's default for a source_root")
        self.assertEqual(doc["env"], {"A": "1", _F_IMG_ID: spec.id})
        self.assertEqual(spec.env, {"A": "1"}, "the ImageSpec itself is not changed")
        self.assertNotIn("cuda", doc, "unset fields are left out")
        self.assertNotIn("runtime_packages", doc, "installed when the task starts, not in the image")
        self.assertNotIn("builder_config", doc)
        self.assertFalse([k for k in doc if k.startswith("_")])

    def test_nested_image_spec_base(self):
        base = ImageSpec(name="base", registry="r.example/x")
        doc = spec_document(ImageSpec(name="c", registry="r.example/x", base_image=base))
        self.assertEqual(doc["base_image"], base.image_name())

    def test_flytekit_added_pinned_to_the_running_version(self):
        # As flytekit's builder does (default_builder.get_flytekit_for_pypi).
        doc = spec_document(ImageSpec(name="wf", packages=["pandas==2.2.2"]), add_flytekit=True)
        self.assertEqual(doc["packages"], ["pandas==2.2.2", f"flytekit=={STANDIN_VERSION}"])
        doc = spec_document(ImageSpec(name="wf"), add_flytekit=True)
        self.assertEqual(doc["packages"], [f"flytekit=={STANDIN_VERSION}"])
        self.assertEqual(flytekitplugins_ispec.flytekit_requirement(), get_flytekit_for_pypi())

    def test_flytekit_not_added_when_named_or_turned_off(self):
        with tempfile.TemporaryDirectory() as d:
            req = pathlib.Path(d, "requirements.txt")
            req.write_text("pandas==2.2.2\nflytekit>=1.13\n")
            cases = {
                "packages": ImageSpec(name="wf", packages=["flytekit~=1.16"]),
                "requirements": ImageSpec(name="wf", requirements=str(req)),
                "uv.lock": ImageSpec(name="wf", requirements=str(pathlib.Path(d, "uv.lock"))),
            }
            for what, spec in cases.items():
                with self.subTest(named_in=what):
                    self.assertNotIn(f"flytekit=={STANDIN_VERSION}", spec_document(spec, add_flytekit=True).get("packages", []))
        self.assertNotIn("packages", spec_document(ImageSpec(name="wf"), add_flytekit=False))

    def test_option_and_environment_turn_it_off(self):
        spec = ImageSpec(name="wf")
        with tempfile.TemporaryDirectory() as d:
            cwd = os.getcwd()
            os.chdir(d)
            try:
                self.assertIn("packages", IspecImageSpecBuilder().document(spec))
                self.assertNotIn("packages", IspecImageSpecBuilder(add_flytekit=False).document(spec))
                os.environ["ISPEC_FLYTEKIT_ADD_FLYTEKIT"] = "false"
                try:
                    self.assertNotIn("packages", IspecImageSpecBuilder().document(spec))
                    self.assertIn("packages", IspecImageSpecBuilder(add_flytekit=True).document(spec))
                finally:
                    del os.environ["ISPEC_FLYTEKIT_ADD_FLYTEKIT"]
            finally:
                os.chdir(cwd)


class InProject(unittest.TestCase):
    """A temporary project folder as the current folder."""

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.project = os.path.realpath(tmp.name)
        self.cwd = os.getcwd()
        os.chdir(self.project)
        self.addCleanup(os.chdir, self.cwd)
        for p in ["requirements.txt", "wf/requirements.txt", "wf/__init__.py", "data/a.txt", "pip.conf"]:
            pathlib.Path(p).parent.mkdir(parents=True, exist_ok=True)
            pathlib.Path(p).write_text("x\n")
        self.builder = IspecImageSpecBuilder(add_flytekit=False)


class Paths(InProject):
    """Absolute paths under the project are written relative to it, as
    flytekit resolves relative ones: against the current folder."""

    def test_absolute_paths_under_the_project_are_relativized(self):
        module_file = os.path.join(self.project, "wf", "__init__.py")  # what __file__ is
        spec = ImageSpec(
            name="wf",
            source_root=self.project,  # as pyflyte register sets it for a non-fast registration
            requirements=str(pathlib.Path(module_file).parent / "requirements.txt"),
            copy=[os.path.join(self.project, "data"), "wf/__init__.py"],
            pip_secret_mounts=[(os.path.join(self.project, "pip.conf"), "/etc/pip.conf")],
        )
        doc = self.builder.document(spec)
        self.assertEqual(doc["source_root"], ".")
        self.assertEqual(doc["requirements"], "wf/requirements.txt")
        self.assertEqual(doc["copy"], ["data", "wf/__init__.py"])
        self.assertEqual(doc["pip_secret_mounts"], [["pip.conf", "/etc/pip.conf"]])

    def test_relative_paths_are_kept(self):
        doc = self.builder.document(ImageSpec(name="wf", source_root=".", requirements="./requirements.txt", copy=["data/a.txt"]))
        self.assertEqual((doc["source_root"], doc["requirements"], doc["copy"]), (".", "./requirements.txt", ["data/a.txt"]))

    def test_project_reached_through_a_symlink(self):
        link = tempfile.mktemp(prefix="ispec-flytekit-link-")
        os.symlink(self.project, link)
        self.addCleanup(os.unlink, link)
        doc = self.builder.document(ImageSpec(name="wf", requirements=os.path.join(link, "wf", "requirements.txt")))
        self.assertEqual(doc["requirements"], "wf/requirements.txt")

    def test_paths_outside_the_project_are_an_error(self):
        outside = tempfile.NamedTemporaryFile(suffix=".txt")
        self.addCleanup(outside.close)
        cases = [
            ("requirements", ImageSpec(name="wf", requirements=outside.name), outside.name),
            ("source_root", ImageSpec(name="wf", source_root=os.path.dirname(self.project)), os.path.dirname(self.project)),
            ("copy[1]", ImageSpec(name="wf", copy=["data", "../elsewhere"]), "../elsewhere"),
            ("pip_secret_mounts[0]", ImageSpec(name="wf", pip_secret_mounts=[("/etc/hostname", "/x")]), "/etc/hostname"),
        ]
        for field, spec, path in cases:
            with self.subTest(field=field), self.assertRaises(IspecError) as cm:
                self.builder.document(spec)
            msg = str(cm.exception)
            self.assertEqual(cm.exception.code, 2)
            self.assertIn(f'ImageSpec "wf": {field} {path} is outside the project {self.project}', msg)

    def test_an_uncopied_source_root_may_be_anywhere(self):
        spec = ImageSpec(name="wf", source_root="/", source_copy_mode=CopyFileDetection.NO_COPY)
        doc = self.builder.document(spec)
        self.assertNotIn("source_root", doc)
        self.assertEqual(doc["source_copy_mode"], "NO_COPY")


class Recorder:
    """A stderr that calls on_text with everything written so far."""

    def __init__(self, on_text=None):
        self.text, self.on_text = "", on_text

    def write(self, s):
        self.text += s
        if self.on_text:
            self.on_text(self.text)

    def flush(self):
        pass


REF = "r.example/x/wf:0123456789abcdef0123456789abcdef"
DIGEST = "sha256:" + "ab" * 32


class ProjectLock(InProject):
    def test_a_spec_hashing_the_project_runs_alone(self):
        # Every run writes its spec file into the project; a spec that
        # hashes the project folder itself (source_root ".", a copy of ".")
        # must not hash another run's: it holds the project's lock alone.
        import fcntl

        from flytekitplugins_ispec.builder import _hashes_project, _project_lock, lock_path

        self.assertTrue(_hashes_project({"source_root": "."}))
        self.assertTrue(_hashes_project({"copy": ["data", "./"]}))
        self.assertFalse(_hashes_project({"source_root": "wf", "copy": ["data/a.txt"]}))
        self.assertFalse(_hashes_project({}))
        for held, other, blocked in [(False, fcntl.LOCK_SH, False), (False, fcntl.LOCK_EX, True), (True, fcntl.LOCK_SH, True)]:
            with self.subTest(exclusive=held, other=other), _project_lock(self.project, held):
                fd = os.open(lock_path(self.project), os.O_RDWR)
                try:
                    if blocked:
                        with self.assertRaises(BlockingIOError):
                            fcntl.flock(fd, other | fcntl.LOCK_NB)
                    else:
                        fcntl.flock(fd, other | fcntl.LOCK_NB)
                finally:
                    os.close(fd)


class WithFakeIspec(InProject):
    """What the plugin gives ispec and does with its answers."""

    def setUp(self):
        super().setUp()
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.bin = tmp.name
        self.capture = os.path.join(self.bin, "capture.json")
        ImageBuildEngine._IMAGE_NAME_TO_REAL_NAME.clear()
        ImageBuildEngine.build.cache_clear()
        self.addCleanup(ImageBuildEngine._IMAGE_NAME_TO_REAL_NAME.clear)
        self.addCleanup(ImageBuildEngine.build.cache_clear)

    def register(self, plan, **builder_kw):
        ImageBuildEngine.register("ispec", IspecImageSpecBuilder(ispec=fake_ispec(self.bin, plan), **builder_kw), priority=0)
        self.addCleanup(importlib_reload_plugin)

    def captured(self):
        return json.loads(pathlib.Path(self.capture).read_text())

    def test_build_records_the_image_ispec_returned(self):
        self.register({"capture": self.capture, "stdout": record(REF, DIGEST, "found")}, add_flytekit=False)
        spec = ImageSpec(name="wf", registry="r.example/x", builder="ispec", source_root=".", requirements=os.path.abspath("requirements.txt"))
        flytekits_name = spec.image_name()
        ImageBuildEngine.build(spec)
        self.assertEqual(spec.image_name(), f"{REF}@{DIGEST}", "found or built, the task gets ispec's image")
        self.assertNotEqual(flytekits_name, spec.image_name())

        got = self.captured()
        self.assertEqual(got["argv"][:2], ["build", "--json"])
        self.assertEqual(got["cwd"], self.project)
        self.assertEqual(os.path.dirname(got["spec_path"]), self.project, "the spec is written in the project")
        self.assertRegex(os.path.basename(got["spec_path"]), r"^\.ispec-flytekit-.*\.json$")
        self.assertEqual(got["spec"]["requirements"], "requirements.txt")
        self.assertEqual([p for p in os.listdir(".") if p.startswith(".ispec-flytekit-")], [], "spec file left behind")

    def test_should_build_is_always_true(self):
        # flytekit records build_image's name only when should_build is
        # true; the lookup is build_image's (ispec build asks the registry).
        builder = IspecImageSpecBuilder(ispec="/nonexistent/ispec")
        self.assertTrue(builder.should_build(ImageSpec(name="wf", builder="ispec")))
        self.assertTrue(builder.should_build(ImageSpec(name="wf", builder="ispec").force_push()))

    def test_force_push(self):
        self.register({"capture": self.capture, "stdout": record(REF, DIGEST)}, add_flytekit=False)
        ImageBuildEngine.build(ImageSpec(name="wf", registry="r.example/x", builder="ispec").force_push())
        self.assertIn("--force", self.captured()["argv"])

    def test_progress_is_passed_on_as_it_comes(self):
        # The fake ispec writes its progress, then waits until the progress
        # has reached the caller's stderr before it finishes: a plugin that
        # held stderr back until ispec exits fails here.
        release = os.path.join(self.bin, "release")
        stderr = Recorder(lambda text: "#1 resolve" in text and pathlib.Path(release).touch())
        self.register(
            {"stderr": "#1 resolve SPEC\n", "wait_for": release, "stdout": record(REF, DIGEST)},
            add_flytekit=False,
            stderr=stderr,
        )
        spec = ImageSpec(name="wf", registry="r.example/x", builder="ispec")
        ImageBuildEngine.build(spec)
        self.assertEqual(spec.image_name(), f"{REF}@{DIGEST}")
        self.assertIn('#1 resolve ImageSpec "wf"', stderr.text, "the temporary spec file is named by its ImageSpec")

    def test_ispec_error_is_raised_with_its_message(self):
        err = {"class": "invalid", "message": "SPEC:1: requirements: missing.txt does not exist"}
        self.register({"stdout": record("", "", "", err), "stderr": "ispec: SPEC:1: requirements: missing.txt does not exist\n", "code": 2}, stderr=Recorder())
        with self.assertRaises(IspecError) as cm:
            ImageBuildEngine.build(ImageSpec(name="wf", registry="r.example/x", builder="ispec"))
        self.assertEqual((cm.exception.code, cm.exception.kind), (2, "invalid"))
        self.assertEqual(str(cm.exception), 'ImageSpec "wf": requirements: missing.txt does not exist')

    def test_ispec_that_prints_no_record(self):
        self.register({"stderr": "one\ntwo: the reason\n", "code": 3}, stderr=Recorder())
        with self.assertRaises(IspecError) as cm:
            ImageBuildEngine.build(ImageSpec(name="wf", registry="r.example/x", builder="ispec"))
        self.assertEqual(cm.exception.code, 3)
        self.assertIn("two: the reason", str(cm.exception))


def importlib_reload_plugin():
    """Registers the plugin's own builder again (tests replace it)."""
    import importlib

    importlib.reload(flytekitplugins_ispec)


if __name__ == "__main__":
    unittest.main()
