#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <Eigen/Core>
#include <string>

#include "bindings.hpp"

#ifndef FASTGD_VERSION
#define FASTGD_VERSION "dev"
#endif
#ifndef FASTGD_MODULE_NAME
#define FASTGD_MODULE_NAME _core_baseline
#define FASTGD_ISA "baseline"
#endif

namespace py = pybind11;

PYBIND11_MODULE(FASTGD_MODULE_NAME, m) {
  m.doc() = "fastgd's compiled engine: dense networks, backpropagation and optimizers in C++/Eigen.";
  m.attr("__version__") = FASTGD_VERSION;
  fastgd_bindings::define_optimizers(m);
  fastgd_bindings::define_network(m);

  // The count given to set_num_threads, or 0 while the engine follows OpenMP's (what
  // OMP_NUM_THREADS, threadpoolctl and joblib's workers set).
  static int chosen_threads = 0;
  m.def("set_num_threads", [](std::optional<int> n) {
    if (n && *n < 1) throw std::invalid_argument("number of threads must be at least 1, got " + std::to_string(*n));
    chosen_threads = n.value_or(0);
    Eigen::setNbThreads(chosen_threads);
  }, py::arg("n"),
        "Set the number of threads the engine uses; None returns to OpenMP's count (OMP_NUM_THREADS,\n"
        "threadpoolctl's limits), the default.");
  m.def("get_num_threads", [] { return Eigen::nbThreads(); },
        "Number of threads the engine uses.");
  m.def("chosen_num_threads", []() -> std::optional<int> {
    if (chosen_threads == 0) return std::nullopt;
    return chosen_threads;
  }, "The count last given to set_num_threads, or None while the engine follows OpenMP's.");
  m.def("build_info", [] {
    py::dict info;
    info["version"] = FASTGD_VERSION;
    info["eigen"] = std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) +
                    "." + std::to_string(EIGEN_MINOR_VERSION);
    info["isa"] = FASTGD_ISA;
    info["simd"] = Eigen::SimdInstructionSetsInUse();
    info["float32_lanes"] = int(Eigen::internal::packet_traits<float>::size);
#ifdef EIGEN_VECTORIZE_FMA
    info["fma"] = true;
#else
    info["fma"] = false;
#endif
#ifdef _OPENMP
    info["openmp"] = true;
#else
    info["openmp"] = false;
#endif
#ifdef NDEBUG
    info["debug"] = false;
#else
    info["debug"] = true;
#endif
#ifdef FASTGD_SANITIZE
    info["sanitizers"] = true;
#else
    info["sanitizers"] = false;
#endif
    info["compiler"] = __VERSION__;
    return info;
  }, "How this extension was built: instruction-set level, Eigen version, SIMD instruction sets, OpenMP, assertions,\n"
        "sanitizers, compiler.");
}
