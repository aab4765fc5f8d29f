"""torchdrill.plot outside a notebook: figures off pyplot, curves and grids as in the book, and
an Animator that rewrites a valid PNG atomically; inside a (faked) notebook: inline display."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch

from torchdrill import plot as P

REPO = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _pyplot_figures() -> list[int]:
    import matplotlib.pyplot as plt

    return plt.get_fignums()


def test_import_loads_neither_matplotlib_nor_ipython():
    code = ("import sys, torchdrill.plot; "
            "print(sorted(m for m in ('matplotlib', 'IPython', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "[]"


def test_not_a_notebook_here():
    assert P.in_notebook() is False


def test_plot_one_curve_against_x():
    x = torch.arange(0, 3, 0.1)
    before = _pyplot_figures()
    ax = P.plot(x, x**2, "x", "f(x)", xlim=(0, 3), yscale="log")
    assert _pyplot_figures() == before  # a bare Figure, not one pyplot keeps open
    assert len(ax.get_lines()) == 1 and len(ax.figure.axes) == 1
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), x.numpy())
    np.testing.assert_allclose(line.get_ydata(), (x**2).numpy())
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_yscale()) == ("x", "f(x)", "log")
    assert ax.get_xlim() == (0, 3)
    assert tuple(ax.figure.get_size_inches()) == (3.5, 2.5)


def test_plot_several_curves_share_x_with_legend_and_formats():
    x = torch.arange(0.1, 3, 0.1, requires_grad=True)  # tensors with grad plot too
    ax = P.plot(x, [x**3 - 1 / x, 2 * x - 3], "x", "f(x)", legend=["f(x)", "tangent"],
                figsize=(5, 3))
    lines = ax.get_lines()
    assert len(lines) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["f(x)", "tangent"]
    assert lines[0].get_linestyle() == "-" and lines[1].get_linestyle() == "--"
    np.testing.assert_allclose(lines[1].get_ydata(), (2 * x - 3).detach().numpy())
    assert tuple(ax.figure.get_size_inches()) == (5, 3)


def test_plot_y_only_uses_the_index_and_cycles_formats():
    curves = [[float(i + k) for i in range(4)] for k in range(5)]  # more curves than fmts
    ax = P.plot(curves)
    lines = ax.get_lines()
    assert len(lines) == 5  # the book's zip would drop the fifth
    assert lines[4].get_linestyle() == lines[0].get_linestyle()
    np.testing.assert_allclose(lines[3].get_xdata(), [0, 1, 2, 3])
    np.testing.assert_allclose(lines[3].get_ydata(), curves[3])
    with pytest.raises(ValueError, match="2 x-curves for 3 y-curves"):
        P.plot([[0, 1], [0, 1]], [[0, 1], [1, 2], [2, 3]])


def test_plot_into_given_axes_clears_them_first():
    from matplotlib.figure import Figure

    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    P.plot([1, 2, 3], axes=ax1)
    assert P.plot([[3, 2, 1], [1, 1, 1]], axes=ax1) is ax1
    assert len(ax1.get_lines()) == 2 and len(ax2.get_lines()) == 0
    assert len(fig.axes) == 2


def test_show_images_grid_and_titles():
    imgs = torch.rand(5, 1, 28, 28)  # (1, H, W) as a loader gives them
    axes = P.show_images(imgs, 2, 3, titles=list("abcde"), scale=1.0)
    assert len(axes) == 6 and len(axes[0].figure.axes) == 6
    shown = [ax for ax in axes if ax.get_images()]
    assert len(shown) == 5
    assert [ax.get_title() for ax in shown] == list("abcde")
    assert shown[0].get_images()[0].get_array().shape == (28, 28)
    np.testing.assert_allclose(shown[2].get_images()[0].get_array(), imgs[2, 0].numpy())
    assert not axes[0].get_xaxis().get_visible()
    assert tuple(axes[0].figure.get_size_inches()) == (3.0, 2.0)
    rgb = P.show_images(torch.rand(1, 3, 8, 8), 1, 1)  # (C, H, W) -> (H, W, C)
    assert rgb[0].get_images()[0].get_array().shape == (8, 8, 3)


def _check_png(path: Path, figsize: tuple[float, float], dpi: float) -> np.ndarray:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)
    assert pixels.shape == (round(figsize[1] * dpi), round(figsize[0] * dpi), 4)
    assert pixels.std() > 0.01  # something is drawn
    return pixels


def test_animator_writes_a_png_after_every_add(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    animator = P.Animator(xlabel="epoch", xlim=[1, 3], ylim=[0, 1],
                          legend=["train loss", "train acc", "test acc"])
    assert animator.path == tmp_path / "training_curves.png" and not animator.path.exists()
    animator.add(1, (0.9, 0.5, None))  # None: no point for that curve yet
    first = _check_png(animator.path, (3.5, 2.5), animator.fig.dpi)
    animator.add(2, (0.6, 0.7, 0.65))
    animator.add(3, (torch.tensor(0.4), 0.8, 0.75))
    last = _check_png(animator.path, (3.5, 2.5), animator.fig.dpi)
    assert not np.array_equal(first, last)  # rewritten, not written once
    lines = animator.axes[0].get_lines()
    assert len(lines) == 3
    assert list(lines[0].get_ydata()) == pytest.approx([0.9, 0.6, 0.4])
    assert list(lines[2].get_xdata()) == [2, 3]
    legend = [t.get_text() for t in animator.axes[0].get_legend().get_texts()]
    assert legend == ["train loss", "train acc", "test acc"]
    assert animator.axes[0].get_xlabel() == "epoch"
    assert sorted(os.listdir(tmp_path)) == ["training_curves.png"]  # no temporary files left


def test_animator_path_and_grid(tmp_path):
    path = tmp_path / "runs" / "curves.png"  # the folder is made
    animator = P.Animator(nrows=2, ncols=2, figsize=(4, 3), path=str(path))
    assert len(animator.axes) == 4
    animator.add([0, 1], [1.0, 2.0])
    _check_png(path, figsize=(4, 3), dpi=animator.fig.dpi)
    assert len(animator.axes[0].get_lines()) == 2


def test_animator_keeps_the_old_png_when_a_write_fails(tmp_path):
    path = tmp_path / "curves.png"
    animator = P.Animator(path=path)
    animator.add(1, 0.5)
    good = path.read_bytes()

    def broken(f, **kwargs):
        f.write(PNG_SIGNATURE + b"half a fi")
        raise OSError("disk full")

    animator.fig.savefig = broken
    with pytest.raises(OSError, match="disk full"):
        animator.add(2, 0.4)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["curves.png"]


@pytest.fixture
def fake_notebook(monkeypatch):
    """An IPython whose shell has a kernel, and an IPython.display that records calls."""
    import matplotlib.pyplot as plt

    plt.close(plt.figure())  # pyplot picks its backend now, not later through the fake IPython
    before = set(plt.get_fignums())
    calls = []
    display = types.ModuleType("IPython.display")
    display.display = lambda obj: calls.append(("display", obj))
    display.clear_output = lambda wait=False: calls.append(("clear_output", wait))
    ipython = types.ModuleType("IPython")
    shell = types.SimpleNamespace(kernel=object())
    ipython.get_ipython = lambda: shell
    ipython.display = display
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    monkeypatch.setattr(P, "_use_svg_display", lambda: None)
    yield shell, calls
    for num in set(plt.get_fignums()) - before:  # in a notebook figures go through pyplot
        plt.close(num)


def test_in_notebook_needs_a_kernel(fake_notebook):
    shell, _ = fake_notebook
    assert P.in_notebook() is True
    shell.kernel = None  # a terminal IPython
    assert P.in_notebook() is False


def test_animator_in_a_notebook_redraws_inline(fake_notebook, tmp_path, monkeypatch):
    _, calls = fake_notebook
    monkeypatch.chdir(tmp_path)
    animator = P.Animator(legend=["loss"])
    assert animator.path is None
    animator.add(1, 0.5)
    animator.add(2, 0.25)
    assert calls == [("display", animator.fig), ("clear_output", True)] * 2
    assert os.listdir(tmp_path) == []  # no PNG unless asked for
    explicit = P.Animator(path="curves.png")
    explicit.add(1, 0.5)
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG_SIGNATURE


def _himmelblau(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 0] ** 2 + x[..., 1] - 11) ** 2 + (x[..., 0] + x[..., 1] ** 2 - 7) ** 2


def test_show_trace_2d_draws_the_path_over_contours():
    path = torch.tensor([[-1.0, 0.0], [-1.5, 1.0], [-2.5, 2.5], [-2.8, 3.1]], requires_grad=True)
    before = _pyplot_figures()
    ax = P.show_trace_2d(_himmelblau, path)
    assert _pyplot_figures() == before
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_xdata(), [-1.0, -1.5, -2.5, -2.8])
    np.testing.assert_allclose(line.get_ydata(), [0.0, 1.0, 2.5, 3.1])
    assert line.get_marker() == "o"
    contours = [c for c in ax.collections if hasattr(c, "levels")]
    assert len(contours) == 1 and len(contours[0].levels) > 2  # f's contour lines
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x1", "x2")
    np.testing.assert_allclose([*ax.get_xlim(), *ax.get_ylim()], [-3.8, 0.0, -1.0, 4.1],
                               atol=1e-6)  # the path's range and a margin of 1


def test_show_trace_2d_takes_a_list_and_a_region():
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    calls = []

    def f(x):
        calls.append(tuple(x.shape))
        return (x ** 2).sum(-1)

    assert P.show_trace_2d(f, [(1.0, 1.0), torch.tensor([0.5, 0.25])], xlim=(-2, 2),
                           ylim=(-1, 1), step=0.5, axes=ax) is ax
    assert calls == [(8, 4, 2)]  # f gets the grid's points at once, (..., 2)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [1.0, 0.25])
    assert ax.get_xlim() == (-2, 2) and ax.get_ylim() == (-1, 1)


def test_plot_surface_as_the_notes_draw_himmelblau():
    before = _pyplot_figures()
    ax = P.plot_surface(_himmelblau)
    assert _pyplot_figures() == before
    assert ax.name == "3d" and (ax.elev, ax.azim) == (60, -30)
    (surface,) = ax.collections
    assert type(surface).__name__ == "Poly3DCollection"
    low, high = ax.get_zlim()
    assert low <= 0 and high >= 2000  # about 0 at the minima, 2100 near (5.9, 5.9)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "y")
    assert tuple(ax.figure.get_size_inches()) == (5, 4)
