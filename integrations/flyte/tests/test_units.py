"""Unit tests of the ispec flyte-sdk plugin, against the stand-in of
flyte-sdk 2.6.5 (tests/standin) and a fake ispec: each layer kind as its
spec item, what is refused, the builder's and checker's calls to ispec
and what they make of its answers, and the plugin loaded from its entry
point as flyte-sdk loads it."""

import asyncio
import io
import json
import os
import shutil
import tempfile
import textwrap
import unittest
from pathlib import Path

import flyte
import flyte._image as fi
import flyte._initialize as finit
from flyte._build import ImageBuild
from flyte._internal.imagebuild.image_builder import ImageBuildEngine, status_log

import ispec_flyte
from ispec_flyte import IspecError, IspecImageBuilder, spec_document
from support import FakeIspec, build_record, entry_points_dir, exists_record, run_python, write_wheel

REF = "registry.test/ns/app:0123456789abcdef0123456789abcdef"
DIGEST = "sha256:" + "ab" * 32


class Project(unittest.TestCase):
    """A test in a fresh project folder (the current folder)."""

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.project = os.path.realpath(tmp.name)
        cwd = os.getcwd()
        os.chdir(self.project)
        self.addCleanup(os.chdir, cwd)
        finit._config = None
        self.addCleanup(setattr, finit, "_config", None)

    def write(self, path: str, text: str = "x\n") -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    def image(self, base: str = "python:3.11-slim") -> flyte.Image:
        return flyte.Image.from_base(base).clone(registry="registry.test/ns", name="app", extendable=True)

    def layers(self, image) -> list:
        return spec_document(image).doc.get("layers", [])


