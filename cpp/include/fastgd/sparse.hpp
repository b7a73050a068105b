#pragma once
// The first layer's products when most of the input is zeros (81 % of MNIST's pixels are): only
// the nonzeros are visited, so z = x W + b and xᵀ dz cost nnz·n_out multiply-adds instead of
// m·n_in·n_out. A skipped term is an exact zero, so the results are the dense products' up to
// the order of the additions.
//
// Each kernel walks the output columns in groups of up to max_packets SIMD packets held in
// registers. When the column count is not a multiple of the packet width, the group's last
// packet ends at the last column and overlaps its predecessor; the forward pass computes the
// shared columns twice, identically, and the gradient lets the predecessor's write win them.

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include <Eigen/Core>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "fastgd/packet_groups.hpp"
#include "fastgd/types.hpp"

namespace fastgd {

// Above this share of nonzeros the dense GEMM may be as fast. Measured with nonzeros spread at
// random over batches of 1 to 256 rows and layers of 30 to 1024 outputs: at 30 % the sparse
// forward and gradient together took 0.3–0.9 of the dense products' time, at 40 % up to 1.2.
inline constexpr double sparse_input_max_density = 0.3;

// Bit k set when p[k] is neither 0 nor −0, for k < 8.
inline unsigned nonzero_bits8(const float* p) {
#if defined(__AVX__)
  const __m256 zero = _mm256_cmp_ps(_mm256_loadu_ps(p), _mm256_setzero_ps(), _CMP_EQ_OQ);
  return ~unsigned(_mm256_movemask_ps(zero)) & 0xFFu;
#elif defined(__SSE2__)
  const unsigned low = unsigned(_mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(p), _mm_setzero_ps())));
  const unsigned high = unsigned(_mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(p + 4), _mm_setzero_ps())));
  return ~(low | high << 4) & 0xFFu;
#else
  unsigned bits = 0;
  for (int k = 0; k < 8; ++k) bits |= unsigned(p[k] != 0.0f) << k;
  return bits;
#endif
}

inline unsigned nonzero_bits8(const double* p) {
#if defined(__AVX__)
  const auto half = [](const double* q) {
    const __m256d zero = _mm256_cmp_pd(_mm256_loadu_pd(q), _mm256_setzero_pd(), _CMP_EQ_OQ);
    return unsigned(_mm256_movemask_pd(zero));
  };
  return ~(half(p) | half(p + 4) << 4) & 0xFFu;
#elif defined(__SSE2__)
  unsigned zero = 0;
  for (int k = 0; k < 8; k += 2) {
    zero |= unsigned(_mm_movemask_pd(_mm_cmpeq_pd(_mm_loadu_pd(p + k), _mm_setzero_pd()))) << k;
  }
  return ~zero & 0xFFu;
#else
  unsigned bits = 0;
  for (int k = 0; k < 8; ++k) bits |= unsigned(p[k] != 0.0) << k;
  return bits;
#endif
}

// For each mask of 8 lanes, the lanes of its set bits in increasing order, one per byte.
struct LeftPackTable {
  std::uint64_t lanes[256];
  constexpr LeftPackTable() : lanes() {
    for (unsigned mask = 0; mask < 256; ++mask) {
      std::uint64_t packed = 0;
      int at = 0;
      for (unsigned lane = 0; lane < 8; ++lane) {
        if (mask >> lane & 1u) packed |= std::uint64_t(lane) << (8 * at++);
      }
      lanes[mask] = packed;
    }
  }
};
inline constexpr LeftPackTable left_pack_table{};

