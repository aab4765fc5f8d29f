"""Training curves: the training tests record the student's history beside the reference's,
trained by the grader from the same starting point on the same data (never by running the
reference in the student's worker); report.html draws them, and the class page shows the spread
of the final accuracies."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from types import SimpleNamespace

import pytest

from grader import plugin
from grader.instructor.class_report import class_page
from grader.report import formats, svgchart
from grader.report.schema import Report
from tests.kit.test_schema import validate
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(20)  # rough seconds; see tests/kit/conftest.py


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The reference's MNIST training tests of mlp and gpu_training, graded."""
    out = tmp_path_factory.mktemp("curves")
    run = subprocess.run([sys.executable, "-m", "grader", "grade", "solutions", "--topics",
                          "mlp,gpu_training", "--suite", "hidden", "-k", "learns_mnist",
                          "--out", str(out)], cwd=KIT_ROOT, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return out, json.loads((out / "report.json").read_text())


def test_each_training_test_records_its_curve_beside_the_reference(trained):
    _, report = trained
    validate(report, Report)
    curves = {t["name"]: t["curve"] for topic in report["topics"] for t in topic["tests"]}
    assert sorted(curves) == ["test_train_gpu_learns_mnist", "test_train_mlp_learns_mnist"]
    for curve in curves.values():
        assert curve["x"] == [1, 2] and curve["x_label"] == "epoch"
        names = [s["name"] for s in curve["series"]]
        assert names == ["test accuracy", "training loss", "training accuracy"]
        for series in curve["series"]:
            assert len(series["yours"]) == len(series["reference"]) == 2
            # the reference solution takes the reference's steps: the same curve, up to rounding
            assert series["yours"] == pytest.approx(series["reference"], rel=1e-3, abs=1e-3)
        loss = curve["series"][1]["reference"]
        assert loss[1] < loss[0]


def test_report_html_draws_each_curve(trained):
    out, _ = trained
    page = (out / "report.html").read_text()
    assert page.count('<figure class="curves"><svg') == 2
    assert "test accuracy" in page and "training loss" in page


def test_the_class_page_shows_the_spread_of_final_accuracies(trained):
    _, report = trained
    other = copy.deepcopy(report)
    for topic in other["topics"]:
        for test in topic["tests"]:
            test["curve"]["series"][0]["yours"][-1] = 0.5
    page = class_page({"a": report, "b": other}, "class")
    assert "Training curves: final values" in page
    assert page.count("data:image/png;base64,") == 2  # the histograms and the spread


def test_record_curve_keeps_finite_numbers_only(monkeypatch):
    running = SimpleNamespace(curve=None)
    monkeypatch.setattr(plugin, "_running", running)
    plugin.record_curve("t", "epoch", [1, 2, 3],
                        [("acc", [0.5, math.nan, True], [0.25, math.inf, "x"])] * 9)
    assert running.curve["series"][0] == {"name": "acc", "yours": [0.5, None, None],
                                          "reference": [0.25, None, None]}
    assert len(running.curve["series"]) == plugin.MAX_CURVE_SERIES
    json.dumps(running.curve, allow_nan=False)
    monkeypatch.setattr(plugin, "_running", None)
    plugin.record_curve("t", "epoch", [1], [])  # outside a grading run: nothing, no error


CURVE = {"title": "t", "x_label": "epoch", "x": [1, 2, 3, 4],
         "series": [{"name": "test accuracy", "yours": [0.5, None, 0.75, 0.8],
                     "reference": [0.25, 0.5, 0.625, 0.875]},
                    {"name": "training loss", "yours": [2.0, 1.0, 0.5, 0.25],
                     "reference": [2.5, 1.5, 0.5, 0.125]}]}


def test_a_curve_is_drawn_as_svg_without_matplotlib():
    """report.html's curves are written by hand (svgchart): valid SVG, one panel a series,
    a missing value breaks the student's line, the same bytes each time, and no matplotlib
    (about a second after every graded submission, where it drew them)."""
    code = ("import json, sys, xml.etree.ElementTree as ET\n"
            "from grader.report.formats import curve_svg\n"
            f"curve = json.loads({json.dumps(json.dumps(CURVE))})\n"
            "svg = curve_svg(curve)\n"
            "assert svg == curve_svg(curve)\n"
            "root = ET.fromstring(svg)\n"
            "ns = '{http://www.w3.org/2000/svg}'\n"
            "print(json.dumps({'mpl': 'matplotlib' in sys.modules,\n"
            "  'lines': [p.get('stroke') for p in root.iter(ns + 'polyline')],\n"
            "  'texts': [t.text for t in root.iter(ns + 'text')]}))\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=KIT_ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    seen = json.loads(run.stdout)
    assert not seen["mpl"]
    yours, reference = formats.CURVE_COLORS
    # accuracy: yours in two pieces (None at epoch 2), the reference whole; loss: one each
    assert seen["lines"] == [yours, yours, reference, yours, reference]
    assert {"test accuracy", "training loss", "yours", "reference", "epoch"} <= set(
        seen["texts"])


@pytest.mark.parametrize(("low", "high"), [(0.885, 0.9025), (0.0, 50.0), (1.0, 1.0),
                                           (-3.5, 1e-3), (0.125, 2.5), (1e-9, 3e-9)])
def test_nice_ticks_cover_the_values_in_round_steps(low, high):
    ticks = svgchart.nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high and 3 <= len(ticks) <= 8, ticks
    steps = {round(b - a, 15) for a, b in zip(ticks, ticks[1:], strict=False)}
    step = steps.pop()
    assert not steps or all(math.isclose(s, step, rel_tol=1e-6) for s in steps), ticks
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 5)), step
