"""Plotting as the book does it: ``plot`` (§2.4.1), ``show_images`` (§3.5.1), ``Animator``
(§3.6.6), ``show_trace_2d`` (§11.3) and the course notes' ``plot_surface``, on matplotlib.

In a Jupyter notebook the figures draw inline, through pyplot, as in the book. Everywhere else
-- a script, a test, the grader -- nothing opens a window and nothing calls ``plt.show()``:
the figures are plain ``matplotlib.figure.Figure`` objects drawn with the Agg (PNG) canvas,
outside pyplot's list of open figures, so save them with ``fig.savefig("name.png")``, and an
``Animator`` rewrites its PNG file after every point it adds.

Importing this module imports neither matplotlib nor IPython; matplotlib loads on the first
drawing, and IPython is only looked at when the program has already imported it.
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Animator", "in_notebook", "plot", "plot_surface", "set_axes", "show_images",
           "show_trace_2d"]

#: Line formats for successive curves, as in the book; more curves cycle through them.
FMTS = ("-", "m--", "g-.", "r:")


def in_notebook() -> bool:
    """True when running inside a Jupyter (IPython) kernel.

    Looks only at an IPython that the program has already imported -- a kernel always has --
    so a plain script never pays for importing IPython.
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    # ZMQInteractiveShell (Jupyter) and Colab's shell carry a kernel; the terminal one doesn't.
    return shell is not None and getattr(shell, "kernel", None) is not None


def _new_figure(figsize: tuple[float, float], notebook: bool) -> Figure:
    """A pyplot figure in a notebook (shown inline at the end of the cell); elsewhere a bare
    Figure on the Agg canvas that pyplot does not track, so none pile up in memory."""
    if notebook:
        import matplotlib.pyplot as plt

        _use_svg_display()
        return plt.figure(figsize=figsize)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _use_svg_display() -> None:
    """Inline figures as SVG, crisp at any zoom (``d2l.use_svg_display``, §2.4.1)."""
    try:
        from matplotlib_inline import backend_inline
    except ImportError:  # an old IPython without matplotlib_inline: keep its default
        return
    backend_inline.set_matplotlib_formats("svg")


def _as_plottable(x: Any) -> Any:
    """Tensors (on any device, with or without grad) as NumPy arrays; anything else as is."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return x


def _has_one_axis(x: Any) -> bool:
    """True if ``x`` is one curve's values: a 1-d array/tensor or a list of numbers."""
    if hasattr(x, "ndim"):
        return x.ndim == 1
    return isinstance(x, list | tuple) and (len(x) == 0 or not hasattr(x[0], "__len__"))


def set_axes(
    axes: Axes,
    xlabel: str | None,
    ylabel: str | None,
    xlim: tuple[float, float] | None,
    ylim: tuple[float, float] | None,
    xscale: str,
    yscale: str,
    legend: Sequence[str] | None,
) -> None:
    """Label, scale and bound ``axes``, add a legend and a grid (``d2l.set_axes``, §2.4.1)."""
    axes.set_xlabel(xlabel or "")  # None clears the label, as matplotlib does with None
    axes.set_ylabel(ylabel or "")
    axes.set_xscale(xscale)
    axes.set_yscale(yscale)
    axes.set_xlim(xlim)
    axes.set_ylim(ylim)
    if legend:
        axes.legend(legend)
    axes.grid()


def plot(
    X: Any,
    Y: Any = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    legend: Sequence[str] | None = None,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    xscale: str = "linear",
    yscale: str = "linear",
    fmts: Sequence[str] = FMTS,
    figsize: tuple[float, float] = (3.5, 2.5),
    axes: Axes | None = None,
) -> Axes:
    """Plot one or more curves (``d2l.plot``, §2.4.1) and return the axes.

    ``X`` and ``Y`` are a curve (1-d tensor, array or list of numbers) or a list of curves.
    With ``Y=None`` the curves in ``X`` are plotted against their index; with one ``X`` and
    several ``Y`` s, every curve shares that ``X``. Curve ``i`` gets format ``fmts[i]`` (they
    cycle when there are more curves than formats) and legend entry ``legend[i]``.

    Example (the book's tangent line)::

        x = torch.arange(0, 3, 0.1)
        plot(x, [x**3 - 1 / x, 4 * x - 4], "x", "f(x)", legend=["f(x)", "tangent at x=1"])

    The axes are cleared first. Without ``axes`` a new ``figsize`` figure is made; outside a
    notebook save it with ``ax.figure.savefig("plot.png")``.
    """
    X, Y = _as_plottable(X), _as_plottable(Y)
    if _has_one_axis(X):
        X = [X]
    X = [_as_plottable(x) for x in X]
    if Y is None:
        X, Y = [[]] * len(X), X
    elif _has_one_axis(Y):
        Y = [Y]
    Y = [_as_plottable(y) for y in Y]
    if len(X) != len(Y):
        if len(X) != 1:
            raise ValueError(f"plot: {len(X)} x-curves for {len(Y)} y-curves; give 1 or {len(Y)}")
        X = X * len(Y)
    if axes is None:
        axes = _new_figure(figsize, in_notebook()).add_subplot()
    axes.cla()
    for x, y, fmt in zip(X, Y, itertools.cycle(fmts)):
        if len(x):
            axes.plot(x, y, fmt)
        else:
            axes.plot(y, fmt)
    set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend)
    return axes


