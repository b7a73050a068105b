#pragma once
// C += α·A·B through Eigen's blocked GEMM kernel (the code behind `C.noalias() += A * B`), with
// its packing buffers held in a GemmScratch that is allocated once and reused, where Eigen's
// own product allocates them on every call. The output's columns are split across OpenMP
// threads, each with its own packing buffers. Row- and column-vector products go to Eigen's
// GEMV, which needs no packing.

#include <algorithm>
#include <memory>
#include <vector>

#include <Eigen/Core>

#include "fastgd/types.hpp"

namespace fastgd {

template <typename T>
class GemmScratch {
 public:
  using Blocking = Eigen::internal::gemm_blocking_space<Eigen::RowMajor, T, T, Eigen::Dynamic,
                                                        Eigen::Dynamic, Eigen::Dynamic, 1, false>;

  // Packing buffers for products of about (rows, cols, depth) on up to `threads` threads. The
  // sizes only tune the cache blocking: the kernel clamps its blocks to the buffers it is given,
  // so any product shape is safe with any scratch.
  void reserve(Index rows, Index cols, Index depth, int threads) {
    if (rows == rows_ && cols == cols_ && depth == depth_ && threads <= int(per_thread.size())) {
      return;
    }
    rows_ = rows, cols_ = cols, depth_ = depth;
    threads = std::max(threads, int(per_thread.size()));
    per_thread.clear();
    const Index chunk = column_chunk(cols, threads);
    for (int t = 0; t < threads; ++t) {
      per_thread.push_back(std::make_unique<Blocking>(rows, chunk, depth, 1, true));
      per_thread.back()->allocateAll();
    }
  }

  static Index column_chunk(Index cols, int threads) {
    const Index chunk = (cols + threads - 1) / threads;
    return std::min(cols, (chunk + 7) / 8 * 8);
  }

  std::vector<std::unique_ptr<Blocking>> per_thread;

 private:
  Index rows_ = -1, cols_ = -1, depth_ = -1;
};

// Threads worth using for an (m, n, k) product: Eigen's rule of at least 50,000 multiply-adds
// a thread, and at least 32 output columns each.
inline int gemm_threads(Index m, Index n, Index k, int available) {
  const double per_thread_work = 50000.0;
  const double by_work = double(m) * double(n) * double(k) / per_thread_work;
  const Index by_columns = std::max<Index>(1, n / 32);
  return int(std::max<double>(1.0, std::min<double>({double(available), by_work, double(by_columns)})));
}

template <typename T, int Order>
using StridedMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Order>, 0,
                              Eigen::OuterStride<>>;

// c (m, n, row-major, row stride ldc) += alpha · a (m, k) · b (k, n); a and b are stored in
// LhsOrder / RhsOrder with outer strides lda / ldb.
template <int LhsOrder, int RhsOrder, typename T>
void gemm_accumulate(T* c, Index ldc, Index m, Index n, Index k, const T* a, Index lda,
                     const T* b, Index ldb, T alpha, GemmScratch<T>& scratch) {
  if (m == 0 || n == 0 || k == 0) return;
  if (m == 1 || n == 1 || scratch.per_thread.empty()) {
    Eigen::Map<Matrix<T>, 0, Eigen::OuterStride<>> c_map(c, m, n, Eigen::OuterStride<>(ldc));
    const StridedMap<T, LhsOrder> a_map(a, m, k, Eigen::OuterStride<>(lda));
    const StridedMap<T, RhsOrder> b_map(b, k, n, Eigen::OuterStride<>(ldb));
    // A scaled operand is no longer directly accessible and GEMV would copy it first.
    if (alpha == T(1)) {
      c_map.noalias() += a_map * b_map;
    } else {
      c_map.noalias() += alpha * a_map * b_map;
    }
    return;
  }
  using Product = Eigen::internal::general_matrix_matrix_product<Index, T, LhsOrder, false, T,
                                                                 RhsOrder, false, Eigen::RowMajor, 1>;
  const int threads = gemm_threads(m, n, k, std::min<int>(Eigen::nbThreads(), int(scratch.per_thread.size())));
  if (threads == 1) {
    Product::run(m, n, k, a, lda, b, ldb, c, 1, ldc, alpha, *scratch.per_thread[0]);
    return;
  }
  const Index chunk = GemmScratch<T>::column_chunk(n, threads);
  // Column j of b starts at b + j (row-major) or b + j·ldb (column-major).
  const Index b_column_step = RhsOrder == Eigen::RowMajor ? 1 : ldb;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int t = 0; t < threads; ++t) {
    const Index first = Index(t) * chunk;
    if (first >= n) continue;
    const Index cols = std::min(chunk, n - first);
    Product::run(m, cols, k, a, lda, b + first * b_column_step, ldb, c + first, 1, ldc, alpha,
                 *scratch.per_thread[std::size_t(t)]);
  }
}

}  // namespace fastgd
