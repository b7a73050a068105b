// Which x86-64 instruction-set levels the running CPU and operating system support. Compiled
// for the baseline only, so that asking never executes an instruction the CPU may lack.
#include <pybind11/pybind11.h>

namespace py = pybind11;

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "The x86-64 levels this CPU runs, for choosing fastgd's engine module.";
  m.def("supported_levels", [] {
    py::list levels;
    levels.append("baseline");
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    // The checks include the operating system's support for saving the wider registers.
    if (__builtin_cpu_supports("x86-64-v3")) levels.append("x86-64-v3");
    if (__builtin_cpu_supports("x86-64-v4")) levels.append("x86-64-v4");
#endif
    return levels;
  }, "Instruction-set levels this CPU supports, lowest first; 'baseline' always.");
}
