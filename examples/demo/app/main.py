"""The demo image's program."""

import os

import ispec_demo_a

print(os.environ.get("GREETING", "hello"), "-", ispec_demo_a.__name__)
