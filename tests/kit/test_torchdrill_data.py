"""torchdrill.data: the IDX reader, the MNIST / Fashion-MNIST loaders and their offline
fallbacks, the generated digits, load_array, and datasets/fetch.py -- all without a network.

Fixtures are small IDX files written into tmp_path. The real MNIST test split is used when
TORCHDRILL_DATA, or ../shared/datasets beside the repository, holds it; otherwise that one
test is skipped (the generated data is tested everywhere)."""

from __future__ import annotations

import ast
import gzip
import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Subset

from torchdrill import data as D
from torchdrill.data import DataFallbackWarning, IdxFormatError

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- fixtures


def _make_split(raw: Path, prefix: str, n: int, seed: int, gz: bool) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    ext = ".gz" if gz else ""
    raw.mkdir(parents=True, exist_ok=True)
    D.write_idx(raw / f"{prefix}-images-idx3-ubyte{ext}", images)
    D.write_idx(raw / f"{prefix}-labels-idx1-ubyte{ext}", labels)
    return images, labels


def make_mnist(root: Path, train: int = 0, test: int = 0, gz: bool = True, folder: str = "MNIST"):
    """Write MNIST-shaped IDX files: ``train`` images in the train split, ``test`` in t10k
    (0: that split absent). Returns {"train": (images, labels), "test": (...)}."""
    raw = root / folder / "raw"
    out = {}
    if train:
        out["train"] = _make_split(raw, "train", train, 1, gz)
    if test:
        out["test"] = _make_split(raw, "t10k", test, 2, gz)
    return out


def _all(loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def _shared_datasets() -> Path | None:
    """The real MNIST test split: $TORCHDRILL_DATA, else ../shared/datasets beside the repo."""
    candidates = [os.environ.get("TORCHDRILL_DATA", ""), str(REPO.parent / "shared" / "datasets")]
    for c in candidates:
        if c and (Path(c) / "MNIST" / "raw").is_dir() and D.find_idx_files(c).get("test"):
            return Path(c)
    return None


# --------------------------------------------------------------------------- IDX files


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.float32, torch.float64]
)
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (2, 1, 3, 2)])
def test_idx_round_trip(tmp_path, dtype, shape, gz):
    g = torch.Generator().manual_seed(0)
    if dtype.is_floating_point:
        x = torch.randn(shape, generator=g, dtype=dtype) * 1e3
    else:
        info = torch.iinfo(dtype)
        x = torch.randint(info.min, info.max, shape, generator=g, dtype=torch.int64).to(dtype)
    path = D.write_idx(tmp_path / ("x.idx.gz" if gz else "x.idx"), x)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz
    y = D.read_idx(path)
    assert y.dtype == dtype and y.shape == x.shape
    assert torch.equal(x, y)


def test_idx_bytes_follow_the_format(tmp_path):
    """Magic 0x00000803 for MNIST images, big-endian sizes and data (the MNIST page's spec)."""
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = D.write_idx(tmp_path / "i", images).read_bytes()
    assert raw[:4] == (2051).to_bytes(4, "big")
    assert raw[4:16] == b"\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04"
    assert raw[16:] == images.tobytes()
    ints = D.write_idx(tmp_path / "j", np.array([1, -2], dtype=np.int32)).read_bytes()
    assert ints == b"\x00\x00\x0c\x01\x00\x00\x00\x02" + b"\x00\x00\x00\x01\xff\xff\xff\xfe"
    assert D.read_idx(tmp_path / "j").tolist() == [1, -2]


