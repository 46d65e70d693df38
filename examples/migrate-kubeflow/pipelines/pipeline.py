# After: the packages are in the image ispec built from
# images/preprocess.yaml; CI passes its exact reference (ref@digest) in
# PREPROCESS_IMAGE when it compiles the pipeline.
import os

from kfp import dsl

PREPROCESS_IMAGE = os.environ["PREPROCESS_IMAGE"]


@dsl.component(base_image=PREPROCESS_IMAGE, install_kfp_package=False)
def preprocess(rows: int) -> int:
    import pandas as pd

    return len(pd.DataFrame({"x": range(rows)}))


@dsl.pipeline(name="prep")
def pipeline(rows: int = 10):
    preprocess(rows=rows)


# KFP v1 style:
#   preprocess_op = func_to_container_op(preprocess_fn, base_image=PREPROCESS_IMAGE)
