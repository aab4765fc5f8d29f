"""Data for the course: where it lives, how it is read, and what happens offline.

The book loads its image data with torchvision (§3.5, "The Image Classification Dataset"):
``torchvision.datasets.FashionMNIST(root, train=..., transform=ToTensor(), download=True)``
wrapped in a ``DataLoader``. This module keeps that shape -- ``load_data_fashion_mnist`` and
``load_data_mnist`` return ``(train_iter, test_iter)`` whose batches are ``X`` of shape
``(batch, 1, 28, 28)``, floats in [0, 1], and ``y`` of shape ``(batch,)``, int64 -- but never
downloads: ``make data`` (``python datasets/fetch.py all``) does that once, while online.

Where the files are looked for (:func:`data_root`): ``$TORCHDRILL_DATA`` if set, else
``<repo>/datasets/data``, laid out as torchvision lays them out::

    <root>/MNIST/raw/train-images-idx3-ubyte[.gz]   train-labels-idx1-ubyte[.gz]
    <root>/MNIST/raw/t10k-images-idx3-ubyte[.gz]    t10k-labels-idx1-ubyte[.gz]
    <root>/FashionMNIST/raw/...                     (the same four names)

What the loaders do with what they find:

- both splits: the official 60,000 / 10,000 split, read by torchvision when the files are
  unpacked, by :func:`read_idx` when they are still gzipped;
- only the test split (the official ``t10k`` files, 10,000 images -- what a course machine
  without internet may carry): a seeded split of those 10,000 images into 8,000 for training
  and 2,000 for testing, announced once with a :class:`DataFallbackWarning`;
- nothing: a :class:`FileNotFoundError` that says to run ``make data`` or set
  ``TORCHDRILL_DATA``.

:func:`load_mnist_or_synthetic` goes one step further for tests that must run anywhere: when no
MNIST files exist it trains on :func:`synthetic_mnist`, generated digit-like images.

Everything is deterministic: the training loader shuffles with its own seeded
``torch.Generator`` (the same seed gives the same batches in the same order, epoch by epoch),
and the loaders use ``num_workers=0`` unless asked otherwise.
"""

from __future__ import annotations

import gzip
import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils import data

__all__ = [
    "DataFallbackWarning",
    "IdxFormatError",
    "data_root",
    "find_idx_files",
    "get_fashion_mnist_labels",
    "load_array",
    "load_data_fashion_mnist",
    "load_data_mnist",
    "load_mnist_or_synthetic",
    "read_idx",
    "synthetic_mnist",
    "write_idx",
]

#: Share of the official test images used for training when only the test split is present.
OFFLINE_TRAIN_FRACTION = 0.8

#: torchvision's dataset folder name for each dataset this module loads.
_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_SPLITS = {"train": "train", "test": "t10k"}

#: ``resize`` as ``transforms.Resize`` takes it: one int (the shorter side) or (height, width).
Size = int | Sequence[int] | None


class DataFallbackWarning(UserWarning):
    """The loader used something other than the official train/test split, and says what."""


class IdxFormatError(ValueError):
    """A file is not a well-formed IDX file (bad magic number, wrong size, corrupt gzip)."""


# --------------------------------------------------------------------------- the data root


REPO = Path(__file__).resolve().parent.parent
# the course's own copy beside the kit, as its machines and CI lay it out (../shared/datasets)
SHARED_DATA = REPO.parent / "shared" / "datasets"


def download_root() -> Path:
    """Where ``make data`` puts what it downloads: ``$TORCHDRILL_DATA`` if set, else
    ``<repo>/datasets/data``."""
    env = os.environ.get("TORCHDRILL_DATA", "").strip()
    return Path(env).expanduser() if env else REPO / "datasets" / "data"


def data_root() -> Path:
    """Return the folder the loaders search: ``$TORCHDRILL_DATA`` if set; else
    ``<repo>/datasets/data`` when it holds a dataset; else the course's shared copy beside the
    kit (``../shared/datasets``) when that does, so grading uses the course's MNIST wherever
    it is; else ``<repo>/datasets/data``.

    Point ``TORCHDRILL_DATA`` at any folder laid out as torchvision lays out its downloads
    (``<root>/MNIST/raw/...``); the course's CI points it at ``../shared/datasets``.
    """
    first = download_root()
    if os.environ.get("TORCHDRILL_DATA", "").strip() or _holds_data(first):
        return first
    return SHARED_DATA if _holds_data(SHARED_DATA) else first


