"""The dispatcher guard's families are derived, not remembered: every operator of every
namespace is run on each family's probes (tests/kit/family_probes.py), and each one that
computes the family's result must be named by the lists that forbid the family and refused by
the guard armed with them; the operators the contract leaves allowed must stay allowed. The
search prints what it found per family."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from grader.sandbox import dispatch_guard
from tests.kit.family_probes import CONTRACT_LISTS, FAMILIES
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(60)  # rough seconds; see tests/kit/conftest.py


@pytest.fixture(scope="module")
def derived() -> dict:
    run = subprocess.run([sys.executable, "-m", "tests.kit.family_probes"], cwd=KIT_ROOT,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    print(listing(report))
    return report


def listing(report: dict) -> str:
    """What the search found, a line per operator and family."""
    lines = [f"{report['operators']} operators, {report['probes']} probes, namespaces "
             f"{', '.join(report['namespaces'])} (skipped: "
             f"{', '.join(report['skipped_namespaces'])}); crashed the search process: "
             f"{', '.join(report['crashed']) or 'none'}; hung: "
             f"{', '.join(report['hung']) or 'none'}"]
    for family, entry in report["families"].items():
        lines.append(f"{family} (forbidden by {', '.join(entry['forbidden_by'])}):")
        for op in entry["found"]:
            lines.append(f"  {op['op']:48} {op['result']:32} on {op['probe']}"
                         + ("  [allowed]" if op["allowed"] else ""))
    return "\n".join(lines)


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_every_operator_computing_a_family_is_refused(derived, family):
    entry = derived["families"][family]
    assert entry["forbidden_by"], f"no forbidden list arms {family}"
    escapes = [(op["op"], where, op["listed"][where], op["refused"][where])
               for op in entry["found"] if not op["allowed"]
               for where in entry["forbidden_by"]
               if not (op["listed"][where] and op["refused"][where] is True)]
    assert not escapes, (
        f"operators that compute {family}'s result, as (operator, list, named by the list, "
        f"refused by the guard): {escapes}\n{listing(derived)}")


@pytest.mark.parametrize("family", [f.name for f in FAMILIES if f.allowed])
def test_allowed_operators_stay_allowed(derived, family):
    found = derived["families"][family]["found"]
    refused = [(op["op"], where) for op in found if op["allowed"]
               for where, verdict in op["refused"].items() if verdict is not False]
    assert any(op["allowed"] for op in found)
    assert not refused, refused


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_the_known_equivalents_are_found(derived, family):
    entry = derived["families"][family]
    found = {op["base"] for op in entry["found"]}
    assert set(entry["known"]) <= found, (set(entry["known"]) - found, sorted(found))


def test_the_search_reaches_every_namespace(derived):
    assert {"aten", "quantized", "_quantized", "prims", "mkldnn", "sparse", "onednn",
            "torchvision"} <= set(derived["namespaces"])
    assert derived["operators"] > 3000


@pytest.mark.parametrize(("names", "expected"), [
    (("F.dropout",), {"aten::dropout", "aten::native_dropout", "aten::feature_dropout",
                      "aten::alpha_dropout", "quantized::dropout"}),
    (("nn.Dropout", "torch.dropout", "F.dropout2d"), {"aten::dropout", "aten::feature_dropout"}),
    (("F.conv2d",), {"aten::conv2d", "aten::convolution", "aten::_convolution",
                     "aten::convolution_backward", "quantized::conv2d",
                     "mkldnn::_convolution_pointwise"}),
    (("nn.Conv2d", "torch.conv_transpose2d"), {"aten::conv2d", "aten::conv_transpose2d"}),
    (("F.max_pool2d",), {"aten::max_pool2d", "aten::max_pool2d_with_indices",
                         "quantized::max_pool2d"}),
    (("F.avg_pool2d", "nn.AdaptiveAvgPool2d"), {"aten::avg_pool2d", "aten::adaptive_avg_pool2d",
                                                "aten::_adaptive_avg_pool2d"}),
    (CONTRACT_LISTS["conv"], {"aten::conv2d", "aten::max_pool2d", "aten::avg_pool2d",
                              "aten::adaptive_max_pool2d"}),
    (("torch.softmax",), {"aten::_safe_softmax", "aten::ctc_loss", "aten::_ctc_loss",
                          "quantized::softmax"}),
])
def test_names_map_to_the_operators_that_compute_them(names, expected):
    found = {overload.partition(".")[0] for overload in dispatch_guard.operators(names)}
    assert expected <= found, expected - found


@pytest.mark.parametrize(("names", "exactly"), [
    (("torch.linalg.lstsq",), {"aten::linalg_lstsq"}),  # not the whole of torch.linalg.*
    (("F.one_hot",), {"aten::one_hot"}),
])
def test_a_name_stands_for_its_own_family_only(names, exactly):
    assert {o.partition(".")[0] for o in dispatch_guard.operators(names)} == exactly


@pytest.mark.parametrize("names", [CONTRACT_LISTS["conv"], CONTRACT_LISTS["regularization"],
                                   ("F.conv2d", "F.max_pool2d", "F.avg_pool2d")])
def test_the_sliding_window_stays_allowed(names):
    """Tensor.unfold and F.unfold (im2col) are the contract's allowed way to a window."""
    found = {overload.partition(".")[0] for overload in dispatch_guard.operators(names)}
    assert not found & {"aten::unfold", "aten::unfold_backward", "aten::im2col",
                        "aten::col2im", "aten::mul", "aten::sum", "aten::amax", "aten::mean"}


TORCHVISION_DURING_A_CALL = '''
import torch
from grader.sandbox import dispatch_guard
from grader.sandbox.forbidden import ForbiddenCallError, GuardState

X, K = torch.randn(1, 1, 6, 7), torch.randn(1, 1, 2, 3)

def corr2d():
    import torchvision  # registers torchvision's operators, after the guard armed its own
    return torch.ops.torchvision.deform_conv2d(
        X, K, torch.zeros(1, 12, 5, 5), torch.ones(1, 6, 5, 5), torch.zeros(1),
        1, 1, 0, 0, 1, 1, 1, 1, False)

dispatch_guard.keep_armed_between_calls()
for call in range(2):
    state = GuardState({}, "corr2d")
    try:
        with dispatch_guard.armed(("F.conv2d",), state):
            corr2d()
        print(call, "ran", sorted(state.hits))
    except ForbiddenCallError:
        print(call, "refused", sorted(state.hits))
'''


def test_operators_registered_during_a_call_are_recorded():
    """A call that imports torchvision computes with its convolution before the guard could
    arm it: that call is recorded as a forbidden call, and the next one is refused."""
    run = subprocess.run([sys.executable, "-c", TORCHVISION_DURING_A_CALL], cwd=KIT_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    first, second = run.stdout.splitlines()
    assert first.startswith("0 ran") and "torchvision::deform_conv2d, registered while" in first
    assert second.startswith("1 refused") and "torchvision::deform_conv2d" in second