// Writes the nonzeros of src[0..8) and their columns (first + lane) to value and column, in
// order, and returns their count. May write all 8 slots whatever the count.
template <typename T>
inline Index pack_nonzeros8(std::int32_t* column, T* value, const T* src, Index first) {
#if defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>) {
    const __m256 v = _mm256_loadu_ps(src);
    const unsigned bits =
        ~unsigned(_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_EQ_OQ))) & 0xFFu;
    const __m256i lanes = _mm256_cvtepu8_epi32(
        _mm_cvtsi64_si128(static_cast<long long>(left_pack_table.lanes[bits])));
    _mm256_storeu_ps(value, _mm256_permutevar8x32_ps(v, lanes));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(column),
                        _mm256_add_epi32(lanes, _mm256_set1_epi32(std::int32_t(first))));
    return __builtin_popcount(bits);
  }
#endif
  Index count = 0;
  for (unsigned bits = nonzero_bits8(src); bits != 0; bits &= bits - 1) {
    const int lane = __builtin_ctz(bits);
    column[count] = std::int32_t(first + lane);
    value[count] = src[lane];
    ++count;
  }
  return count;
}

// Up to this many bytes per row of W the weight gradient walks x by rows, beyond it by columns
// (wider rows a power of two apart collide in the caches' sets when updated in a scattered order).
inline constexpr Index sparse_gradient_max_row_bytes_by_rows = 512;
// The forward pass copies W's column groups contiguously from this many nonzeros per input.
inline constexpr Index sparse_pack_min_visits = 16;

// A sparse matrix as scipy.sparse's CSR format holds it: row i's nonzeros are indices[e], data[e]
// for e in [indptr[i], indptr[i + 1]). Indices lie in [0, cols); a repeated one adds up.
template <typename T>
struct CsrMatrix {
  const std::int64_t* indptr = nullptr;   // (rows + 1)
  const std::int32_t* indices = nullptr;  // (nonzeros)
  const T* data = nullptr;                // (nonzeros)
  Index rows = 0, cols = 0;

  Index row_nonzeros(Index i) const { return Index(indptr[i + 1] - indptr[i]); }
};

// dense (m, cols) = the rows order[start + i] (or start + i, without order) of x, i < m.
template <typename T>
void scatter_csr_rows(MatrixRef<T> dense, const CsrMatrix<T>& x, const std::int64_t* order,
                      Index start, Index m) {
  assert(dense.rows() >= m && dense.cols() == x.cols);
  for (Index i = 0; i < m; ++i) {
    const Index row = order ? Index(order[start + i]) : start + i;
    auto target = dense.row(i);
    target.setZero();
    for (auto e = x.indptr[row]; e < x.indptr[row + 1]; ++e) target(x.indices[e]) += x.data[e];
  }
}

// The nonzeros of a batch x (rows, cols), by row (CSR) and, after by_column(), by column (CSC).
template <typename T>
class SparseRows {
 public:
  // Buffers for batches of up to `rows` rows of a dense x; `with_columns` adds the by-column copy.
  void reserve(Index rows, Index cols, bool with_columns) {
    // slack for a row past the limit (assign checks per row) and a block's full-width stores
    reserve_nonzeros(rows, cols, dense_nonzeros(rows, cols), with_columns);
  }

  // Buffers for batches of up to `rows` rows holding up to `nonzeros` in all, as a CSR input's
  // batches need; grows only.
  void reserve_nonzeros(Index rows, Index cols, Index nonzeros, bool with_columns) {
    grow(row_start_, rows + 1);
    grow(column_, nonzeros);
    grow(value_, nonzeros);
    if (!with_columns) return;
    grow(column_start_, cols + 1);
    grow(cursor_, cols);
    grow(row_of_, nonzeros);
    grow(column_value_, nonzeros);
  }

  // The nonzero slots assign(dense x) may write for x of `rows` rows.
  static Index dense_nonzeros(Index rows, Index cols) { return max_nonzeros(rows, cols) + cols + 8; }

  // Whether the buffers take assign(dense x) for x of `rows` rows.
  bool takes_dense(Index rows, Index cols) const {
    return Index(column_.size()) >= dense_nonzeros(rows, cols);
  }

  static Index max_nonzeros(Index rows, Index cols) {
    return Index(sparse_input_max_density * double(rows) * double(cols));
  }

