"""Which packages ship, and where their files are; everything else is in pyproject.toml.

The configs stay in conf/ at the top of the repo and install as the package ``harness.conf``
(with its groups as subpackages), which Hydra reads as ``pkg://harness.conf`` from an
editable or a non-editable install alike. pyproject.toml cannot map a found package to
another folder, hence this file.
"""

from setuptools import find_namespace_packages, setup

CONF_GROUPS = [f"harness.conf.{name}" for name in find_namespace_packages(where="conf")]

setup(
    packages=find_namespace_packages(include=["harness*", "hydra_plugins*"])
    + ["harness.conf", *CONF_GROUPS],
    package_dir={"harness.conf": "conf"},
)
