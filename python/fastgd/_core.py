"""The compiled engine, in the build for the best instruction-set level the running CPU supports.

The C++ core is compiled once per x86-64 level (``fastgd._core_baseline``, ``_core_x86_64_v3``
for AVX2+FMA, ``_core_x86_64_v4`` for AVX-512) because a module built for a higher level dies
of an illegal instruction on a CPU without it. Importing this module asks the CPU which levels
it runs (through ``fastgd._cpu``, itself built for the baseline) and re-exports the best built
engine up to x86-64-v3. ``FASTGD_ISA`` chooses another: ``baseline`` (alias ``sse2``),
``x86-64-v3`` (``avx2``), ``x86-64-v4`` (``avx512``) or ``auto``. Asking for a level the CPU or
the build lacks warns and falls back to the best level below it.

``auto`` stops at x86-64-v3 because that engine was the faster one on every benchmark workload
on an AVX-512 machine (AMD Zen 4): 16-float vectors waste lanes on layers of 30 or 128 units,
and that CPU runs AVX-512 at the width of two AVX2 instructions. x86-64-v4 stays one variable
away for CPUs where it pays.
"""

import importlib
import importlib.util
import os
import warnings

from . import _cpu

LEVELS = ("baseline", "x86-64-v3", "x86-64-v4")
ALIASES = {"auto": None, "": None, "sse2": "baseline", "avx2": "x86-64-v3", "avx512": "x86-64-v4"}
ENVIRONMENT_VARIABLE = "FASTGD_ISA"
AUTO_CEILING = "x86-64-v3"


def module_name(level):
    return f"{__package__}._core_{level.replace('-', '_')}"


def built_levels():
    """Levels whose engine module is installed, lowest first."""
    return [level for level in LEVELS if importlib.util.find_spec(module_name(level)) is not None]


def parse_request(value):
    """The level ``FASTGD_ISA`` asks for, or None for the best available."""
    key = value.strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    if key in LEVELS:
        return key
    choices = ", ".join(list(LEVELS) + [alias for alias in ALIASES if alias])
    raise ImportError(f"{ENVIRONMENT_VARIABLE}={value!r} is not an instruction-set level; choose one of {choices}")


def choose_level(requested, supported, built):
    """The best level at most `requested` (None: at most AUTO_CEILING) that the CPU supports and the build has.

    Returns the level and, when it is not the one asked for, why.
    """
    usable = [level for level in LEVELS if level in supported and level in built]
    if not usable:
        raise ImportError(f"no fastgd engine module is installed for this CPU (built: {built}, supported: {supported})")
    if requested is None:
        return [level for level in usable if LEVELS.index(level) <= LEVELS.index(AUTO_CEILING)][-1], None
    below = [level for level in usable if LEVELS.index(level) <= LEVELS.index(requested)]
    chosen = below[-1] if below else usable[0]
    if chosen == requested:
        return chosen, None
    lacking = "this CPU does not support it" if requested not in supported else "fastgd was built without it"
    return chosen, f"{ENVIRONMENT_VARIABLE}={requested} but {lacking}; using {chosen}"


def _load():
    requested = parse_request(os.environ.get(ENVIRONMENT_VARIABLE, "auto"))
    supported = list(_cpu.supported_levels())
    level, fallback = choose_level(requested, supported, built_levels())
    if fallback is not None:
        warnings.warn(fallback, RuntimeWarning, stacklevel=3)
    return importlib.import_module(module_name(level)), requested, supported, fallback


_engine, _requested, _supported, _fallback = _load()
globals().update({name: getattr(_engine, name) for name in dir(_engine) if not name.startswith("__")})
__version__ = _engine.__version__


def build_info():
    """How the running engine was built and why it was chosen.

    Returns
    -------
    dict
        ``isa`` (the instruction-set level of the running engine), ``module``, ``cpu_levels``
        (levels this CPU supports), ``built_levels``, ``isa_requested`` (``FASTGD_ISA``, None for
        auto), ``isa_fallback`` (why a requested level was not used, or None), and the engine's
        own ``version``, ``eigen``, ``simd``, ``openmp``, ``debug``, ``sanitizers``, ``compiler``.
    """
    info = dict(_engine.build_info())
    info.update(
        module=_engine.__name__,
        cpu_levels=list(_supported),
        built_levels=built_levels(),
        isa_requested=_requested,
        isa_fallback=_fallback,
    )
    return info