  static bool supports(Index cols) {
    return cols < Index(std::numeric_limits<std::int32_t>::max());
  }

  // Keeps the nonzeros of x and returns true when they are at most sparse_input_max_density of
  // its entries; returns false, keeping nothing usable, when there are more.
  bool assign(ConstMatrixRef<T> x) {
    rows_ = x.rows(), cols_ = x.cols();
    assert(std::size_t(rows_ + 1) <= row_start_.size() && supports(cols_));
    const Index limit = max_nonzeros(rows_, cols_);
    assert(std::size_t(limit + cols_ + 8) <= column_.size());
    by_column_ready_ = false;
    Index* row_start = row_start_.data();
    std::int32_t* column = column_.data();
    T* value = value_.data();
    Index count = 0;
    for (Index i = 0; i < rows_; ++i) {
      row_start[i] = count;
      const T* row = x.data() + i * x.outerStride();
      Index j = 0;
      for (; j + 8 <= cols_; j += 8) count += pack_nonzeros8(column + count, value + count, row + j, j);
      for (; j < cols_; ++j) {
        column[count] = std::int32_t(j);
        value[count] = row[j];
        count += row[j] != T(0);
      }
      if (count > limit) return false;
    }
    row_start_[std::size_t(rows_)] = count;
    return true;
  }

  // Keeps the rows order[start + i] (or start + i, without order), i < m, of a CSR matrix and
  // returns true when their nonzeros are at most sparse_input_max_density of the batch's entries;
  // returns false, keeping nothing usable, when there are more.
  bool assign(const CsrMatrix<T>& x, const std::int64_t* order, Index start, Index m) {
    rows_ = m, cols_ = x.cols;
    assert(std::size_t(rows_ + 1) <= row_start_.size() && supports(cols_));
    by_column_ready_ = false;
    Index count = 0;
    for (Index i = 0; i < m; ++i) count += x.row_nonzeros(order ? Index(order[start + i]) : start + i);
    if (count > max_nonzeros(rows_, cols_) || count > Index(column_.size())) return false;
    count = 0;
    for (Index i = 0; i < m; ++i) {
      const Index row = order ? Index(order[start + i]) : start + i;
      const Index n = x.row_nonzeros(row);
      row_start_[std::size_t(i)] = count;
      std::copy_n(x.indices + x.indptr[row], n, column_.data() + count);
      std::copy_n(x.data + x.indptr[row], n, value_.data() + count);
      count += n;
    }
    row_start_[std::size_t(rows_)] = count;
    return true;
  }

  // Fills the by-column copy from the by-row one (a counting sort); idempotent until assign.
  void by_column() {
    if (by_column_ready_) return;
    assert(column_start_.size() > std::size_t(cols_));
    std::fill(column_start_.begin(), column_start_.begin() + cols_ + 1, Index(0));
    const Index count = nonzeros();
    for (Index e = 0; e < count; ++e) ++column_start_[std::size_t(column_[std::size_t(e)]) + 1];
    for (Index j = 0; j < cols_; ++j) {
      column_start_[std::size_t(j + 1)] += column_start_[std::size_t(j)];
      cursor_[std::size_t(j)] = column_start_[std::size_t(j)];
    }
    for (Index i = 0; i < rows_; ++i) {
      for (Index e = row_start_[std::size_t(i)]; e < row_start_[std::size_t(i + 1)]; ++e) {
        const Index at = cursor_[std::size_t(column_[std::size_t(e)])]++;
        row_of_[std::size_t(at)] = std::int32_t(i);
        column_value_[std::size_t(at)] = value_[std::size_t(e)];
      }
    }
    by_column_ready_ = true;
  }

