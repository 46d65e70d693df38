# Before: every run of the step installs its packages when the container
# starts (packages_to_install), on top of a moving base image tag.
from kfp import dsl


@dsl.component(base_image="python:3.11-slim", packages_to_install=["pandas==2.2.2", "pyarrow==17.0.0"])
def preprocess(rows: int) -> int:
    import pandas as pd

    return len(pd.DataFrame({"x": range(rows)}))


@dsl.pipeline(name="prep")
def pipeline(rows: int = 10):
    preprocess(rows=rows)


# KFP v1 style, same problem:
#   from kfp.components import func_to_container_op
#   preprocess_op = func_to_container_op(preprocess_fn, base_image="python:3.11-slim",
#                                        packages_to_install=["pandas==2.2.2", "pyarrow==17.0.0"])
