"""Stand-in of ``kfp.dsl``: ``component`` with kfp 2.8's signature."""

from typing import Callable, List, Optional


class Component:
    """What the stand-in's component decorator returns: the function and
    the arguments it was given."""

    def __init__(self, func: Callable, args: dict):
        self.func = func
        self.args = args

    def __call__(self, *a, **kw):
        return self.func(*a, **kw)


def component(
    func: Optional[Callable] = None,
    *,
    base_image: Optional[str] = None,
    target_image: Optional[str] = None,
    packages_to_install: List[str] = None,
    pip_index_urls: Optional[List[str]] = None,
    output_component_file: Optional[str] = None,
    install_kfp_package: bool = True,
    kfp_package_path: Optional[str] = None,
    pip_trusted_hosts: Optional[List[str]] = None,
    use_venv: bool = False,
):
    args = dict(
        base_image=base_image,
        target_image=target_image,
        packages_to_install=packages_to_install,
        pip_index_urls=pip_index_urls,
        output_component_file=output_component_file,
        install_kfp_package=install_kfp_package,
        kfp_package_path=kfp_package_path,
        pip_trusted_hosts=pip_trusted_hosts,
        use_venv=use_venv,
    )
    if func is None:
        return lambda f: Component(f, args)
    return Component(func, args)