  // Scratch for the kernels' packed copies: `size` entries for each of `threads` threads. Grows
  // only; Workspace::reserve calls it with the largest size so that steps allocate nothing.
  void reserve_packing(Index size, int threads) {
    if (packing_.size() < std::size_t(threads)) packing_.resize(std::size_t(threads));
    for (auto& buffer : packing_) {
      if (buffer.size() < std::size_t(size)) buffer.resize(std::size_t(size));
    }
  }
  T* packing(int thread) { return packing_[std::size_t(thread)].data(); }

  Index rows() const { return rows_; }
  Index cols() const { return cols_; }
  Index nonzeros() const { return row_start_[std::size_t(rows_)]; }

  // Row i's nonzeros are column[e], value[e] for e in [row_start[i], row_start[i + 1]).
  const Index* row_start() const { return row_start_.data(); }
  const std::int32_t* column() const { return column_.data(); }
  const T* value() const { return value_.data(); }
  // After by_column(): column j's are row_of[e], column_value[e] for e in
  // [column_start[j], column_start[j + 1]), in increasing row order.
  const Index* column_start() const { return column_start_.data(); }
  const std::int32_t* row_of() const { return row_of_.data(); }
  const T* column_value() const { return column_value_.data(); }

 private:
  Index rows_ = 0, cols_ = 0;
  bool by_column_ready_ = false;
  std::vector<Index> row_start_;        // (rows + 1)
  std::vector<std::int32_t> column_;    // (max nonzeros + cols)
  std::vector<T> value_;                // (max nonzeros + cols)
  std::vector<Index> column_start_;     // (cols + 1)
  std::vector<Index> cursor_;           // (cols)
  std::vector<std::int32_t> row_of_;    // (max nonzeros + cols)
  std::vector<T> column_value_;         // (max nonzeros + cols)
  std::vector<std::vector<T>> packing_;  // [thread] (≥ max(rows, cols) · max_packets · lanes)

  template <typename V>
  static void grow(std::vector<V>& buffer, Index size) {
    if (buffer.size() < std::size_t(size)) buffer.resize(std::size_t(size));
  }
};

// A bound on the nonzeros any `batch` rows of x hold, whatever their order: `batch` times the
// fullest row's, at most x's all, capped at what the sparse kernels take for such a batch. What
// a CSR epoch's buffers are reserved for, the same for every shuffled order, so that later
// epochs allocate nothing.
template <typename T>
Index batch_nonzeros(const CsrMatrix<T>& x, Index batch) {
  Index fullest = 0;
  for (Index i = 0; i < x.rows; ++i) fullest = std::max(fullest, x.row_nonzeros(i));
  const Index rows = std::min(batch, x.rows);
  const Index all = Index(x.indptr[x.rows]);
  return std::min({rows * fullest, all, SparseRows<T>::max_nonzeros(rows, x.cols)});
}

