"""End-to-end test of the ispec KFP helper: a real ``ispec`` (on PATH)
against the real BuildKit, registry and Python index, through the
stand-in of ``kfp.dsl.component``.

ISPEC_TEST_REGISTRY, ISPEC_TEST_BASE_PYTHON, ISPEC_TEST_PYPI_INDEX,
ISPEC_TEST_RUN and BUILDKIT_HOST come from the Go test TestKFPHelper,
which also serves a ``kfp`` wheel of the stand-in's version from the
index. Without them this test skips, unless CI=true, when it fails."""

import io
import os
import tempfile
import unittest

import kfp
from kfp import dsl

import ispec_kfp

NEEDED = ["ISPEC_TEST_REGISTRY", "ISPEC_TEST_BASE_PYTHON", "ISPEC_TEST_PYPI_INDEX", "ISPEC_TEST_RUN", "BUILDKIT_HOST"]


class BuiltOnce(unittest.TestCase):
    def setUp(self):
        missing = [n for n in NEEDED if not os.environ.get(n)]
        if missing:
            if os.environ.get("CI") == "true":
                self.fail(f"missing {missing}")
            self.skipTest(f"missing {missing}")

    def test_component_built_once(self):
        env = os.environ
        kwargs = dict(
            base_image=env["ISPEC_TEST_BASE_PYTHON"],
            packages_to_install=["ispec-demo-a==1.0.0"],
            pip_index_urls=[env["ISPEC_TEST_PYPI_INDEX"]],
            registry=env["ISPEC_TEST_REGISTRY"],
            kfp_version=kfp.__version__,
            # A variable of this run only, so that the first call builds.
            env={"ISPEC_TEST_RUN": env["ISPEC_TEST_RUN"]},
        )
        with tempfile.TemporaryDirectory() as d:
            first = ispec_kfp.build(self.doc(kwargs), cwd=d, stderr=io.StringIO())
            self.assertTrue(first.built, "the first call builds the image")

            @ispec_kfp.component(cwd=d, stderr=io.StringIO(), **kwargs)
            def train(x: int) -> int:
                return x

            second = ispec_kfp.build(self.doc(kwargs), cwd=d, stderr=io.StringIO())
        self.assertFalse(second.built, "a second call builds nothing")
        self.assertIsInstance(train, dsl.Component)
        self.assertEqual(train.args["base_image"], first.pinned)
        self.assertRegex(train.args["base_image"], r"^[^@]+:[0-9a-f]{32}@sha256:[0-9a-f]{64}$")
        self.assertIsNone(train.args["packages_to_install"])
        self.assertFalse(train.args["install_kfp_package"])

    def doc(self, kwargs):
        return ispec_kfp.spec_document(
            kwargs["base_image"], kwargs["packages_to_install"], name="train", registry=kwargs["registry"],
            pip_index_urls=kwargs["pip_index_urls"], kfp_version=kwargs["kfp_version"], env=kwargs["env"],
        )


if __name__ == "__main__":
    unittest.main()