class LayerItems(Project):
    def test_each_layer_kind_is_one_item(self):
        self.write("requirements.txt", "ispec-demo-a==1.0.0\n")
        self.write("src/app.py")
        self.write("conf.ini")
        self.write("proj/pyproject.toml", "[project]\nname = 'p'\nversion = '1'\n")
        self.write("proj/uv.lock", "version = 1\n")
        write_wheel(Path("dist"), "flyte", "2.6.5", {"flyte/__init__.py": ""})
        self.addCleanup(setattr, fi, "DIST_FOLDER", fi.DIST_FOLDER)
        fi.DIST_FOLDER = Path(self.project) / "dist"
        cases = [
            (lambda i: i.with_apt_packages("git", "jq"), {"apt_packages": ["git", "jq"]}),
            (lambda i: i.with_pip_packages("torch==2.4.0", "rich"), {"packages": ["torch==2.4.0", "rich"]}),
            (
                lambda i: i.with_pip_packages(
                    "a==1", index_url="https://idx/simple", extra_index_urls=["https://x/simple", "https://y/simple"],
                    pre=True, extra_args="--no-deps",
                ),
                {"packages": ["a==1"], "pip_index": "https://idx/simple",
                 "pip_extra_index_url": ["https://x/simple", "https://y/simple"], "pre": True, "pip_extra_args": "--no-deps"},
            ),
            (lambda i: i.with_pip_packages("a", extra_index_urls="https://x/simple"), {"packages": ["a"], "pip_extra_index_url": ["https://x/simple"]}),
            (lambda i: i.with_requirements("requirements.txt"), {"requirements": "requirements.txt"}),
            (lambda i: i.with_requirements(Path(self.project) / "requirements.txt", index_url="https://idx/simple"),
             {"requirements": "requirements.txt", "pip_index": "https://idx/simple"}),
            (lambda i: i.with_local_v2(), {"python_wheels": "dist"}),
            (lambda i: i.with_uv_project("proj/pyproject.toml"), {"uv_project": {"pyproject": "proj/pyproject.toml", "uvlock": "proj/uv.lock"}}),
            (lambda i: i.with_commands(["echo a", "echo b"]), {"commands": ["echo a", "echo b"]}),
            (lambda i: i.with_env_vars({"MODE": "prod", "N": "1"}), {"env": {"MODE": "prod", "N": "1"}}),
            (lambda i: i.with_workdir("/app"), {"workdir": "/app"}),
            (lambda i: i.with_source_folder(Path("src")), {"copy": [{"src": "src", "dst": "./src"}]}),
            (lambda i: i.with_source_folder(Path("src"), dst="/opt/src"), {"copy": [{"src": "src", "dst": "/opt/src"}]}),
            (lambda i: i.with_source_folder(Path("src"), copy_contents_only=True), {"copy": [{"src": "src", "dst": "."}]}),
            (lambda i: i.with_source_file(Path("conf.ini")), {"copy": [{"src": "conf.ini", "dst": "./"}]}),
            (lambda i: i.with_source_file(Path("conf.ini"), dst="/etc/app/app.ini"), {"copy": [{"src": "conf.ini", "dst": "/etc/app/app.ini"}]}),
        ]
        for add, want in cases:
            with self.subTest(want=want):
                self.assertEqual(self.layers(add(self.image())), [want])

    def test_layers_keep_their_order(self):
        self.write("app.py")
        image = (
            self.image()
            .with_pip_packages("torch==2.4.0")
            .with_pip_packages("rich==13.8.0")
            .with_source_file(Path("app.py"), dst="/app/")
            .with_workdir("/app")
        )
        self.assertEqual(
            self.layers(image),
            [{"packages": ["torch==2.4.0"]}, {"packages": ["rich==13.8.0"]}, {"copy": [{"src": "app.py", "dst": "/app/"}]}, {"workdir": "/app"}],
        )

    def test_several_files_are_one_item_each(self):
        self.write("a.txt")
        self.write("b.txt")
        image = self.image().with_source_file([Path("a.txt"), Path("b.txt")], dst="/data/")
        self.assertEqual(
            self.layers(image), [{"copy": [{"src": "a.txt", "dst": "/data/"}]}, {"copy": [{"src": "b.txt", "dst": "/data/"}]}]
        )

    def test_env_names_a_variable_of_its_own_layer(self):
        # Dockerfile sets one ENV line after the other; an ispec env item
        # expands against the env before it: split where it matters.
        image = self.image().with_env_vars({"A": "1", "B": "x", "C": "${A}/c", "D": "$PATH:$C"})
        self.assertEqual(self.layers(image), [{"env": {"A": "1", "B": "x"}}, {"env": {"C": "${A}/c"}}, {"env": {"D": "$PATH:$C"}}])

    def test_relative_workdir_after_an_absolute_one(self):
        image = self.image().with_workdir("/srv").with_workdir("app")
        self.assertEqual(self.layers(image), [{"workdir": "/srv"}, {"workdir": "/srv/app"}])

    def test_image_fields(self):
        image = flyte.Image.from_base("python:3.12-slim").clone(
            registry="ghcr.io/me", name="train", extendable=True, python_version=(3, 12), platform=("linux/amd64", "linux/arm64")
        ).with_pip_packages("a")
        doc = spec_document(image).doc
        self.assertEqual(
            {k: v for k, v in doc.items() if k != "layers"},
            {"base_image": "python:3.12-slim", "registry": "ghcr.io/me", "name": "train", "python_version": "3.12",
             "platform": ["linux/amd64", "linux/arm64"], "user": "root"},
        )

    def test_debian_base_released(self):
        image = flyte.Image.from_debian_base(python_version=(3, 11), registry="ghcr.io/me", name="wf").with_pip_packages("a")
        doc = spec_document(image).doc
        self.assertEqual(doc["base_image"], "ghcr.io/flyteorg/flyte:py3.11-v" + flyte.__version__)
        self.assertEqual(doc["platform"], ["linux/amd64", "linux/arm64"])
        self.assertEqual(doc["user"], "root")
        self.assertEqual(doc["layers"], [{"packages": ["a"]}])

    def test_debian_base_development(self):
        # A development flyte-sdk builds the default image itself: labels,
        # the flyte user, its home, env, apt packages, the local wheels.
        import flyte._version as fv

        self.addCleanup(setattr, fv, "__version__", fv.__version__)
        fv.__version__ = "2.6.6.dev3"
        write_wheel(Path("dist"), "flyte", "2.6.6.dev3", {"flyte/__init__.py": ""})
        self.addCleanup(setattr, fi, "DIST_FOLDER", fi.DIST_FOLDER)
        fi.DIST_FOLDER = Path(self.project) / "dist"
        image = flyte.Image.from_debian_base(python_version=(3, 11), registry="ghcr.io/me", name="wf")
        doc = spec_document(image).doc
        self.assertEqual(doc["base_image"], "python:3.11-slim-bookworm")
        self.assertEqual(doc["user"], "flyte")
        self.assertEqual(doc["labels"], {"org.opencontainers.image.authors": "Union.AI <info@union.ai>",
                                         "org.opencontainers.image.source": "https://github.com/flyteorg/flyte"})
        kinds = [next(iter(item)) for item in doc["layers"]]
        self.assertEqual(kinds, ["commands", "workdir", "env", "apt_packages", "python_wheels", "workdir"])
        self.assertIn("useradd", doc["layers"][0]["commands"][0])
        self.assertEqual(doc["layers"][2]["env"]["PATH"], "/opt/venv/bin:$PATH")
        self.assertEqual(doc["layers"][-1], {"workdir": "/home/flyte"}, "flyte-sdk ends in the flyte user's home")

    def test_pip_secret_mount(self):
        image = self.image().with_pip_packages("private-pkg", secret_mounts=flyte.Secret("pip_conf", mount="/etc/flyte/secrets"))
        m = spec_document(image)
        self.assertEqual(len(m.secrets), 1)
        src = m.secrets[0].source
        self.assertTrue(src.startswith(".ispec-flyte-secret-"))
        self.assertNotIn("pip_secret_mounts", m.doc, "the secret is mounted in its layer only")
        self.assertEqual(m.doc["layers"], [{"packages": ["private-pkg"], "pip_secret_mounts": [[src, "/etc/flyte/secrets"]]}])

    def test_pip_secret_env(self):
        # flyte's default: a Secret without mount is an env variable,
        # GROUP_KEY upper-cased, or the as_env_var it names.
        image = (self.image()
                 .with_pip_packages("a", secret_mounts=flyte.Secret("token", group="idx"))
                 .with_requirements(self.write("requirements.txt", "b\n"),
                                    secret_mounts=[flyte.Secret(group="aws", key="id", as_env_var="AWS_ACCESS_KEY_ID")]))
        m = spec_document(image)
        self.assertEqual([s.env for s in m.secrets], ["IDX_TOKEN", "AWS_ACCESS_KEY_ID"])
        (a, b) = m.doc["layers"]
        self.assertEqual(a["pip_secret_mounts"], [{"source": m.secrets[0].source, "env": "IDX_TOKEN"}])
        self.assertEqual(b["pip_secret_mounts"], [{"source": m.secrets[1].source, "env": "AWS_ACCESS_KEY_ID"}])