def _valid_idx() -> bytes:
    return b"\x00\x00\x08\x02" + (3).to_bytes(4, "big") + (2).to_bytes(4, "big") + bytes(range(6))


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda b: b"\x01" + b[1:], "bad IDX magic"),  # first byte not zero
        (lambda b: b[:2] + b"\x07" + b[3:], "bad IDX magic"),  # unknown type code
        (lambda b: b[:3] + b"\x00" + b[4:], "bad IDX magic"),  # zero dimensions
        (lambda b: b[:3] + b"\x09" + b[4:], "bad IDX magic"),  # more than 8 dimensions
        (lambda b: b"\x00\x00", "too short"),
        (lambda b: b[:9], "truncated header"),
        (lambda b: b[:-1], "truncated"),
        (lambda b: b + b"\x00", "trailing bytes"),
        (lambda b: gzip.compress(b)[:-6], "corrupt gzip"),  # gzip stream cut short
        (lambda b: gzip.compress(b[:-2]), "truncated"),  # a short file, gzipped
    ],
)
def test_read_idx_rejects_corrupt_files(tmp_path, corrupt, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(_valid_idx())
    assert D.read_idx(path).shape == (3, 2)  # the uncorrupted file reads
    path.write_bytes(corrupt(_valid_idx()))
    with pytest.raises(IdxFormatError, match=message) as err:
        D.read_idx(path)
    assert str(path) in str(err.value)


def test_loader_rejects_inconsistent_mnist_files(tmp_path):
    make_mnist(tmp_path, test=20)
    raw = tmp_path / "MNIST" / "raw"
    D.write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.zeros(19, dtype=np.uint8))
    with pytest.raises(IdxFormatError, match="20 images but .* 19 labels"):
        D.load_data_mnist(4, root=tmp_path)
    D.write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.full(20, 10, dtype=np.uint8))
    with pytest.raises(IdxFormatError, match="label 10 outside 0-9"):
        D.load_data_mnist(4, root=tmp_path)
    D.write_idx(raw / "t10k-images-idx3-ubyte.gz", np.zeros((20, 784), dtype=np.uint8))
    with pytest.raises(IdxFormatError, match=r"expected uint8 images \(n, rows, cols\)"):
        D.load_data_mnist(4, root=tmp_path)


# --------------------------------------------------------------------------- the loaders


def test_data_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setattr(D, "SHARED_DATA", tmp_path / "no-shared-copy")
    monkeypatch.setenv("TORCHDRILL_DATA", str(tmp_path))
    assert D.data_root() == D.download_root() == tmp_path
    monkeypatch.delenv("TORCHDRILL_DATA")
    assert D.data_root() == REPO / "datasets" / "data"
    monkeypatch.setenv("TORCHDRILL_DATA", "")
    assert D.data_root() == REPO / "datasets" / "data"


def test_the_courses_shared_copy_is_used_wherever_it_is(monkeypatch, tmp_path):
    """No TORCHDRILL_DATA and nothing under datasets/data, but the course's MNIST beside the
    kit (../shared/datasets): grading reads it rather than generated digits; `make data` still
    downloads into datasets/data."""
    shared = tmp_path / "shared" / "datasets"
    make_mnist(shared, test=30)
    monkeypatch.setattr(D, "SHARED_DATA", shared)
    monkeypatch.delenv("TORCHDRILL_DATA", raising=False)
    if D._holds_data(REPO / "datasets" / "data"):
        pytest.skip("this checkout has its own datasets/data, which comes first")
    assert D.data_root() == shared
    assert D.download_root() == REPO / "datasets" / "data"
    train_iter, test_iter, source = D.load_mnist_or_synthetic(8)
    assert source != "synthetic"


def test_loaders_read_the_data_root_by_default(monkeypatch, tmp_path):
    make_mnist(tmp_path, test=30)
    monkeypatch.setenv("TORCHDRILL_DATA", str(tmp_path))
    with pytest.warns(DataFallbackWarning):
        train_iter, test_iter = D.load_data_mnist(8)
    assert len(train_iter.dataset) + len(test_iter.dataset) == 30


@pytest.mark.parametrize("gz", [True, False])
def test_both_splits_give_the_official_split(tmp_path, gz):
    made = make_mnist(tmp_path, train=40, test=25, gz=gz)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataFallbackWarning)  # the official split: no warning
        train_iter, test_iter = D.load_data_mnist(16, root=tmp_path)
    if not gz:  # unpacked files go through torchvision, as in the book
        from torchvision.datasets import MNIST

        assert isinstance(train_iter.dataset, MNIST) and isinstance(test_iter.dataset, MNIST)
    assert (len(train_iter.dataset), len(test_iter.dataset)) == (40, 25)
    assert train_iter.num_workers == 0 and test_iter.num_workers == 0
    X, y = next(iter(train_iter))
    assert X.shape == (16, 1, 28, 28) and X.dtype == torch.float32
    assert y.shape == (16,) and y.dtype == torch.int64
    X, y = _all(test_iter)  # the test loader keeps the file's order
    images, labels = made["test"]
    assert torch.equal(X, torch.from_numpy(images).float().div(255).unsqueeze(1))
    assert torch.equal(y, torch.from_numpy(labels).long())
    Xtr, ytr = _all(train_iter)  # shuffled, but every training image exactly once
    assert sorted(ytr.tolist()) == sorted(made["train"][1].tolist())
    assert float(Xtr.min()) >= 0.0 and float(Xtr.max()) <= 1.0
    ink = torch.from_numpy(made["train"][0]).float().div(255).sum((1, 2))
    assert torch.equal(Xtr.sum((1, 2, 3)).sort().values, ink.sort().values)


