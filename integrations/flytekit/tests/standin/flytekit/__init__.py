"""A minimal stand-in for flytekit, for the plugin's tests only.

flytekit cannot be installed where these tests run (no Python package
index), so this package models the two builder classes the plugin talks to
(ImageSpecBuilder, ImageBuildEngine) and ImageSpec, following flytekit's
flytekit/image_spec/image_spec.py: the fields, ``id`` (MD5 of the set
fields' repr, URL-safe base64 without padding), ``is_container()``
comparing _F_IMG_ID with ``id``, and ``ImageBuildEngine.build`` asking
``should_build`` and recording the name ``build_image`` returns. It is not
flytekit: no tag computation of flytekit's own (the name here is only a
key), no execution contexts.
"""