class Refused(Project):
    def assertRefused(self, image, *words):
        with self.assertRaises(IspecError) as cm:
            spec_document(image)
        self.assertEqual(cm.exception.code, 2)
        for w in words:
            self.assertIn(w, str(cm.exception))

    def test_refused(self):
        self.write("proj/pyproject.toml")
        self.write("proj/uv.lock")
        self.write("proj/poetry.lock")
        self.write("other/pyproject.toml")
        outside = tempfile.TemporaryDirectory()
        self.addCleanup(outside.cleanup)
        far = Path(outside.name) / "data.txt"
        far.write_text("x")
        cases = [
            (self.image().with_poetry_project("proj/pyproject.toml"), ["PoetryProject", "no layer of this kind"]),
            (self.image().with_uv_project("proj/pyproject.toml", project_install_mode="install_project"), ["install_project"]),
            (self.image().with_uv_project("other/pyproject.toml"), ["uv.lock"]),
            (self.image().with_uv_project("proj/pyproject.toml", index_url="https://i/simple"), ["index_url"]),
            (self.image().with_apt_packages("git", secret_mounts=flyte.Secret("k", mount="/etc/flyte/secrets")), ["AptPackages", "only while pip"]),
            (self.image().with_commands(["make"], secret_mounts="k"), ["Commands", "only while pip"]),
            (self.image().with_source_file(far), ["outside the project", str(far)]),
            (self.image().with_workdir("app"), ["relative"]),
            (self.image().with_pip_packages(), ["no packages"]),
            (self.image().with_dockerignore(Path("ignore.txt")), [".dockerignore"]),
            (self.image().clone(addl_layer=fi._DockerLines(("RUN curl x",))), ["RUN curl x", "LABEL"]),
            (flyte.Image.from_dockerfile("Dockerfile", registry="r", name="n"), ["Dockerfile"]),
        ]
        for image, words in cases:
            with self.subTest(words=words):
                self.assertRefused(image, *words)

    def test_wheels_folder_must_hold_only_the_package(self):
        write_wheel(Path("dist"), "flyte", "2.6.5", {"flyte/__init__.py": ""})
        write_wheel(Path("dist"), "flyteplugins-x", "0.1", {"flyteplugins_x/__init__.py": ""})
        self.addCleanup(setattr, fi, "DIST_FOLDER", fi.DIST_FOLDER)
        fi.DIST_FOLDER = Path(self.project) / "dist"
        self.assertRefused(self.image().with_local_v2(), "flyteplugins_x-0.1", "keep only the flyte wheel")


