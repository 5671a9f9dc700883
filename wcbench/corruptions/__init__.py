"""The corruption engine: the 19 corruptions at CIFAR scale (-C ``.npy`` layout) and at ImageNet scale.

Reproduces hendrycks/robustness ``ImageNet-C/create_c/make_cifar_c.py`` (Hendrycks & Dietterich 2019,
the CIFAR-10-C / CIFAR-100-C of the paper's Table 2) without ImageMagick, OpenCV or scikit-image; see
:mod:`wcbench.corruptions.functions` for what is kept from the script on purpose and
:mod:`wcbench.corruptions.frost` for the frost photographs. :mod:`wcbench.corruptions.imagenet` makes
ImageNet-C of an ImageNet-layout folder with ``make_imagenet_c.py``'s severities (224x224).

    >>> from wcbench.corruptions import corrupt, write_c_layout
    >>> out = corrupt(images_nhwc_uint8, "motion_blur", severity=3, seed=0)   # uint8, same shape
    >>> write_c_layout(get_dataset("digits", "test"), "digits-C", seed=0)     # <corruption>.npy + labels.npy

Determinism: ``corrupt(x, name, severity, seed)`` is a pure function of its arguments (same bytes on
every run and machine with the same numpy / Pillow). Images are processed in fixed chunks of
:data:`CHUNK`, each with its own generator seeded by ``(seed, crc32(name), severity, chunk index)``.
"""

from wcbench.corruptions.engine import (
    ALL_CORRUPTIONS,
    CHUNK,
    CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    IMAGE_SIZE,
    SEVERITIES,
    chunk_rng,
    corrupt,
    to_uint8,
)
from wcbench.corruptions.functions import SEVERITY_PARAMS
from wcbench.corruptions.layout import (
    C_LAYOUT,
    ENGINE_VERSION,
    MANIFEST_FILE,
    open_c_layout,
    write_c_layout,
)

__all__ = [
    "ALL_CORRUPTIONS",
    "CHUNK",
    "CORRUPTIONS",
    "C_LAYOUT",
    "ENGINE_VERSION",
    "EXTRA_CORRUPTIONS",
    "IMAGE_SIZE",
    "MANIFEST_FILE",
    "SEVERITIES",
    "SEVERITY_PARAMS",
    "chunk_rng",
    "corrupt",
    "open_c_layout",
    "to_uint8",
    "write_c_layout",
]
