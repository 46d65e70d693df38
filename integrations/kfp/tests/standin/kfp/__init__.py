"""A stand-in of kfp 2.x for the helper's tests (kfp cannot be installed
here: no package index). It models only what the helper touches:
``kfp.dsl.component``'s signature (kfp 2.8's, keyword for keyword), which
it records instead of compiling a component."""

__version__ = "2.8.0"