def test_gzip_and_unpacked_files_load_the_same_even_resized(tmp_path):
    make_mnist(tmp_path / "gz", train=12, test=9, gz=True)
    make_mnist(tmp_path / "plain", train=12, test=9, gz=False)
    for resize in (None, 32, (14, 20)):
        a = _all(D.load_data_mnist(5, resize, root=tmp_path / "gz")[1])
        b = _all(D.load_data_mnist(5, resize, root=tmp_path / "plain")[1])
        size = {None: (28, 28), 32: (32, 32)}.get(resize, resize)
        assert a[0].shape == (9, 1, *size)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert 0.0 <= float(a[0].min()) and float(a[0].max()) <= 1.0


def test_unpacked_files_are_checked_before_torchvision_reads_them(tmp_path):
    make_mnist(tmp_path, train=5, test=5, gz=False)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IdxFormatError, match="truncated"):
        D.load_data_mnist(4, root=tmp_path)
    D.write_idx(path, np.zeros((4, 28, 28), dtype=np.uint8))  # 4 images, 5 labels
    with pytest.raises(IdxFormatError, match=r"\(4, 28, 28\) .* \(5,\) are not"):
        D.load_data_mnist(4, root=tmp_path)


def test_only_the_test_split_is_split_with_a_warning(tmp_path):
    made = make_mnist(tmp_path, test=50)
    with pytest.warns(DataFallbackWarning, match=r"only the official test split.*40.*10"):
        train_iter, test_iter = D.load_data_mnist(8, root=tmp_path, seed=3)
    train, test = train_iter.dataset, test_iter.dataset
    assert isinstance(train, Subset) and isinstance(test, Subset)
    assert (len(train), len(test)) == (40, 10)
    assert set(train.indices).isdisjoint(test.indices)
    assert sorted([*train.indices, *test.indices]) == list(range(50))
    X, y = _all(test_iter)  # the right images under the right labels
    images, labels = made["test"]
    assert torch.equal(X[:, 0], torch.from_numpy(images[test.indices]).float().div(255))
    assert torch.equal(y, torch.from_numpy(labels[test.indices]).long())

    with pytest.warns(DataFallbackWarning):
        same = D.load_data_mnist(8, root=tmp_path, seed=3)
        other = D.load_data_mnist(8, root=tmp_path, seed=4)
    assert same[0].dataset.indices == train.indices and same[1].dataset.indices == test.indices
    assert other[0].dataset.indices != train.indices


def test_a_batch_holds_the_samples_given_one_by_one(tmp_path):
    """A DataLoader asks for its batch at once (__getitems__): the same samples, bit for bit."""
    make_mnist(tmp_path, test=30)
    with pytest.warns(DataFallbackWarning):
        _, test_iter = D.load_data_mnist(8, root=tmp_path)
    dataset = test_iter.dataset.dataset  # the images under the Subset
    indices = [29, 0, 7, 7, 13]
    for i, (image, label) in zip(indices, dataset.__getitems__(indices), strict=True):
        want_image, want_label = dataset[i]
        assert image.shape == want_image.shape == (1, 28, 28)
        assert torch.equal(image, want_image), f"image {i} differs from dataset[{i}]"
        assert type(label) is int and label == want_label


def test_training_loader_is_seeded_and_reshuffles(tmp_path):
    make_mnist(tmp_path, train=64, test=8)
    order = [_all(D.load_data_mnist(16, root=tmp_path, seed=s)[0])[1] for s in (0, 0, 1)]
    assert torch.equal(order[0], order[1])
    assert not torch.equal(order[0], order[2])
    train_iter, _ = D.load_data_mnist(16, root=tmp_path, seed=0)
    first, second = _all(train_iter)[1], _all(train_iter)[1]
    assert torch.equal(first, order[0]) and not torch.equal(first, second)


def test_fashion_mnist_reads_its_own_folder(tmp_path):
    made = make_mnist(tmp_path, train=20, test=10, folder="FashionMNIST")
    with pytest.raises(FileNotFoundError, match="No MNIST data"):
        D.load_data_mnist(4, root=tmp_path)
    train_iter, test_iter = D.load_data_fashion_mnist(4, root=tmp_path)
    assert (len(train_iter.dataset), len(test_iter.dataset)) == (20, 10)
    assert torch.equal(_all(test_iter)[1], torch.from_numpy(made["test"][1]).long())
    names = D.get_fashion_mnist_labels(torch.tensor([0, 9, 5]))
    assert names == ["t-shirt", "ankle boot", "sandal"]


