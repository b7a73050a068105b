"""Choosing the engine module for the CPU: the rule, the FASTGD_ISA override and its fallback, and
equal results from every module this machine can run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastgd
from fastgd import _core

RUNNABLE = [level for level in _core.built_levels() if level in _core.build_info()["cpu_levels"]]


def run_python(code, isa):
    env = dict(os.environ, FASTGD_ISA=isa)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_build_info_names_the_running_module():
    info = fastgd.build_info()
    assert info["isa"] in _core.LEVELS
    assert info["module"] == _core.module_name(info["isa"])
    assert info["isa"] in info["cpu_levels"] and info["isa"] in info["built_levels"]
    assert info["cpu_levels"][0] == "baseline" and "baseline" in info["built_levels"]
    if os.environ.get("FASTGD_ISA", "auto") == "auto":
        runnable = [level for level in info["built_levels"] if level in info["cpu_levels"]]
        best = [level for level in runnable if _core.LEVELS.index(level) <= _core.LEVELS.index(_core.AUTO_CEILING)][-1]
        assert info["isa"] == best and info["isa_fallback"] is None


def test_simd_matches_the_level():
    info = fastgd.build_info()
    lanes, fma = {"baseline": (4, False), "x86-64-v3": (8, True), "x86-64-v4": (16, True)}[info["isa"]]
    assert info["float32_lanes"] == lanes and info["fma"] == fma


@pytest.mark.parametrize(
    "requested, supported, built, expected, fallback",
    [
        (None, ["baseline", "x86-64-v3", "x86-64-v4"], ["baseline", "x86-64-v3", "x86-64-v4"], "x86-64-v3", False),
        ("x86-64-v4", ["baseline", "x86-64-v3", "x86-64-v4"], ["baseline", "x86-64-v3", "x86-64-v4"], "x86-64-v4", False),
        (None, ["baseline", "x86-64-v3"], ["baseline", "x86-64-v3", "x86-64-v4"], "x86-64-v3", False),
        (None, ["baseline"], ["baseline", "x86-64-v3", "x86-64-v4"], "baseline", False),
        (None, ["baseline", "x86-64-v3", "x86-64-v4"], ["baseline"], "baseline", False),
        ("baseline", ["baseline", "x86-64-v3", "x86-64-v4"], ["baseline", "x86-64-v3", "x86-64-v4"], "baseline", False),
        ("x86-64-v3", ["baseline", "x86-64-v3", "x86-64-v4"], ["baseline", "x86-64-v3", "x86-64-v4"], "x86-64-v3", False),
        ("x86-64-v4", ["baseline", "x86-64-v3"], ["baseline", "x86-64-v3", "x86-64-v4"], "x86-64-v3", True),
        ("x86-64-v4", ["baseline"], ["baseline", "x86-64-v3", "x86-64-v4"], "baseline", True),
        ("x86-64-v3", ["baseline", "x86-64-v3"], ["baseline"], "baseline", True),
    ],
)
def test_choose_level(requested, supported, built, expected, fallback):
    chosen, reason = _core.choose_level(requested, supported, built)
    assert chosen == expected
    assert (reason is not None) == fallback
    if fallback:
        assert requested in reason and expected in reason


def test_choose_level_without_any_module():
    with pytest.raises(ImportError, match="no fastgd engine module"):
        _core.choose_level(None, ["baseline"], [])


@pytest.mark.parametrize("value, level", [("auto", None), ("", None), ("AVX2", "x86-64-v3"), ("sse2", "baseline"), (" x86-64-v4 ", "x86-64-v4")])
def test_parse_request(value, level):
    assert _core.parse_request(value) == level


def test_parse_request_rejects_unknown_levels():
    with pytest.raises(ImportError, match=r"FASTGD_ISA='avx3' is not an instruction-set level; choose one of baseline"):
        _core.parse_request("avx3")


def test_import_with_an_unknown_level_names_the_variable():
    result = run_python("import fastgd", "avx3")
    assert result.returncode != 0
    assert "FASTGD_ISA='avx3' is not an instruction-set level" in result.stderr


@pytest.mark.parametrize("level", RUNNABLE)
def test_forcing_a_level_runs_that_module(level):
    result = run_python("import json, fastgd; print(json.dumps(fastgd.build_info()))", level)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["isa"] == level and info["isa_requested"] == level and info["isa_fallback"] is None
    assert info["module"].endswith("_core_" + level.replace("-", "_"))


def test_forcing_a_level_the_cpu_lacks_warns_and_falls_back():
    """Pretend the CPU runs only the baseline: asking for AVX2 must not load the AVX2 module."""
    code = (
        "import sys, types, warnings\n"
        "sys.modules['fastgd._cpu'] = types.SimpleNamespace(supported_levels=lambda: ['baseline'])\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import fastgd\n"
        "info = fastgd.build_info()\n"
        "print(info['isa'], info['isa_fallback'], [str(w.message) for w in caught], file=sys.stderr)\n"
        "assert info['isa'] == 'baseline', info\n"
        "assert [m for m in sys.modules if m.startswith('fastgd._core_')] == ['fastgd._core_baseline']\n"
        "assert any('FASTGD_ISA=x86-64-v3 but this CPU does not support it; using baseline' in str(w.message) for w in caught)\n"
        "net = fastgd.Network([3, 4, 2], seed=0)\n"
        "assert net.predict([[1.0, 2.0, 3.0]]).shape == (1, 2)\n"
    )
    result = run_python(code, "avx2")
    assert result.returncode == 0, result.stderr


AGREEMENT_SCRIPT = """
import sys
import numpy as np
import fastgd
rng = np.random.default_rng(0)
inputs = {"dense": rng.normal(size=(600, 37))}
# 80 % zeros: the first layer takes every batch through the sparse kernels
inputs["sparse"] = inputs["dense"] * (rng.random((600, 37)) < 0.2)
y = rng.integers(0, 10, 600)
results = {}
for (input_name, X), dtype in [(item, dtype) for item in inputs.items() for dtype in ("float32", "float64")]:
    for name, network, optimizer, batch in [
        ("sigmoid-mse-sgd", dict(sizes=[37, 30, 10], activation="sigmoid", output_activation="sigmoid", loss="mse"), fastgd.SGD(3.0), 10),
        ("relu-ce-momentum", dict(sizes=[37, 129, 10], activation="relu", output_activation="softmax", loss="cross_entropy"), fastgd.SGD(0.05, momentum=0.9), 32),
        ("relu-ce-adam-dropout", dict(sizes=[37, 300, 70, 10], activation="relu", output_activation="softmax", loss="cross_entropy", dropout=0.2), fastgd.Adam(1e-3), 256),
    ]:
        net = fastgd.Network(network.pop("sizes"), dtype=dtype, seed=1, **network)
        first = net.predict(X)
        net.fit(X, y, epochs=2, batch_size=batch, optimizer=optimizer, seed=2, verbose=0)
        key = f"{name}-{input_name}-{dtype}"
        results[key + "-before"] = first
        results[key + "-after"] = net.predict(X)
        results[key + "-one"] = net.predict(X[0])
        results[key + "-w0"] = net.params[0][0]
np.savez(sys.argv[1], **results)
"""


@pytest.mark.skipif(len(RUNNABLE) < 2, reason="this machine runs only one engine module")
def test_every_module_gives_the_same_results(tmp_path):
    outputs = {}
    for level in RUNNABLE:
        path = tmp_path / f"{level}.npz"
        env = dict(os.environ, FASTGD_ISA=level)
        result = subprocess.run(
            [sys.executable, "-c", AGREEMENT_SCRIPT, str(path)], env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stderr
        with np.load(path) as data:
            outputs[level] = dict(data)
    reference = outputs["baseline"]
    for level in RUNNABLE[1:]:
        assert outputs[level].keys() == reference.keys()
        for key, expected in reference.items():
            # FMA and wider registers round differently; two epochs of training let that grow.
            tolerance = dict(rtol=1e-3, atol=1e-4) if "float32" in key else dict(rtol=1e-9, atol=1e-11)
            if key.endswith("-before"):
                tolerance = dict(rtol=1e-5, atol=1e-6) if "float32" in key else dict(rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(outputs[level][key], expected, err_msg=f"{level} {key}", **tolerance)