class WithFakeIspec(Project):
    def fake(self, plan: dict) -> FakeIspec:
        d = tempfile.mkdtemp(prefix="fake-ispec-")
        self.addCleanup(shutil.rmtree, d)
        return FakeIspec(d, plan)

    def builder(self, fake: FakeIspec, **kw) -> IspecImageBuilder:
        return IspecImageBuilder(ispec=fake.path, stderr=io.StringIO(), **kw)

    def engine(self, builder: IspecImageBuilder):
        """flyte.init(image_builder=builder), and a fresh engine cache."""
        finit._config = finit._InitConfig(image_builder=builder)
        ImageBuildEngine.image_exists.cache_clear()
        ImageBuildEngine.build.cache_clear()

    def test_build_image_returns_ref_at_digest(self):
        fake = self.fake({"build": build_record(REF, DIGEST)})
        image = self.image().with_pip_packages("a==1")
        got = asyncio.run(self.builder(fake, server="unix:///run/ispec.sock").build_image(image, dry_run=False))
        self.assertEqual(got, ImageBuild(uri=f"{REF}@{DIGEST}", remote_run=None))
        (call,) = fake.calls()
        self.assertEqual(call["argv"][:4], ["build", "--json", "--server", "unix:///run/ispec.sock"])
        self.assertEqual(call["cwd"], self.project)
        self.assertEqual(call["spec"]["layers"], [{"packages": ["a==1"]}])
        self.assertEqual(os.listdir(self.project), [], "the spec file is removed")

    def test_older_flyte_sdk_gets_a_string(self):
        # flyte-sdk before ImageBuild (its first builder protocol) took the
        # URI itself from build_image.
        import flyte._build as fb

        fake = self.fake({"build": build_record(REF, DIGEST)})
        saved = fb.ImageBuild
        del fb.ImageBuild
        self.addCleanup(setattr, fb, "ImageBuild", saved)
        got = asyncio.run(self.builder(fake).build_image(self.image().with_pip_packages("a==1"), False))
        self.assertEqual(got, f"{REF}@{DIGEST}")

    def test_force_and_dry_run(self):
        fake = self.fake({"build": build_record(REF, DIGEST), "tag": {"stdout": json.dumps({"ref": REF}) + "\n"}})
        b = self.builder(fake)
        image = self.image().with_pip_packages("a==1")
        asyncio.run(b.build_image(image, dry_run=False, force=True))
        self.assertEqual(asyncio.run(b.build_image(image, dry_run=True)).uri, REF)
        self.assertEqual([c["argv"][:3] for c in fake.calls()], [["build", "--json", "--force"], ["tag", "--json", fake.calls()[1]["argv"][2]]])
        self.assertIn('"packages"', b.options.stderr.getvalue(), "dry_run prints the spec")

    def test_build_error_raises_named_by_the_image(self):
        fake = self.fake({"build": {"stdout": "", "stderr": "ispec: SPEC:3: layers[0].packages: bad requirement\n", "code": 2}})
        with self.assertRaises(IspecError) as cm:
            asyncio.run(self.builder(fake).build_image(self.image().with_pip_packages("a==1")))
        self.assertEqual(cm.exception.code, 2)
        self.assertIn("flyte.Image 'app'", str(cm.exception))
        self.assertNotIn(".ispec-flyte-", str(cm.exception))

    def test_secret_file_exists_only_while_ispec_runs(self):
        fake = self.fake({"build": build_record(REF, DIGEST)})
        os.environ["PIP_CONF"] = "[global]\nindex-url = https://u:p@idx/simple\n"
        self.addCleanup(os.environ.pop, "PIP_CONF")
        image = self.image().with_pip_packages("a", secret_mounts=flyte.Secret("pip_conf", mount="/etc/flyte/secrets"))
        asyncio.run(self.builder(fake).build_image(image))
        (call,) = fake.calls()
        (item,) = call["spec"]["layers"]
        (src, dst), = item["pip_secret_mounts"]
        self.assertEqual(dst, "/etc/flyte/secrets")
        self.assertEqual(call["secrets"][src], os.environ["PIP_CONF"])
        self.assertEqual(os.listdir(self.project), [])

    def test_engine_skips_the_build_when_ispec_finds_the_image(self):
        fake = self.fake({"exists": exists_record(REF, "exists", DIGEST)})
        self.engine(self.builder(fake))
        image = self.image().with_pip_packages("a==1")
        got = asyncio.run(ImageBuildEngine.build(image))
        self.assertEqual(got.uri, f"{REF}@{DIGEST}")
        self.assertEqual([c["argv"][0] for c in fake.calls()], ["exists"])
        self.assertEqual(fake.calls()[0]["spec"]["layers"], [{"packages": ["a==1"]}], "the checker asked for this image")

    def test_engine_builds_when_ispec_says_absent(self):
        fake = self.fake({"exists": exists_record(REF, "absent"), "build": build_record(REF, DIGEST)})
        self.engine(self.builder(fake))
        got = asyncio.run(ImageBuildEngine.build(self.image().with_pip_packages("a==1")))
        self.assertEqual(got.uri, f"{REF}@{DIGEST}")
        self.assertEqual([c["argv"][0] for c in fake.calls()], ["exists", "build"])

    def test_unknown_is_never_exists(self):
        # The registry cannot be reached: ispec's lookup says unknown. The
        # checker answers "not found" (flyte-sdk would take an exception
        # from its only checker for "exists"), and the build, which asks
        # again, fails with the reason.
        reason = "looking up registry.test/ns/app: connection refused"
        fake = self.fake({
            "exists": exists_record(REF, "unknown", reason=reason),
            "build": build_record(REF, "", error={"class": "unavailable", "message": reason}),
        })
        self.engine(self.builder(fake))
        image = self.image().with_pip_packages("a==1")
        with self.assertRaises(IspecError) as cm:
            asyncio.run(ImageBuildEngine.build(image))
        self.assertEqual((cm.exception.code, cm.exception.kind), (3, "unavailable"))
        self.assertIn("connection refused", str(cm.exception))
        self.assertEqual([c["argv"][0] for c in fake.calls()], ["exists", "build"])
        self.assertEqual(ispec_flyte.IspecImageChecker.answers[-1][2].state, "unknown")
        self.assertNotIn("assuming it exists", " ".join(status_log))

    def test_checker_answers_for_the_image_being_checked(self):
        fake = self.fake({"exists": exists_record(REF, "exists", DIGEST)})
        checker = self.builder(fake).get_checkers()[0]
        image = self.image().with_pip_packages("a==1")
        other = self.image().with_pip_packages("b==1")

        async def check(img):
            return await checker.image_exists(f"{img.registry}/{img.name}", img._final_tag, tuple(img.platform))

        self.assertEqual(asyncio.run(check(image)), f"{REF}@{DIGEST}")
        self.assertEqual(fake.calls()[-1]["spec"]["layers"], [{"packages": ["a==1"]}])
        # No caller holds an image of that name and tag: not found (the
        # build then asks ispec), never "exists".
        self.assertIsNone(asyncio.run(checker.image_exists("registry.test/ns/app", "f" * 32)))
        self.assertEqual(len(fake.calls()), 1)
        self.assertEqual(asyncio.run(check(other)), f"{REF}@{DIGEST}")
        self.assertEqual(fake.calls()[-1]["spec"]["layers"], [{"packages": ["b==1"]}])

    def test_checker_never_raises(self):
        # ispec missing altogether: still no exception for flyte-sdk to
        # take for "exists".
        b = IspecImageBuilder(ispec="/nonexistent/ispec", stderr=io.StringIO())
        checker = b.get_checkers()[0]
        image = self.image().with_pip_packages("a==1")

        async def check():
            return await checker.image_exists("registry.test/ns/app", image._final_tag)

        self.assertIsNone(asyncio.run(check()))
        self.assertIn("could not tell whether registry.test/ns/app exists", b.options.stderr.getvalue())
        self.assertEqual(b.lookup(image).state, "unknown")


