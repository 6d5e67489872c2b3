"""Install the promptlearn engine (the trainers, dataset readers and configs are used from the repository)."""
import os

from setuptools import find_packages, setup

here = os.path.dirname(os.path.abspath(__file__))


def read_requirements(name: str) -> list:
    with open(os.path.join(here, name)) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def read_readme() -> str:
    path = os.path.join(here, "README.md")
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read()


def read_version() -> str:
    with open(os.path.join(here, "promptlearn", "__init__.py")) as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split("=")[1].strip().strip('"')
    raise RuntimeError("version not found")


setup(
    name="promptlearn",
    version=read_version(),
    description="GOPro and CLIP prompt-learning baselines (ZS-CLIP, CoOp, CoCoOp, MaPLe) on a Dassl-compatible engine",
    long_description=read_readme(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["promptlearn", "promptlearn.*"]),
    package_data={"promptlearn.demo": ["weights/*.pt"]},  # mini-ViT, the demo's pre-trained tiny CLIP
    python_requires=">=3.9",
    install_requires=read_requirements("requirements.txt"),
    extras_require={"dev": ["pytest>=7", "ruff>=0.4"]},
    license="MIT",
)