namespace sparse_kernels {

using namespace packet_groups;

// packed (n, K·P) = the group's K packets of each of the n rows of src (row stride ld).
template <typename T, int K>
void pack_group(T* packed, const T* src, Index ld, Index n, Index last_offset) {
  using namespace Eigen::internal;
  using P = Packet<T>;
  for (Index r = 0; r < n; ++r) {
    for (int k = 0; k < K; ++k) {
      pstoreu(packed + (r * K + k) * lanes<T>,
              ploadu<P>(src + r * ld + packet_offset<T, K>(k, last_offset)));
    }
  }
}

// z = b + x w for one column group: z, w and b point at the group's first column, and the
// last packet is at last_offset in z and b, at w_last_offset in w (which may be a packed copy).
// z is (m, n_out), w is (n_in, ≥ group), b is (n_out).
template <typename T, int K>
void forward_group(T* z, Index ldz, const SparseRows<T>& x, const T* w, Index ldw, const T* b,
                   Index last_offset, Index w_last_offset) {
  using namespace Eigen::internal;
  using P = Packet<T>;
  constexpr int S = sum_sets<K>;
  const Index* row_start = x.row_start();
  const std::int32_t* column = x.column();
  const T* value = x.value();
  for (Index i = 0; i < x.rows(); ++i) {
    P sum[S][K];
    for (int k = 0; k < K; ++k) {
      sum[0][k] = ploadu<P>(b + packet_offset<T, K>(k, last_offset));
      for (int s = 1; s < S; ++s) sum[s][k] = pzero(P());
    }
    add_scaled_rows<T, K>(
        sum, row_start[i], row_start[i + 1], [&](Index e) { return value[e]; },
        [&](Index e) { return w + Index(column[e]) * ldw; }, w_last_offset);
    T* z_row = z + i * ldz;
    for (int k = 0; k < K; ++k) pstoreu(z_row + packet_offset<T, K>(k, last_offset), sum[0][k]);
  }
}

// target += α xᵀ dz for one column group, walking x by columns: each row of target is read and
// written once. target and dz point at the group's first column, and the last packet is at
// last_offset in target, at dz_last_offset in dz (which may be a packed copy). target is
// (n_in, n_out), dz is (m, ≥ group).
template <typename T, int K>
void gradient_group_by_columns(T* target, Index ldt, T alpha, const SparseRows<T>& x,
                               const T* dz, Index lddz, Index last_offset, Index dz_last_offset) {
  using namespace Eigen::internal;
  using P = Packet<T>;
  constexpr int S = sum_sets<K>;
  const P a = pset1<P>(alpha);
  const Index* column_start = x.column_start();
  const std::int32_t* row_of = x.row_of();
  const T* value = x.column_value();
  for (Index j = 0; j < x.cols(); ++j) {
    if (column_start[j] == column_start[j + 1]) continue;
    P sum[S][K];
    for (int s = 0; s < S; ++s) {
      for (int k = 0; k < K; ++k) sum[s][k] = pzero(P());
    }
    add_scaled_rows<T, K>(
        sum, column_start[j], column_start[j + 1], [&](Index e) { return value[e]; },
        [&](Index e) { return dz + Index(row_of[e]) * lddz; }, dz_last_offset);
    add_to_group<T, K>(target + j * ldt, sum[0], a, last_offset);
  }
}

// The same sum walking x by rows: each nonzero x_ij adds α x_ij dz_i to row j of target. Needs
// no by-column copy of x, which costs more than it saves on a few rows.
template <typename T, int K>
void gradient_group_by_rows(T* target, Index ldt, T alpha, const SparseRows<T>& x, const T* dz,
                            Index lddz, Index last_offset) {
  using namespace Eigen::internal;
  using P = Packet<T>;
  const Index* row_start = x.row_start();
  const std::int32_t* column = x.column();
  const T* value = x.value();
  for (Index i = 0; i < x.rows(); ++i) {
    const T* dz_row = dz + i * lddz;
    P d[K];
    for (int k = 0; k < K; ++k) d[k] = ploadu<P>(dz_row + packet_offset<T, K>(k, last_offset));
    for (Index e = row_start[i]; e < row_start[i + 1]; ++e) {
      add_to_group<T, K>(target + Index(column[e]) * ldt, d, pset1<P>(alpha * value[e]),
                         last_offset);
    }
  }
}

// Threads worth using over n_out columns for about `work` multiply-adds, each thread taking a
// whole number of packets and at least one.
template <typename T>
int column_threads(Index n_out, Index work, int available) {
  const Index by_work = std::max<Index>(1, work / 100000);
  const Index by_columns = std::max<Index>(1, n_out / (2 * max_packets * lanes<T>));
  return int(std::max<Index>(1, std::min<Index>({Index(available), by_work, by_columns})));
}

// Runs range(thread, begin, end) over `threads` disjoint column ranges of [0, n_out), each a whole
// number of packets wide except the last, which ends at n_out and is at least a packet wide.
template <typename T, typename Range>
void for_column_ranges(Index n_out, int threads, Range&& range) {
  if (threads <= 1) return range(0, Index(0), n_out);
  constexpr Index P = lanes<T>;
  const Index chunk = ((n_out + threads - 1) / threads + P - 1) / P * P;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int t = 0; t < threads; ++t) {
    const Index begin = Index(t) * chunk;
    const Index end = std::min(n_out, begin + chunk);
    if (end - begin >= P) range(t, begin, end);
  }
}

}  // namespace sparse_kernels

