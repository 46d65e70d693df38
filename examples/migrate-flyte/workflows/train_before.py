# Before: the image is declared in code and built by flytekit's builder
# (a local Docker daemon) when pyflyte register or pyflyte run meets it.
from flytekit import ImageSpec, task, workflow

training = ImageSpec(
    name="training",
    registry="ghcr.io/my-org",
    python_version="3.11",
    packages=["flytekit==1.13.5", "pandas==2.2.2", "scikit-learn==1.5.1"],
    apt_packages=["git"],
    env={"FLYTE_SDK_LOGGING_LEVEL": "20"},
)


@task(container_image=training)
def fit(n: int) -> float:
    import sklearn  # noqa: F401

    return float(n)


@workflow
def wf(n: int = 3) -> float:
    return fit(n=n)