def _holds_data(root: Path) -> bool:
    """Whether `root` has any file of a dataset in torchvision's layout."""
    return any(any((root / folder / "raw").glob("*-ubyte*"))
               for folder in ("MNIST", "FashionMNIST"))


# --------------------------------------------------------------------------- IDX files

# The IDX format (LeCun et al., the MNIST page): a 4-byte magic number -- two zero bytes, a
# type code, the number of dimensions -- then each dimension's size as a big-endian uint32,
# then the data in C order, big-endian. MNIST images are type 0x08 (unsigned byte) with 3
# dimensions (magic 2051), labels type 0x08 with 1 dimension (magic 2049).
_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in _IDX_TYPES.items()}
_MAX_DIMS = 8


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":  # not gzip: the bytes are the IDX file itself
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, ValueError) as err:  # BadGzipFile is an OSError
        raise IdxFormatError(f"{path}: corrupt gzip data ({err})") from err


def _parse_header(buf: bytes, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """Check the magic number and sizes; return (dtype, shape, header length)."""
    if len(buf) < 4:
        raise IdxFormatError(f"{path}: {len(buf)} bytes, too short for an IDX magic number")
    zero0, zero1, code, ndim = buf[0], buf[1], buf[2], buf[3]
    magic = int.from_bytes(buf[:4], "big")
    if zero0 != 0 or zero1 != 0 or code not in _IDX_TYPES or not 1 <= ndim <= _MAX_DIMS:
        raise IdxFormatError(
            f"{path}: bad IDX magic number 0x{magic:08x} (expected 0x0000TTDD with type TT in "
            f"{{08, 09, 0B, 0C, 0D, 0E}} and 1 <= DD <= {_MAX_DIMS}; MNIST images are "
            "0x00000803, labels 0x00000801)"
        )
    header_len = 4 + 4 * ndim
    if len(buf) < header_len:
        raise IdxFormatError(
            f"{path}: truncated header: {ndim} dimensions need {header_len} bytes, "
            f"file has {len(buf)}"
        )
    shape = tuple(int.from_bytes(buf[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return _IDX_TYPES[code], shape, header_len


def read_idx(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an IDX file (plain or gzipped) into a tensor of its stored type and shape.

    Strict: the magic number must name a known type and 1-8 dimensions, and the data must be
    exactly ``prod(shape) * itemsize`` bytes -- a truncated file or trailing bytes raise
    :class:`IdxFormatError` naming the file and the sizes. MNIST's files give ``uint8``
    tensors: images ``(n, 28, 28)``, labels ``(n,)``.
    """
    path = Path(path)
    buf = _read_bytes(path)
    dtype, shape, header_len = _parse_header(buf, path)
    expected = math.prod(shape) * dtype.itemsize
    got = len(buf) - header_len
    if got != expected:
        what = "truncated" if got < expected else "trailing bytes"
        raise IdxFormatError(
            f"{path}: {what}: shape {shape} of {dtype.name} needs {expected} data bytes, "
            f"file has {got}"
        )
    array = np.frombuffer(buf, dtype=dtype, count=math.prod(shape), offset=header_len)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="))).reshape(shape)


def write_idx(path: str | os.PathLike[str], tensor: torch.Tensor | np.ndarray) -> Path:
    """Write ``tensor`` as an IDX file (gzipped when ``path`` ends in ``.gz``); the inverse
    of :func:`read_idx`. Useful to make small MNIST-shaped fixtures."""
    path = Path(path)
    array = tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else tensor
    array = np.asarray(array)
    code = _IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"IDX has no type for {array.dtype}; use uint8, int8/16/32, float32/64")
    if not 1 <= array.ndim <= _MAX_DIMS:
        raise ValueError(f"IDX stores 1 to {_MAX_DIMS} dimensions, got {array.ndim}")
    header = bytes([0, 0, code, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=_IDX_TYPES[code]).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)
    return path


def _check_idx_file(path: Path) -> tuple[int, ...]:
    """Validate an uncompressed IDX file's header and size without reading its data."""
    with path.open("rb") as f:
        head = f.read(4 + 4 * _MAX_DIMS)
    dtype, shape, header_len = _parse_header(head, path)
    expected = header_len + math.prod(shape) * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        what = "truncated" if size < expected else "trailing bytes"
        raise IdxFormatError(f"{path}: {what}: shape {shape} needs {expected} bytes, has {size}")
    return shape


def _read_split(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != torch.uint8 or images.ndim != 3:
        raise IdxFormatError(
            f"{images_path}: expected uint8 images (n, rows, cols), got {images.dtype} "
            f"{tuple(images.shape)}"
        )
    if labels.dtype != torch.uint8 or labels.ndim != 1:
        raise IdxFormatError(
            f"{labels_path}: expected uint8 labels (n,), got {labels.dtype} {tuple(labels.shape)}"
        )
    if len(images) != len(labels):
        raise IdxFormatError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels"
        )
    if len(labels) and int(labels.max()) > 9:
        raise IdxFormatError(f"{labels_path}: label {int(labels.max())} outside 0-9")
    return images, labels.long()


# --------------------------------------------------------------------------- finding files


def find_idx_files(
    root: str | os.PathLike[str] | None = None, dataset: str = "mnist"
) -> dict[str, tuple[Path, Path]]:
    """Return ``{"train": (images, labels), "test": (images, labels)}`` for the splits whose
    two files exist under ``<root>/<MNIST|FashionMNIST>/raw`` (unpacked preferred over .gz).

    A split with only one of its two files is left out. ``root`` defaults to
    :func:`data_root`; ``dataset`` is ``"mnist"`` or ``"fashion-mnist"``.
    """
    raw = Path(root if root is not None else data_root()) / _folder(dataset) / "raw"
    found = {}
    for split, prefix in _SPLITS.items():
        images = _first_file(raw / f"{prefix}-images-idx3-ubyte")
        labels = _first_file(raw / f"{prefix}-labels-idx1-ubyte")
        if images is not None and labels is not None:
            found[split] = (images, labels)
    return found


def _folder(dataset: str) -> str:
    try:
        return _FOLDERS[dataset]
    except KeyError:
        known = ", ".join(sorted(_FOLDERS))
        raise ValueError(f"unknown dataset {dataset!r}; expected one of: {known}") from None


def _first_file(stem: Path) -> Path | None:
    for candidate in (stem, stem.with_name(stem.name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _missing_message(root: Path, dataset: str) -> str:
    raw = root / _folder(dataset) / "raw"
    return (
        f"No {_folder(dataset)} data under {root}: looked for "
        f"{raw}/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte[.gz]. "
        "Run `make data` (python datasets/fetch.py all) on a machine with internet, "
        "or set TORCHDRILL_DATA to a folder that holds "
        f"{_folder(dataset)}/raw/ (see datasets/README.md)."
    )


# --------------------------------------------------------------------------- datasets


class _ImageDataset(data.Dataset):
    """uint8 images ``(n, H, W)`` and int64 labels, served as torchvision's MNIST serves them:
    ``(ToTensor(image), int(label))``, with ``Resize(resize)`` first when asked (§3.5)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, resize: Size = None):
        self.data, self.targets = images, labels
        self._transform = _transform(resize) if resize is not None else None

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.data[index], int(self.targets[index])
        if self._transform is None:
            return _to_tensor(image), label
        from PIL import Image

        return self._transform(Image.fromarray(image.numpy())), label  # mode "L"

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        """The samples ``__getitem__`` gives, a DataLoader's batch at once: one conversion of
        the batch, not one per image (5x faster an epoch)."""
        if self._transform is not None:
            return [self[i] for i in indices]
        images = _to_tensor(self.data[indices])
        return list(zip(images.unbind(0), self.targets[indices].tolist(), strict=True))


def _to_tensor(images: torch.Tensor) -> torch.Tensor:
    """ToTensor of uint8 images ``(..., H, W)``, without the PIL round trip: a channel
    dimension before ``H`` and floats in [0, 1]."""
    return images.unsqueeze(-3).to(torch.get_default_dtype()).div(255)


def _transform(resize: Size) -> Callable[[Any], torch.Tensor]:
    from torchvision import transforms

    trans: list[Any] = [transforms.ToTensor()]
    if resize is not None:
        trans.insert(0, transforms.Resize(resize))
    return transforms.Compose(trans)


def _split_indices(n: int, num_train: int, seed: int) -> tuple[list[int], list[int]]:
    """A seeded permutation of ``range(n)`` cut into train and test index lists (each sorted)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return sorted(perm[:num_train].tolist()), sorted(perm[num_train:].tolist())


def _load_datasets(
    dataset: str, resize: Size, root: str | os.PathLike[str] | None, seed: int
) -> tuple[data.Dataset, data.Dataset, str]:
    root = Path(root) if root is not None else data_root()
    found = find_idx_files(root, dataset)
    folder = _folder(dataset)
    if "train" in found and "test" in found:
        paths = [p for pair in found.values() for p in pair]
        if all(p.suffix != ".gz" for p in paths):  # torchvision reads only unpacked files
            from torchvision import datasets

            for images_path, labels_path in found.values():
                shapes = _check_idx_file(images_path), _check_idx_file(labels_path)
                if len(shapes[0]) != 3 or len(shapes[1]) != 1 or shapes[0][0] != shapes[1][0]:
                    raise IdxFormatError(
                        f"{images_path} {shapes[0]} and {labels_path} {shapes[1]} are not "
                        "(n, rows, cols) images with (n,) labels"
                    )
            cls = getattr(datasets, folder)
            trans = _transform(resize)
            return (
                cls(root=str(root), train=True, transform=trans, download=False),
                cls(root=str(root), train=False, transform=trans, download=False),
                dataset,
            )
        train, test = (_ImageDataset(*_read_split(*found[s]), resize) for s in ("train", "test"))
        return train, test, dataset
    if not found:
        raise FileNotFoundError(_missing_message(root, dataset))
    [(split, pair)] = found.items()
    full = _ImageDataset(*_read_split(*pair), resize)
    num_train = round(OFFLINE_TRAIN_FRACTION * len(full))
    train_idx, test_idx = _split_indices(len(full), num_train, seed)
    warnings.warn(
        f"{folder}: only the official {split} split was found ({pair[0].name}, "
        f"{len(full)} images, under {pair[0].parent}); using a split of it seeded with "
        f"{seed}: {len(train_idx)} images for training, {len(test_idx)} for testing. "
        "Run `make data` for the full dataset.",
        DataFallbackWarning,
        stacklevel=3,
    )
    source = f"{dataset}-{_SPLITS[split]}-split"
    return data.Subset(full, train_idx), data.Subset(full, test_idx), source


def _loaders(
    train: data.Dataset, test: data.Dataset, batch_size: int, seed: int, num_workers: int
) -> tuple[data.DataLoader, data.DataLoader]:
    train_iter = data.DataLoader(
        train,
        batch_size,
        shuffle=True,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
    )
    test_iter = data.DataLoader(test, batch_size, shuffle=False, num_workers=num_workers)
    return train_iter, test_iter


def load_data_fashion_mnist(
    batch_size: int,
    resize: Size = None,
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    *,
    num_workers: int = 0,
) -> tuple[data.DataLoader, data.DataLoader]:
    """Fashion-MNIST as ``(train_iter, test_iter)``, as in §3.5.3 (``d2l.load_data_fashion_mnist``).

    Each batch is ``(X, y)``: ``X`` float ``(batch, 1, 28, 28)`` in [0, 1] (``ToTensor``
    divides the bytes by 255), or ``(batch, 1, *resize)`` when ``resize`` is given (``Resize``
    runs before ``ToTensor``, as in the book); ``y`` int64 class indices 0-9 (see
    :func:`get_fashion_mnist_labels`). The training loader reshuffles every epoch from a
    generator seeded with ``seed``; the test loader keeps the file's order.

    Reads ``<root>/FashionMNIST/raw`` (``root`` defaults to :func:`data_root`); never
    downloads. With only the test split there, trains on a seeded 80 % of it and tests on
    the rest (with a :class:`DataFallbackWarning`); with nothing there, raises
    :class:`FileNotFoundError`.
    """
    train, test, _ = _load_datasets("fashion-mnist", resize, root, seed)
    return _loaders(train, test, batch_size, seed, num_workers)


def load_data_mnist(
    batch_size: int,
    resize: Size = None,
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    *,
    num_workers: int = 0,
) -> tuple[data.DataLoader, data.DataLoader]:
    """MNIST handwritten digits as ``(train_iter, test_iter)``, shaped like
    :func:`load_data_fashion_mnist` (§3.5): ``X`` float ``(batch, 1, 28, 28)`` in [0, 1],
    ``y`` int64 digits 0-9.

    Reads ``<root>/MNIST/raw`` (``root`` defaults to :func:`data_root`); never downloads.
    With only the official test split (10,000 images) there, it trains on a seeded 8,000 of
    them and tests on the other 2,000, and says so once with a :class:`DataFallbackWarning`;
    with nothing there, raises :class:`FileNotFoundError`.
    """
    train, test, _ = _load_datasets("mnist", resize, root, seed)
    return _loaders(train, test, batch_size, seed, num_workers)


def load_mnist_or_synthetic(
    batch_size: int,
    resize: Size = None,
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    *,
    num_synthetic: tuple[int, int] = (8000, 2000),
    num_workers: int = 0,
) -> tuple[data.DataLoader, data.DataLoader, str]:
    """``(train_iter, test_iter, source)``: MNIST when any of it is on disk, else generated
    digits, so code that trains on MNIST runs on a machine with no data and no internet.

    ``source`` names what was loaded: ``"mnist"`` (the official split), ``"mnist-t10k-split"``
    (the seeded split of the official test set, see :func:`load_data_mnist`) or
    ``"synthetic"`` (:func:`synthetic_mnist` with ``num_synthetic = (num_train, num_test)``
    images, seeded with ``seed``). Only missing data falls back: corrupt files still raise.
    """
    try:
        train, test, source = _load_datasets("mnist", resize, root, seed)
    except FileNotFoundError:
        where = Path(root) if root is not None else data_root()
        num_train, num_test = num_synthetic
        warnings.warn(
            f"MNIST: no files under {where / 'MNIST' / 'raw'}; using generated digits "
            f"(synthetic_mnist, {num_train} train / {num_test} test, seed {seed}). "
            "Run `make data` or set TORCHDRILL_DATA for the real images.",
            DataFallbackWarning,
            stacklevel=2,
        )
        g = torch.Generator().manual_seed(seed)
        train, test = (_ImageDataset(*_synthetic_uint8(n, g), resize) for n in num_synthetic)
        source = "synthetic"
    return (*_loaders(train, test, batch_size, seed, num_workers), source)


def get_fashion_mnist_labels(labels: Sequence[int] | torch.Tensor) -> list[str]:
    """The text names of Fashion-MNIST class indices (§3.5.1), e.g. for
    ``show_images(..., titles=get_fashion_mnist_labels(y))``."""
    names = ["t-shirt", "trouser", "pullover", "dress", "coat",
             "sandal", "shirt", "sneaker", "bag", "ankle boot"]  # fmt: skip
    return [names[int(i)] for i in labels]


def load_array(
    data_arrays: Sequence[torch.Tensor],
    batch_size: int,
    is_train: bool = True,
    *,
    seed: int | None = 0,
) -> data.DataLoader:
    """Wrap tensors that share their first dimension in a ``DataLoader`` (§3.3.2,
    ``d2l.load_array``): each batch is a tuple with one slice of each tensor.

    ``is_train=True`` reshuffles every epoch, from a generator seeded with ``seed`` so runs
    repeat (``seed=None`` draws from torch's global generator, as the book does).
    """
    dataset = data.TensorDataset(*data_arrays)
    generator = torch.Generator().manual_seed(seed) if is_train and seed is not None else None
    return data.DataLoader(dataset, batch_size, shuffle=is_train, generator=generator)


# --------------------------------------------------------------------------- synthetic digits

# Seven-segment strokes on the 28 x 28 canvas, in pixel coordinates (x right, y down):
# a top, b top right, c bottom right, d bottom, e bottom left, f top left, g middle.
_SEGMENTS = {
    "a": ((9.0, 5.0), (19.0, 5.0)),
    "b": ((19.0, 5.0), (19.0, 14.0)),
    "c": ((19.0, 14.0), (19.0, 23.0)),
    "d": ((9.0, 23.0), (19.0, 23.0)),
    "e": ((9.0, 14.0), (9.0, 23.0)),
    "f": ((9.0, 5.0), (9.0, 14.0)),
    "g": ((9.0, 14.0), (19.0, 14.0)),
}
_DIGIT_SEGMENTS = ("abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc",
                   "abcdefg", "abcdfg")  # fmt: skip


def _synthetic_uint8(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` generated digits as MNIST stores them: uint8 ``(n, 28, 28)``, int64 labels,
    drawing every random number from ``g``."""
    if n < 0:
        raise ValueError(f"number of images must be >= 0, got {n}")

    def uniform(*shape: int, low: float, high: float) -> torch.Tensor:
        return torch.rand(*shape, generator=g) * (high - low) + low

    segments = torch.tensor(list(_SEGMENTS.values()))  # (7, 2 ends, 2 coordinates)
    templates = torch.tensor([[s in digit for s in _SEGMENTS] for digit in _DIGIT_SEGMENTS])
    labels = (torch.arange(n) % 10)[torch.randperm(n, generator=g)]  # balanced classes
    # Strokes: the digit's segments, each missing with probability 0.03, plus a stray one
    # with probability 0.015 -- some images are ambiguous, as real handwriting is.
    flip = torch.rand(n, 7, generator=g)
    active = torch.where(templates[labels], flip >= 0.03, flip < 0.015)
    # Each endpoint jitters, then the whole digit is scaled, slanted, rotated and shifted.
    ends = segments.expand(n, 7, 2, 2) + 0.8 * torch.randn(n, 7, 2, 2, generator=g)
    sx, sy = uniform(n, low=0.8, high=1.15), uniform(n, low=0.8, high=1.15)
    shear, angle = uniform(n, low=-0.35, high=0.35), uniform(n, low=-0.25, high=0.25)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # rotation @ shear @ scale, one (2, 2) matrix per image
    affine = torch.stack(
        [
            torch.stack([cos * sx, (cos * shear - sin) * sy], -1),
            torch.stack([sin * sx, (sin * shear + cos) * sy], -1),
        ],
        -2,
    )
    shift = uniform(n, 2, low=-3.0, high=3.0)
    centre = torch.tensor([14.0, 14.0])
    ends = torch.einsum("nij,nskj->nski", affine, ends - centre) + centre + shift[:, None, None]
    half_width = uniform(n, low=0.7, high=1.5)
    brightness = uniform(n, low=0.75, high=1.0)
    noise = 0.08 * torch.randn(n, 28 * 28, generator=g)

    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    px, py = xs.reshape(1, -1), ys.reshape(1, -1)  # pixel centres, (1, 784)
    images = torch.empty(n, 28 * 28)
    for lo in range(0, n, 40):  # chunks under torch's grain size (32768) run on one thread
        c = slice(lo, lo + 40)
        # squared distance from every pixel to the nearest active stroke, stroke by stroke
        dist2 = torch.full((len(labels[c]), 28 * 28), float("inf"))
        for s in range(7):
            ax, ay = ends[c, s, 0, 0, None], ends[c, s, 0, 1, None]  # (chunk, 1)
            abx, aby = ends[c, s, 1, 0, None] - ax, ends[c, s, 1, 1, None] - ay
            t = ((px - ax) * abx + (py - ay) * aby) / (abx * abx + aby * aby).clamp_min(1e-6)
            t = t.clamp_(0, 1)
            d2 = (px - ax - t * abx).square_() + (py - ay - t * aby).square_()
            dist2 = torch.where(active[c, s, None], torch.minimum(dist2, d2), dist2)
        ink = (half_width[c, None] + 0.5 - dist2.sqrt_()).clamp_(0, 1) * brightness[c, None]
        images[c] = ink + noise[c]
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8).reshape(n, 28, 28)
    return images, labels


def synthetic_mnist(
    num_train: int, num_test: int, seed: int = 0
) -> tuple[data.TensorDataset, data.TensorDataset]:
    """Generated stand-ins for MNIST digits, for machines with no data: ``(train, test)``
    ``TensorDataset`` s of images float ``(1, 28, 28)`` in [0, 1] (multiples of 1/255, like
    ``ToTensor`` of a byte image) and int64 labels 0-9.

    Each digit is drawn from seven-segment strokes (the pattern of a pocket calculator) with
    jittered endpoints, random thickness, brightness, scale, slant, rotation and a shift of up
    to 3 pixels, plus pixel noise; a stroke is sometimes missing or extra. A small MLP learns
    it far above chance (10 %) but not perfectly. Deterministic in ``seed``; the classes of
    each split are balanced (counts differ by at most one); the training images do not
    depend on ``num_test``.
    """
    g = torch.Generator().manual_seed(seed)
    splits = [_synthetic_uint8(n, g) for n in (num_train, num_test)]
    dtype = torch.get_default_dtype()
    train, test = (data.TensorDataset(x.unsqueeze(1).to(dtype).div(255), y) for x, y in splits)
    return train, test