// Whether the sparse kernels handle a layer with n_out outputs: its rows fill a packet.
template <typename T>
bool sparse_kernels_fit(Index n_in, Index n_out) {
  return n_out >= sparse_kernels::lanes<T> && SparseRows<T>::supports(n_in);
}

// z = x W + b with x held as its nonzeros. z is (m, n_out), w is (n_in, n_out), b is (n_out).
template <typename T>
void sparse_dense_forward(MatrixRef<T> z, SparseRows<T>& x, ConstMatrixRef<T> w,
                          ConstRowVectorRef<T> b, int threads) {
  using namespace sparse_kernels;
  const Index n_in = w.rows(), n_out = w.cols();
  assert(z.rows() == x.rows() && z.cols() == n_out && n_in == x.cols() && n_out >= lanes<T>);
  // Rows of W a power of two apart collide in the caches' sets; a contiguous copy of the group
  // is worth making once the batch visits W's rows often enough to pay for it.
  const bool pack = x.nonzeros() >= sparse_pack_min_visits * n_in;
  threads = column_threads<T>(n_out, x.nonzeros() * n_out, threads);
  x.reserve_packing(n_in * max_packets * lanes<T>, threads);
  for_column_ranges<T>(n_out, threads, [&](int thread, Index begin, Index end) {
    for_each_group<T>(begin, end, [&](Index group, auto packets, Index last) {
      constexpr int K = decltype(packets)::value;
      const Index last_offset = last - group;
      if (pack) {
        T* packed = x.packing(thread);
        pack_group<T, K>(packed, w.data() + group, w.outerStride(), n_in, last_offset);
        forward_group<T, K>(z.data() + group, z.outerStride(), x, packed, K * lanes<T>,
                            b.data() + group, last_offset, (K - 1) * lanes<T>);
      } else {
        forward_group<T, K>(z.data() + group, z.outerStride(), x, w.data() + group,
                            w.outerStride(), b.data() + group, last_offset, last_offset);
      }
    });
  });
}

// target += α xᵀ dz with x held as its nonzeros. target is (n_in, n_out), dz is (m, n_out).
template <typename T>
void sparse_accumulate_gradient(MatrixRef<T> target, T alpha, SparseRows<T>& x,
                                ConstMatrixRef<T> dz, int threads) {
  using namespace sparse_kernels;
  const Index m = x.rows(), n_out = target.cols();
  assert(target.rows() == x.cols() && dz.rows() == m && dz.cols() == n_out && n_out >= lanes<T>);
  const bool by_rows = n_out * Index(sizeof(T)) <= sparse_gradient_max_row_bytes_by_rows;
  if (!by_rows) x.by_column();
  threads = column_threads<T>(n_out, x.nonzeros() * n_out, threads);
  if (!by_rows) x.reserve_packing(m * max_packets * lanes<T>, threads);
  for_column_ranges<T>(n_out, threads, [&](int thread, Index begin, Index end) {
    for_each_group<T>(begin, end, [&](Index group, auto packets, Index last) {
      constexpr int K = decltype(packets)::value;
      const Index last_offset = last - group;
      T* t = target.data() + group;
      if (by_rows) {
        gradient_group_by_rows<T, K>(t, target.outerStride(), alpha, x, dz.data() + group,
                                     dz.outerStride(), last_offset);
        return;
      }
      T* packed = x.packing(thread);
      pack_group<T, K>(packed, dz.data() + group, dz.outerStride(), m, last_offset);
      gradient_group_by_columns<T, K>(t, target.outerStride(), alpha, x, packed, K * lanes<T>,
                                      last_offset, (K - 1) * lanes<T>);
    });
  });
}

}  // namespace fastgd
