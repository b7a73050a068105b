#pragma once
// C += α·A·B through Eigen's blocked GEMM kernel (the code behind `C.noalias() += A * B`), with
// its packing buffers held in a GemmScratch that is allocated once and reused, where Eigen's
// own product allocates them on every call; the blocks are the ones Eigen's product would
// choose. The output's columns are split across OpenMP threads, each with its own packing
// buffers. Row- and column-vector products go to Eigen's GEMV, which needs no packing, and
// small products with narrow output rows to a kernel that needs none either.

#include <algorithm>
#include <memory>
#include <vector>

#include <Eigen/Core>

#include "fastgd/packet_groups.hpp"
#include "fastgd/threads.hpp"
#include "fastgd/types.hpp"

namespace fastgd {

// Eigen's cache blocking for one product, over packing buffers allocated ahead. The block sizes
// are worked out from each product's own shape, as Eigen's own products do: which kernel and
// which order of additions an output gets then depends on that shape alone, never on the
// buffers' history, so the same product gives the same bits wherever it runs.
template <typename T>
class ReusedBlocking : public Eigen::internal::level3_blocking<T, T> {
 public:
  // Buffers for every product up to rows × cols × depth in Eigen's column-major view of a
  // row-major product, which is transposed: rows there are output columns here.
  void reserve(Index rows, Index cols, Index depth) {
    const Index kc = std::min(depth, max_depth_block());
    grow(a_, size_a_, rows * kc);
    grow(b_, size_b_, kc * cols);
    this->m_blockA = a_.get();
    this->m_blockB = b_.get();
  }

  // Block sizes for one product: what Eigen's own product of this shape would choose.
  void set(Index rows, Index cols, Index depth) {
    if (rows == rows_ && cols == cols_ && depth == depth_) return;
    rows_ = rows, cols_ = cols, depth_ = depth;
    Index kc = depth, mc = rows, nc = cols;
    Eigen::internal::computeProductBlockingSizes<T, T, 1, Index>(kc, mc, nc, 1);
    // Never taken within the reserved shape, where Eigen's blocks are no larger than the product.
    if (mc * kc > size_a_ || kc * nc > size_b_) reserve(mc, nc, kc);
    this->m_mc = mc, this->m_nc = nc, this->m_kc = kc;
  }

 private:
  struct AlignedDelete {
    void operator()(T* p) const { Eigen::internal::aligned_free(p); }
  };
  using Buffer = std::unique_ptr<T[], AlignedDelete>;

  // Eigen's depth block for a deep product: the L1 cache's share, the most any product gets.
  static Index max_depth_block() {
    static const Index block = [] {
      Index kc = Index(1) << 40, mc = 1, nc = 1;
      Eigen::internal::computeProductBlockingSizes<T, T, 1, Index>(kc, mc, nc, 1);
      return kc;
    }();
    return block;
  }

  static void grow(Buffer& buffer, Index& size, Index wanted) {
    if (wanted <= size) return;
    buffer.reset(static_cast<T*>(Eigen::internal::aligned_malloc(std::size_t(wanted) * sizeof(T))));
    size = wanted;
  }

  Buffer a_, b_;
  Index size_a_ = 0, size_b_ = 0;
  Index rows_ = -1, cols_ = -1, depth_ = -1;
};

// Multiply-adds below which packing costs a product more than it saves.
inline constexpr Index small_product_max_work = Index(1) << 13;

// Whether c (m, n) += a b with depth k, b row-major, goes to small_product_group: c's rows fit a
// group of packets.
template <typename T>
bool small_product_fits(Index m, Index n, Index k) {
  using namespace packet_groups;
  return n >= lanes<T> && n <= max_packets * lanes<T> && m * n * k <= small_product_max_work;
}

// c (m, n) += α a (m, k) b (k, n) for one column group of c, each row held in registers as K
// packets: c_i += α Σ_e a_ie b_e. b's rows are contiguous (row stride ldb); a is stored in
// LhsOrder with outer stride lda; c and b point at the group's first column.
template <typename T, int K, int LhsOrder>
void small_product_group(T* c, Index ldc, Index m, Index k, const T* a, Index lda, const T* b,
                         Index ldb, T alpha, Index last_offset) {
  using namespace packet_groups;
  using P = Packet<T>;
  constexpr int S = sum_sets<K>;
  const P scale = Eigen::internal::pset1<P>(alpha);
  for (Index i = 0; i < m; ++i) {
    P sum[S][K];
    for (int s = 0; s < S; ++s) {
      for (int g = 0; g < K; ++g) sum[s][g] = Eigen::internal::pzero(P());
    }
    add_scaled_rows<T, K>(
        sum, 0, k,
        [&](Index e) { return LhsOrder == Eigen::RowMajor ? a[i * lda + e] : a[i + e * lda]; },
        [&](Index e) { return b + e * ldb; }, last_offset);
    add_to_group<T, K>(c + i * ldc, sum[0], scale, last_offset);
  }
}

// Packing buffers for products of up to (rows, cols, depth), C being (rows, cols), on up to
// `threads` threads, each of which may take all of C's columns.
template <typename T>
class GemmScratch {
 public:
  void reserve(Index rows, Index cols, Index depth, int threads) {
    if (threads > int(per_thread.size())) per_thread.resize(std::size_t(threads));
    for (auto& blocking : per_thread) blocking.reserve(cols, rows, depth);
  }

  static Index column_chunk(Index cols, int threads) {
    const Index chunk = (cols + threads - 1) / threads;
    return std::min(cols, (chunk + 7) / 8 * 8);
  }

  std::vector<ReusedBlocking<T>> per_thread;
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
  if (RhsOrder == Eigen::RowMajor && small_product_fits<T>(m, n, k)) {
    packet_groups::for_each_group<T>(0, n, [&](Index group, auto packets, Index last) {
      constexpr int K = decltype(packets)::value;
      small_product_group<T, K, LhsOrder>(c + group, ldc, m, k, a, lda, b + group, ldb, alpha,
                                          last - group);
    });
    return;
  }
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
  const int threads =
      gemm_threads(m, n, k, std::min<int>(threads_allowed(), int(scratch.per_thread.size())));
  if (threads == 1) {
    scratch.per_thread[0].set(n, m, k);
    Product::run(m, n, k, a, lda, b, ldb, c, 1, ldc, alpha, scratch.per_thread[0]);
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
    auto& blocking = scratch.per_thread[std::size_t(t)];
    blocking.set(cols, m, k);
    Product::run(m, cols, k, a, lda, b + first * b_column_step, ldb, c + first, 1, ldc, alpha,
                 blocking);
  }
}

}  // namespace fastgd