@pytest.mark.parametrize(
    "present", [[], ["t10k-images-idx3-ubyte.gz"], ["train-labels-idx1-ubyte"]]
)
def test_missing_data_says_what_to_do(tmp_path, present):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in present:  # one file of a pair is not a split
        (raw / name).write_bytes(_valid_idx())
    for load, folder in [(D.load_data_mnist, "MNIST"), (D.load_data_fashion_mnist, "FashionMNIST")]:
        with pytest.raises(FileNotFoundError) as err:
            load(4, root=tmp_path)
        message = str(err.value)
        assert "make data" in message and "TORCHDRILL_DATA" in message
        assert str(tmp_path / folder / "raw") in message


def test_real_mnist_test_split():
    """The official t10k files (10,000 images): split 8,000 / 2,000 when alone."""
    root = _shared_datasets()
    if root is None:
        pytest.skip("no MNIST t10k files in $TORCHDRILL_DATA or ../shared/datasets")
    images = D.read_idx(D.find_idx_files(root)["test"][0])
    assert images.shape == (10000, 28, 28) and images.dtype == torch.uint8
    both = "train" in D.find_idx_files(root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_iter, test_iter = D.load_data_mnist(500, root=root)
    sizes = (len(train_iter.dataset), len(test_iter.dataset))
    assert sizes == ((60000, 10000) if both else (8000, 2000))
    assert any(issubclass(w.category, DataFallbackWarning) for w in caught) != both
    X, y = _all(test_iter)
    assert X.shape == (sizes[1], 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert float(X.min()) == 0.0 and float(X.max()) == 1.0
    assert 0.05 < float(X.mean()) < 0.25  # MNIST: mostly black background, ~0.13
    counts = torch.bincount(y, minlength=10)
    assert counts.numel() == 10 and int(counts.min()) > sizes[1] // 20  # every digit, roughly even


# --------------------------------------------------------------------------- generated digits


def test_synthetic_mnist_shapes_and_determinism():
    train, test = D.synthetic_mnist(230, 57, seed=5)
    X, y = train.tensors
    assert X.shape == (230, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert test.tensors[0].shape == (57, 1, 28, 28)
    assert float(X.min()) >= 0.0 and float(X.max()) <= 1.0
    assert torch.equal(X * 255, (X * 255).round())  # bytes / 255, like ToTensor of MNIST
    assert 0.05 < float(X.mean()) < 0.4  # strokes on a dark background
    again_train, again_test = D.synthetic_mnist(230, 57, seed=5)
    assert torch.equal(X, again_train.tensors[0]) and torch.equal(y, again_train.tensors[1])
    assert torch.equal(test.tensors[0], again_test.tensors[0])
    other = D.synthetic_mnist(230, 57, seed=6)[0]
    assert not torch.equal(X, other.tensors[0])
    longer_test = D.synthetic_mnist(230, 100, seed=5)[0]  # training set independent of num_test
    assert torch.equal(X, longer_test.tensors[0])
    assert not torch.equal(X[:57], test.tensors[0])  # the test images are other images


def test_synthetic_mnist_is_class_balanced():
    train, test = D.synthetic_mnist(1003, 200, seed=0)
    for counts, n in [(torch.bincount(train.tensors[1], minlength=10), 1003),
                      (torch.bincount(test.tensors[1], minlength=10), 200)]:
        assert counts.numel() == 10 and int(counts.sum()) == n
        assert int(counts.max()) - int(counts.min()) <= 1
    assert train.tensors[1][:20].unique().numel() > 5  # shuffled, not 0, 1, 2, ... in order


@pytest.fixture
def one_thread():
    """Small tensors run faster on one thread, and much faster on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_synthetic_mnist_is_learnable_but_not_trivial(one_thread):
    torch.manual_seed(0)
    train, test = D.synthetic_mnist(1500, 500, seed=0)
    X, y = train.tensors
    Xt, yt = test.tensors
    # Classes differ on average: nearest class mean beats chance (10 %) ...
    means = torch.stack([X[y == k].mean(0) for k in range(10)]).flatten(1)
    nearest = torch.cdist(Xt.flatten(1), means).argmin(1)
    nearest_acc = float((nearest == yt).float().mean())
    # ... and a small MLP does far better (~0.78 here), but not perfectly.
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)
    )
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    loader = D.load_array((X, y), 100, seed=0)
    for _ in range(6):
        for xb, yb in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()
    with torch.no_grad():
        mlp_acc = float((net(Xt).argmax(1) == yt).float().mean())
    assert 0.2 < nearest_acc < 0.8, nearest_acc
    assert 0.65 < mlp_acc < 0.98, mlp_acc
    assert mlp_acc > nearest_acc + 0.1, (mlp_acc, nearest_acc)


def test_load_mnist_or_synthetic_picks_its_source(tmp_path):
    with pytest.warns(DataFallbackWarning, match="generated digits"):
        train_iter, test_iter, source = D.load_mnist_or_synthetic(
            32, root=tmp_path, num_synthetic=(96, 40), seed=2
        )
    assert source == "synthetic"
    X, y = _all(test_iter)
    expected = D.synthetic_mnist(96, 40, seed=2)[1].tensors
    assert torch.equal(X, expected[0]) and torch.equal(y, expected[1])
    Xb, yb = next(iter(train_iter))
    assert Xb.shape == (32, 1, 28, 28) and Xb.dtype == torch.float32 and yb.dtype == torch.int64
    with pytest.warns(DataFallbackWarning):
        resized = D.load_mnist_or_synthetic(8, 16, root=tmp_path, num_synthetic=(8, 8))[0]
    assert next(iter(resized))[0].shape == (8, 1, 16, 16)

    make_mnist(tmp_path, test=20)
    with pytest.warns(DataFallbackWarning, match="only the official test split"):
        assert D.load_mnist_or_synthetic(8, root=tmp_path)[2] == "mnist-t10k-split"
    make_mnist(tmp_path, train=20)
    assert D.load_mnist_or_synthetic(8, root=tmp_path)[2] == "mnist"
    # corrupt files are an error, not a reason to fall back
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz").write_bytes(b"\x00\x00\x08")
    with pytest.raises(IdxFormatError):
        D.load_mnist_or_synthetic(8, root=tmp_path)


# --------------------------------------------------------------------------- load_array


def test_load_array_batches_and_shuffles_deterministically():
    features = torch.arange(50.0).reshape(25, 2)
    labels = torch.arange(25)
    batches = list(D.load_array((features, labels), 10))
    assert [len(b[1]) for b in batches] == [10, 10, 5]
    X, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    assert torch.equal(X, features[y])  # rows stay paired
    assert sorted(y.tolist()) == list(range(25)) and y.tolist() != list(range(25))
    again = torch.cat([b[1] for b in D.load_array((features, labels), 10)])
    assert torch.equal(y, again)
    in_order = torch.cat([b[1] for b in D.load_array((features, labels), 10, is_train=False)])
    assert in_order.tolist() == list(range(25))


# --------------------------------------------------------------------------- datasets/fetch.py


def _fetch_module():
    path = REPO / "datasets" / "fetch.py"
    spec = importlib.util.spec_from_file_location("torchdrill_fetch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://m1/, got:\n"
                     "<urlopen error [Errno -2] Name or service not known>\n"),
        URLError("[Errno -3] Temporary failure in name resolution"),
        PermissionError(13, "Permission denied"),
    ],
)
def test_fetch_offline_fails_in_one_line(tmp_path, monkeypatch, capsys, error):
    from torchvision import datasets

    def offline(self):
        raise error

    monkeypatch.setattr(datasets.MNIST, "download", offline)
    assert _fetch_module().main(["--root", str(tmp_path), "all"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not get MNIST" in err and str(tmp_path) in err
    reason = {RuntimeError: "Name or service not known", URLError: "name resolution",
              PermissionError: "Permission denied"}[type(error)]
    assert reason in err


def test_fetch_keeps_files_already_there(tmp_path, capsys):
    """Unpacked files already in place: torchvision checks them and downloads nothing."""
    make_mnist(tmp_path, train=30, test=12, gz=False)
    assert _fetch_module().main(["--root", str(tmp_path), "mnist"]) == 0
    assert "MNIST: 30 training and 12 test images" in capsys.readouterr().out


# --------------------------------------------------------------------------- the package


def test_import_torchdrill_is_cheap():
    code = ("import sys, torchdrill; "
            "print(sorted(m for m in ('torch', 'torchvision', 'matplotlib', 'IPython', "
            "'torchdrill.data', 'torchdrill.plot') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "[]"


def test_student_helpers_hold_no_solutions():
    """torchdrill is importable by students: none of the exercises' functions may live there."""
    solutions = {"softmax", "log_softmax", "cross_entropy", "accuracy", "evaluate_accuracy",
                 "train_epoch_ch3", "train_ch3", "train_mlp", "train_gpu", "sgd", "relu",
                 "mlp_forward", "init_mlp_params", "build_mlp", "evaluate_accuracy_gpu",
                 "linreg", "squared_loss", "try_gpu", "try_all_gpus"}
    for name in ("__init__.py", "data.py", "plot.py"):
        tree = ast.parse((REPO / "torchdrill" / name).read_text())
        defined = {n.name for n in ast.walk(tree)
                   if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)}
        assert not defined & solutions, (name, defined & solutions)
