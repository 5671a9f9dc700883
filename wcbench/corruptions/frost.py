"""The frost photographs of the ``frost`` corruption, as the official generators read them.

The six photographs (``frost1.png`` ... ``frost6.jpg``) of hendrycks/robustness ``ImageNet-C/create_c/``
ship in the ``imagecorruptions`` wheel on PyPI (Apache License 2.0); wcbench carries them unmodified in
``wcbench/corruptions/frost_photos/`` with that licence and a NOTICE (source, sha256 of each file).

The scripts read a photograph with ``cv2.imread`` (BGR, alpha dropped) and crop it after converting
to RGB:

* ``make_cifar_c.py`` first shrinks it with ``cv2.resize(frost, (0, 0), fx=0.2, fy=0.2)`` (bilinear):
  at an exact factor of 1/5 every output pixel sits on source pixel ``5 * i + 2`` with weights 1 and 0,
  so the resize is the subsampling ``photo[2::5, 2::5]`` (output size ``round(0.2 * side)``);
* ``make_imagenet_c.py`` crops the full photograph.

:func:`frost_texture` applies the first rule for images of at most 32 pixels (CIFAR scale) and the
second otherwise. Pixels are decoded with Pillow (the PNGs are lossless; the JPEGs are baseline files
decoded by libjpeg-turbo, as OpenCV's wheels do).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

PHOTO_DIR = Path(__file__).with_name("frost_photos")
PHOTOS: tuple[str, ...] = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")
#: make_cifar_c.py's ``cv2.resize(.., fx=0.2, fy=0.2)`` for images of this size or smaller
CIFAR_SCALE_MAX = 32
TEXTURE_VERSION = "photos-1"


@functools.cache
def frost_photo(index: int) -> np.ndarray:
    """Photograph ``index`` (0..5) as uint8 (H, W, 3) RGB (alpha dropped, as ``cv2.imread``)."""
    from PIL import Image

    if not 0 <= index < len(PHOTOS):
        raise IndexError(f"frost photo index {index} outside 0..{len(PHOTOS) - 1}")
    with Image.open(PHOTO_DIR / PHOTOS[index]) as im:
        out = np.asarray(im.convert("RGB")).copy()
    out.setflags(write=False)
    return out


@functools.cache
def frost_texture(index: int, size: int = 32) -> np.ndarray:
    """The texture the official script crops for ``size`` x ``size`` images: photo ``index`` shrunk by
    0.2 (``make_cifar_c.py``, ``size <= 32``) or whole (``make_imagenet_c.py``); uint8 (H, W, 3) RGB."""
    photo = frost_photo(index)
    if size > CIFAR_SCALE_MAX:
        return photo
    h, w = photo.shape[:2]
    out = np.ascontiguousarray(photo[2::5, 2::5][: int(round(h * 0.2)), : int(round(w * 0.2))])
    out.setflags(write=False)
    return out
