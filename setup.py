"""Installable package for mrcnn: Mask R-CNN on TensorFlow 2.21 / Keras 3."""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [
    line.strip() for line in (here / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="mrcnn",
    version="0.1.0",
    description="Mask R-CNN for object detection and instance segmentation on Keras 3 / TF 2.21",
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["mrcnn", "mrcnn.*"]),
    python_requires=">=3.11",
    install_requires=requirements,
    # imgaug is optional (augmentation); install it with --no-deps, see requirements-nodeps.txt.
    extras_require={"augment": ["imgaug==0.4.0"]},
    entry_points={"console_scripts": ["mrcnn=mrcnn.tools.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
