# After: the image comes from images/training.yaml, pre-built by ispec in CI;
# pyflyte register gets its exact reference with
#   --image training=REF@DIGEST   (printed by `ispec build --image-args`)
# and the task names it by that name.
from flytekit import task, workflow


@task(container_image="{{.image.training}}")
def fit(n: int) -> float:
    import sklearn  # noqa: F401

    return float(n)


@workflow
def wf(n: int = 3) -> float:
    return fit(n=n)
