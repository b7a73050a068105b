#pragma once
// How many threads the core's kernels may use.

#include <Eigen/Core>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastgd {

// Eigen's setting (fastgd.set_num_threads, else OMP_NUM_THREADS), or 1 inside a parallel
// region: a kernel called from a thread that already has its share of the work runs alone.
inline int threads_allowed() {
#ifdef _OPENMP
  if (omp_in_parallel()) return 1;
#endif
  return Eigen::nbThreads();
}

}  // namespace fastgd