def _as_image(img: Any) -> Any:
    """A tensor or array as matplotlib's imshow wants it: (H, W) or (H, W, C)."""
    img = _as_plottable(img)
    shape = getattr(img, "shape", None)
    if shape is not None and len(shape) == 3 and shape[0] in (1, 3, 4) and shape[-1] not in (3, 4):
        img = img[0] if shape[0] == 1 else img.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    return img


def show_images(
    imgs: Any,
    num_rows: int,
    num_cols: int,
    titles: Sequence[str] | None = None,
    scale: float = 1.5,
    *,
    cmap: str | None = None,
) -> Any:
    """Show images on a ``num_rows`` x ``num_cols`` grid (``d2l.show_images``, §3.5.1).

    ``imgs`` is any sequence of images -- tensors or arrays of shape (H, W), (1, H, W), (C, H,
    W) or (H, W, C), or PIL images -- of which the first ``num_rows * num_cols`` are shown,
    each under its title when ``titles`` is given. Returns the flattened array of axes
    (``axes[0].figure`` is the figure). For example (§3.5.1)::

        X, y = next(iter(train_iter))
        show_images(X.reshape(18, 28, 28), 2, 9, titles=get_fashion_mnist_labels(y))
    """
    fig = _new_figure((num_cols * scale, num_rows * scale), in_notebook())
    axes = fig.subplots(num_rows, num_cols, squeeze=False).flatten()
    for i, (ax, img) in enumerate(zip(axes, imgs, strict=False)):
        ax.imshow(_as_image(img), cmap=cmap)
        ax.axes.get_xaxis().set_visible(False)
        ax.axes.get_yaxis().set_visible(False)
        if titles:
            ax.set_title(titles[i])
    return axes


def _grid(f: Any, x1: Any, x2: Any) -> Any:
    """`f` on the grid of points (x1[i, j], x2[i, j]), as a NumPy array: `f` takes a tensor of
    points `(..., 2)` (``himmelblau``) and returns one value per point."""
    import torch

    points = torch.stack([torch.as_tensor(x1), torch.as_tensor(x2)], dim=-1)
    with torch.no_grad():
        return _as_plottable(torch.as_tensor(f(points)))


def _trace_points(trace: Any) -> Any:
    """An optimizer's path as a NumPy array `(k, 2)`: a tensor (descend's result) or a list of
    points (tensors or pairs of numbers)."""
    import numpy as np

    if hasattr(trace, "detach"):
        return _as_plottable(trace).reshape(-1, 2)
    return np.array([[float(c) for c in _as_plottable(point)] for point in trace],
                    dtype=float).reshape(-1, 2)


def _around(values: Any) -> tuple[float, float]:
    """The range of `values` with a margin: a tenth of the span, at least 1."""
    lo, hi = float(values.min()), float(values.max())
    margin = max(1.0, (hi - lo) / 10)
    return lo - margin, hi + margin


def show_trace_2d(
    f: Any,
    trace: Any,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    step: float = 0.1,
    figsize: tuple[float, float] = (3.5, 2.5),
    axes: Axes | None = None,
) -> Axes:
    """The contour lines of ``f`` with an optimizer's path on top (``d2l.show_trace_2d``,
    §11.3), and the axes.

    ``f`` maps a tensor of points ``(..., 2)`` to one value per point, as ``himmelblau`` does
    (the book's ``f`` takes ``x1, x2`` apart); ``trace`` is the path, ``(k, 2)``: what
    ``descend`` returns, or a list of points. The contours cover ``xlim`` x ``ylim``, sampled
    every ``step``; by default the path's range with a margin. For example::

        path = descend(himmelblau, torch.tensor([-1.0, 0.0]), adam,
                       init_adam_states([torch.zeros(2)]), {"lr": 0.1, "t": 1}, 200)
        show_trace_2d(himmelblau, path)
    """
    import torch

    points = _trace_points(trace)
    xlim = xlim or _around(points[:, 0])
    ylim = ylim or _around(points[:, 1])
    x1, x2 = torch.meshgrid(torch.arange(*xlim, step), torch.arange(*ylim, step), indexing="ij")
    if axes is None:
        axes = _new_figure(figsize, in_notebook()).add_subplot()
    axes.cla()
    axes.plot(points[:, 0], points[:, 1], "-o", color="#ff7f0e")
    axes.contour(x1.numpy(), x2.numpy(), _grid(f, x1, x2), colors="#1f77b4")
    axes.set_xlim(xlim)
    axes.set_ylim(ylim)
    axes.set_xlabel("x1")
    axes.set_ylabel("x2")
    return axes