class ProjectLock(Project):
    def test_a_spec_copying_the_project_runs_alone(self):
        # Every run writes its spec (and secret files) into the project; a
        # spec that copies the project folder itself must not copy and hash
        # another run's: it holds the project's lock alone.
        import fcntl

        from ispec_flyte.run import _copies_project, _project_lock, lock_path

        self.write("app.py")
        self.assertTrue(_copies_project(spec_document(self.image().with_source_folder(Path("."), copy_contents_only=True))))
        self.assertFalse(_copies_project(spec_document(self.image().with_source_file(Path("app.py")))))
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


class EntryPoint(Project):
    def test_flyte_loads_the_builder_from_its_entry_point(self):
        dist = entry_points_dir()
        self.addCleanup(shutil.rmtree, dist)
        code = textwrap.dedent(
            """
            import flyte
            from flyte._internal.imagebuild.image_builder import ImageBuildEngine
            import ispec_flyte
            flyte.init(image_builder="ispec")
            b = ImageBuildEngine._get_builder("ispec")
            assert isinstance(b, ispec_flyte.IspecImageBuilder), b
            (c,) = b.get_checkers()
            assert issubclass(c, ispec_flyte.IspecImageChecker), c
            print("ok")
            """
        )
        proc = run_python(code, dist, cwd=self.project)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "ok")


if __name__ == "__main__":
    unittest.main()