def plot_surface(
    f: Any,
    xlim: tuple[float, float] = (-6.0, 6.0),
    ylim: tuple[float, float] = (-6.0, 6.0),
    step: float = 0.1,
    view: tuple[float, float] = (60.0, -30.0),
    figsize: tuple[float, float] = (5.0, 4.0),
) -> Any:
    """The surface z = f(x, y) over ``xlim`` x ``ylim``, sampled every ``step``, seen from
    ``view`` = (elevation, azimuth) in degrees, as the course notes draw Himmelblau's function
    (``plot_surface(himmelblau)``); returns the 3-d axes (``ax.figure`` is the figure).

    ``f`` maps a tensor of points ``(..., 2)`` to one value per point.
    """
    import torch

    x, y = torch.meshgrid(torch.arange(*xlim, step), torch.arange(*ylim, step), indexing="xy")
    axes = _new_figure(figsize, in_notebook()).add_subplot(projection="3d")
    axes.plot_surface(x.numpy(), y.numpy(), _grid(f, x, y), cmap="viridis")
    axes.view_init(*view)
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    return axes


def _save_png_atomically(fig: Figure, path: Path) -> None:
    """Write ``fig`` to ``path`` so a reader never sees half a file: a temporary file in the
    same folder, then ``os.replace`` (atomic on one file system)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Animator:
    """Curves that grow while a model trains (``d2l.Animator``, §3.6.6).

    ``add(x, y)`` appends one point to each curve -- ``y`` a number or one number per curve,
    ``None`` to skip that curve this time -- and redraws::

        animator = Animator(xlabel="epoch", xlim=[1, num_epochs], ylim=[0.3, 0.9],
                            legend=["train loss", "train acc", "test acc"])
        for epoch in range(num_epochs):
            ...
            animator.add(epoch + 1, (train_loss, train_acc, test_acc))

    In a Jupyter notebook the figure redraws in place in the cell's output (``display`` then
    ``clear_output(wait=True)``). Elsewhere it is written to the PNG file ``path`` (default
    ``training_curves.png`` in the working directory when the Animator is made) after every
    ``add``, atomically, so a viewer that reloads the file never sees half an image. In a
    notebook a ``path`` given explicitly is written too.
    """

    def __init__(
        self,
        xlabel: str | None = None,
        ylabel: str | None = None,
        legend: Sequence[str] | None = None,
        xlim: tuple[float, float] | None = None,
        ylim: tuple[float, float] | None = None,
        xscale: str = "linear",
        yscale: str = "linear",
        fmts: Sequence[str] = FMTS,
        nrows: int = 1,
        ncols: int = 1,
        figsize: tuple[float, float] = (3.5, 2.5),
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.notebook = in_notebook()
        if path is not None:
            self.path: Path | None = Path(path).absolute()
        else:
            self.path = None if self.notebook else Path.cwd() / "training_curves.png"
        # In a notebook a pyplot figure, as in the book: besides the redraws of add(), the
        # cell shows its final state when it ends, even if the cell printed after the last add.
        self.fig = _new_figure(figsize, self.notebook)
        self.axes = list(self.fig.subplots(nrows, ncols, squeeze=False).flatten())
        self._config = (xlabel, ylabel, xlim, ylim, xscale, yscale, list(legend or []))
        self.X: list[list[Any]] = []
        self.Y: list[list[Any]] = []
        self.fmts = fmts

    def config_axes(self) -> None:
        """Apply the labels, limits, scales and legend to the first axes."""
        set_axes(self.axes[0], *self._config)

    def add(self, x: Any, y: Any) -> None:
        """Append ``(x, y)`` (or ``(x[i], y[i])`` to curve ``i``) and redraw."""
        if not hasattr(y, "__len__"):
            y = [y]
        n = len(y)
        if not hasattr(x, "__len__"):
            x = [x] * n
        while len(self.X) < n:
            self.X.append([])
            self.Y.append([])
        for i, (a, b) in enumerate(zip(x, y, strict=True)):
            if a is not None and b is not None:
                self.X[i].append(float(_as_plottable(a)))
                self.Y[i].append(float(_as_plottable(b)))
        ax = self.axes[0]
        ax.cla()
        for xs, ys, fmt in zip(self.X, self.Y, itertools.cycle(self.fmts)):
            ax.plot(xs, ys, fmt)
        self.config_axes()
        if self.path is not None:
            _save_png_atomically(self.fig, self.path)
        if self.notebook:
            from IPython import display

            display.display(self.fig)
            display.clear_output(wait=True)
