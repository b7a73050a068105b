#pragma once
// A stack of dense layers with one loss, the buffers one batch needs, and the passes over them.

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <cassert>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastgd/activations.hpp"
#include "fastgd/dense.hpp"
#include "fastgd/dropout.hpp"
#include "fastgd/losses.hpp"
#include "fastgd/sparse.hpp"
#include "fastgd/threads.hpp"

namespace fastgd {

template <typename T>
struct DenseLayer {
  Matrix<T> w;     // (n_in, n_out)
  RowVector<T> b;  // (n_out)
  Activation activation;
  double dropout = 0.0;  // rate at which training drops this layer's outputs
};

template <typename T>
class Network {
 public:
  // sizes = [n_in, n_1, ..., n_out]; one activation per layer; dropout rates per layer, or none.
  // Weights start at zero: callers initialize them (the Python layer draws them from its seeded
  // generator).
  Network(const std::vector<Index>& sizes, const std::vector<Activation>& activations, Loss loss,
          const std::vector<double>& dropout = {})
      : loss(loss) {
    if (sizes.size() < 2) throw std::invalid_argument("a network needs at least 2 layer sizes");
    if (activations.size() != sizes.size() - 1) {
      throw std::invalid_argument("expected one activation per layer");
    }
    for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
      if (sizes[l] <= 0 || sizes[l + 1] <= 0) {
        throw std::invalid_argument("layer sizes must be positive");
      }
      if (activations[l] == Activation::softmax && l + 2 != sizes.size()) {
        throw std::invalid_argument("softmax is only allowed on the output layer");
      }
      layers.push_back({Matrix<T>::Zero(sizes[l], sizes[l + 1]),
                        RowVector<T>::Zero(sizes[l + 1]), activations[l]});
    }
    check_loss_output(loss, layers.back().activation);
    if (dropout.empty()) return;
    if (dropout.size() != layers.size()) {
      throw std::invalid_argument("expected one dropout rate per layer");
    }
    for (std::size_t l = 0; l < layers.size(); ++l) {
      check_dropout_rate(dropout[l]);
      layers[l].dropout = dropout[l];
    }
    if (dropout.back() != 0.0) {
      throw std::invalid_argument("dropout is only allowed on hidden layers, not the output layer");
    }
  }

  std::vector<Index> sizes() const {
    std::vector<Index> result{n_in()};
    for (const auto& layer : layers) result.push_back(layer.w.cols());
    return result;
  }

  std::vector<double> dropout_rates() const {
    std::vector<double> result;
    for (const auto& layer : layers) result.push_back(layer.dropout);
    return result;
  }

  Index n_in() const { return layers.front().w.rows(); }
  Index n_out() const { return layers.back().w.cols(); }
  Index n_layers() const { return Index(layers.size()); }

  std::vector<DenseLayer<T>> layers;
  Loss loss;
};

enum class Purpose { inference, training };

// The largest first layer whose W training copies onto cache lines (train.hpp's
// FirstLayerOnLines): the second-level cache of the AMD Zen 3 it was measured on. A W that fits
// there is read a few lines per nonzero input, and a line saved per row shows; a larger one
// comes from memory either way, and its copy would only double what the layer holds.
inline constexpr Index first_layer_copy_max_bytes = Index(512) << 10;

// A row-major matrix whose rows each start on a 64-byte cache line, padded at their ends.
template <typename T>
class LineAlignedMatrix {
 public:
  using View = Eigen::Map<Matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
  using ConstView = Eigen::Map<const Matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
  static constexpr Index line = cache_line_bytes / Index(sizeof(T));

  void resize(Index rows, Index cols) {
    rows_ = rows, cols_ = cols, stride_ = padded(cols);
    if (size() == 0) {
      storage_ = {}, first_ = 0;
      return;
    }
    storage_.resize(std::size_t(rows * stride_ + line - 1));
    const auto address = reinterpret_cast<std::uintptr_t>(storage_.data());
    const auto past_line = Index(address % cache_line_bytes);
    first_ = (cache_line_bytes - past_line) % cache_line_bytes / Index(sizeof(T));
  }

  View view() {
    return View(storage_.data() + first_, rows_, cols_, Eigen::OuterStride<>(stride_));
  }
  ConstView view() const {
    return ConstView(storage_.data() + first_, rows_, cols_, Eigen::OuterStride<>(stride_));
  }
  Index size() const { return rows_ * cols_; }
  static Index bytes(Index rows, Index cols) { return rows * padded(cols) * Index(sizeof(T)); }

 private:
  static Index padded(Index cols) { return (cols + line - 1) / line * line; }

  Index rows_ = 0, cols_ = 0, stride_ = 0, first_ = 0;
  std::vector<T> storage_;  // (rows · stride + line − 1), row i at first + i · stride
};

// Which masks a training batch draws: those of `batch` (its index in the epoch) under `seed`.
struct DropoutBatch {
  std::uint64_t seed = 0;
  std::uint64_t batch = 0;
};

// Buffers for batches of up to `capacity` rows; a pass uses the first m rows of each. Inference
// needs only z, a and the forward products' packing buffers; training adds the rest.
template <typename T>
struct Workspace {
  Index capacity = 0;
  bool training = false;            // whether the buffers of the backward pass exist
  std::vector<Index> sizes;         // the layer sizes of the network the buffers were made for
  std::vector<double> dropout;      // and its dropout rates
  bool dropout_applied = false;     // whether the last forward pass dropped units
  Matrix<T> x;                      // (capacity, n_in) the gathered input batch; for a CSR input,
                                    // made on its first batch too dense for ws.sparse
  Matrix<T> y;                      // (capacity, n_out) the gathered targets
  std::vector<Matrix<T>> z;         // [l] (capacity, n_out_l) pre-activations
  std::vector<Matrix<T>> a;         // [l] (capacity, n_out_l) activations
  std::vector<Matrix<T>> mask;      // [l] (capacity, n_out_l) dropout scales; empty without dropout
  std::vector<Matrix<T>> dropped;   // [l] (capacity, n_out_l) a ⊙ mask; empty without dropout
  std::vector<Matrix<T>> dz;        // [l] (capacity, n_out_l) dC/dz; holds dC/da before the Jacobian
  std::vector<Matrix<T>> dw;        // [l] (n_in_l, n_out_l)
  std::vector<RowVector<T>> db;     // [l] (n_out_l)
  std::vector<GemmScratch<T>> gemm_forward, gemm_dw, gemm_dx;  // [l] packing buffers per product
  bool sparse_capable = false;      // whether the first layer's shape suits the sparse kernels
  bool input_sparse = false;        // whether the last forward pass held its input as nonzeros
  SparseRows<T> sparse;             // the nonzeros of the last forward pass's input
  std::vector<T> row_scale;         // (capacity) each row's factor in the loss, when rows_scaled
  bool rows_scaled = false;         // whether the loss weighs rows by row_scale instead of 1/m
  LineAlignedMatrix<T> first_w;     // (n_in, n_out_0) layer 0's W while an epoch holds it there
                                    // (train.hpp's FirstLayerOnLines); empty unless sparse_capable
                                    // and within first_layer_copy_max_bytes
  bool first_w_holds_weights = false;

  Workspace() = default;
  Workspace(const Network<T>& net, Index batch, Purpose purpose = Purpose::training) {
    reserve(net, batch, purpose);
  }

  // Allocates only when the batch outgrows the buffers, the network's shape differs, training
  // needs buffers an inference workspace lacks, or more threads are allowed than the packing
  // buffers were made for. `csr_nonzeros` is the most nonzeros a batch of a CSR input holds (see
  // batch_nonzeros); without it (−1) the input is dense, and the buffers take its batches whole.
  void reserve(const Network<T>& net, Index batch, Purpose purpose = Purpose::training,
               Index csr_nonzeros = -1) {
    const bool for_training = purpose == Purpose::training;
    if (!fits(net)) *this = Workspace();
    if (batch > capacity || (for_training && !training)) {
      allocate(net, std::max({batch, capacity, Index(1)}), training || for_training);
    }
    const bool dense_input = csr_nonzeros < 0;
    if (sparse_capable) {
      const Index nonzeros =
          dense_input ? SparseRows<T>::dense_nonzeros(capacity, net.n_in()) : csr_nonzeros;
      sparse.reserve_nonzeros(capacity, net.n_in(), nonzeros, training);
    }
    if (training && dense_input && x.rows() < capacity) x.resize(capacity, net.n_in());
    const int threads = threads_allowed();
    if (sparse_capable) {
      const Index widest = std::max(capacity, net.n_in()) * packet_groups::max_packets *
                           packet_groups::lanes<T>;
      sparse.reserve_packing(widest, threads);
    }
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
      const Index n_in = net.layers[l].w.rows(), n_out = net.layers[l].w.cols();
      // A single row goes to GEMV, which needs no packing buffers.
      if (capacity > 1) gemm_forward[l].reserve(capacity, n_out, n_in, threads);
      if (!training) continue;
      gemm_dw[l].reserve(n_in, n_out, capacity, threads);
      if (l > 0) gemm_dx[l].reserve(capacity, n_in, n_out, threads);
    }
  }

  bool fits(const Network<T>& net) const {
    if (sizes.size() != net.layers.size() + 1 || sizes[0] != net.n_in()) return false;
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
      const auto& layer = net.layers[l];
      if (sizes[l + 1] != layer.w.cols() || dropout[l] != layer.dropout) return false;
    }
    return true;
  }

  // The input of layer l + 1 in the last forward pass.
  const Matrix<T>& output(const Network<T>& net, std::size_t l) const {
    return dropout_applied && net.layers[l].dropout > 0.0 ? dropped[l] : a[l];
  }

 private:
  void allocate(const Network<T>& net, Index rows, bool with_training) {
    const auto L = net.layers.size();
    capacity = rows;
    training = with_training;
    sizes = net.sizes();
    dropout = net.dropout_rates();
    z.resize(L), a.resize(L), gemm_forward.resize(L);
    for (std::size_t l = 0; l < L; ++l) {
      z[l].resize(capacity, net.layers[l].w.cols());
      a[l].resize(capacity, net.layers[l].w.cols());
    }
    input_sparse = false;
    sparse_capable = sparse_kernels_fit<T>(net.n_in(), net.layers[0].w.cols());
    if (!training) return;
    const Index n_out_0 = net.layers[0].w.cols();
    const Index copy_bytes = LineAlignedMatrix<T>::bytes(net.n_in(), n_out_0);
    const bool copy_first_w = sparse_capable && copy_bytes <= first_layer_copy_max_bytes;
    first_w.resize(copy_first_w ? net.n_in() : 0, copy_first_w ? n_out_0 : 0);
    y.resize(capacity, net.n_out());
    row_scale.resize(std::size_t(capacity));
    dz.resize(L), dw.resize(L), db.resize(L), gemm_dw.resize(L), gemm_dx.resize(L);
    mask.resize(L), dropped.resize(L);
    for (std::size_t l = 0; l < L; ++l) {
      const auto& layer = net.layers[l];
      if (layer.dropout > 0.0) {
        mask[l].resize(capacity, layer.w.cols());
        dropped[l].resize(capacity, layer.w.cols());
      }
      dz[l].resize(capacity, layer.w.cols());
      dw[l].resize(layer.w.rows(), layer.w.cols());
      db[l].resize(layer.w.cols());
    }
  }
};

// W of layer l: (n_in_l, n_out_l), read from ws.first_w while that copy holds layer 0's weights.
template <typename T>
ConstMatrixRef<T> layer_weights(const Workspace<T>& ws, const Network<T>& net, std::size_t l) {
  const Matrix<T>& w = net.layers[l].w;
  if (l == 0 && ws.first_w_holds_weights) return ws.first_w.view();
  return w;
}

template <typename T>
MatrixRef<T> layer_weights(Workspace<T>& ws, Network<T>& net, std::size_t l) {
  Matrix<T>& w = net.layers[l].w;
  if (l == 0 && ws.first_w_holds_weights) return ws.first_w.view();
  return w;
}

// What forward takes for x when ws.sparse already holds the batch: only its shape is read.
template <typename T>
Eigen::Map<const Matrix<T>> unread_input(Index rows, Index cols) {
  return Eigen::Map<const Matrix<T>>(nullptr, rows, cols);
}

// Fills ws.z and ws.a for the rows of x; x is (m, n_in) with m <= ws.capacity. With `dropout`
// (training only) every layer with a rate also fills ws.mask and ws.dropped, and the next layer
// reads ws.dropped. With input_in_sparse, ws.sparse already holds the batch's nonzeros (gathered
// from a sparse matrix) and x is not read.
template <typename T>
void forward(Workspace<T>& ws, const Network<T>& net, ConstMatrixRef<T> x,
             const DropoutBatch* dropout = nullptr, bool input_in_sparse = false) {
  const Index m = x.rows();
  assert(m <= ws.capacity);
  assert(!dropout || ws.training);
  ws.dropout_applied = dropout != nullptr;
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    const auto& layer = net.layers[l];
    auto z = ws.z[l].topRows(m);
    auto a = ws.a[l].topRows(m);
    if (l == 0) {
      ws.input_sparse = input_in_sparse || (ws.sparse_capable && ws.sparse.takes_dense(m, x.cols()) &&
                                            ws.sparse.assign(x));
      const auto w = layer_weights<T>(ws, net, 0);
      if (ws.input_sparse) {
        sparse_dense_forward<T>(z, ws.sparse, w, layer.b, threads_allowed());
      } else {
        dense_forward<T>(z, x, w, layer.b, ws.gemm_forward[l]);
      }
    } else {
      dense_forward<T>(z, ws.output(net, l - 1).topRows(m), layer.w, layer.b, ws.gemm_forward[l]);
    }
    activate<T>(layer.activation, a, z);
    if (dropout && layer.dropout > 0.0) {
      auto mask = ws.mask[l].topRows(m);
      dropout_mask<T>(mask, dropout->seed, dropout->batch, l, layer.dropout);
      ws.dropped[l].topRows(m).array() = a.array() * mask.array();
    }
  }
}

// The input of layer l in the last forward pass, x being the network's: (m, n_in_l).
template <typename T>
ConstMatrixRef<T> layer_input(const Workspace<T>& ws, const Network<T>& net, std::size_t l,
                              ConstMatrixRef<T> x) {
  if (l == 0) return x;
  return ws.output(net, l - 1).topRows(x.rows());
}

// target (n_in_l, n_out_l) += α xᵀ dz for layer l, x being its input in the last forward pass
// (m, n_in_l): through the sparse kernels when that pass held the input as its nonzeros.
template <typename T>
void accumulate_weight_gradient(MatrixRef<T> target, T alpha, Workspace<T>& ws, std::size_t l,
                                ConstMatrixRef<T> x, ConstMatrixRef<T> dz) {
  if (l == 0 && ws.input_sparse) {
    sparse_accumulate_gradient<T>(target, alpha, ws.sparse, dz, threads_allowed());
    return;
  }
  accumulate_xt_dz<T>(target, alpha, x, dz, ws.gemm_dw[l]);
}

// ws.dz[L − 1] for the first m rows: dC/dz of the output layer for the mean loss.
template <typename T>
void backward_output(Workspace<T>& ws, const Network<T>& net, ConstMatrixRef<T> y) {
  const Index m = y.rows();
  const std::size_t L = net.layers.size();
  output_delta<T>(ws.dz[L - 1].topRows(m), net.loss, net.layers[L - 1].activation,
                  ws.z[L - 1].topRows(m), ws.a[L - 1].topRows(m), y,
                  ws.rows_scaled ? ws.row_scale.data() : nullptr);
}

// ws.dz[l − 1] from ws.dz[l] for the first m rows, l ≥ 1; reads W_l, so it runs before W_l changes.
template <typename T>
void backward_to_previous(Workspace<T>& ws, const Network<T>& net, std::size_t l, Index m) {
  auto dz = ws.dz[l].topRows(m);
  auto dz_prev = ws.dz[l - 1].topRows(m);
  dense_backward_input<T>(dz_prev, dz, net.layers[l].w, ws.gemm_dx[l]);
  const auto& prev = net.layers[l - 1];
  // dC/da = dC/d(a ⊙ mask) ⊙ mask
  if (ws.dropout_applied && prev.dropout > 0.0) {
    dz_prev.array() *= ws.mask[l - 1].topRows(m).array();
  }
  apply_jacobian<T>(prev.activation, dz_prev, ws.z[l - 1].topRows(m), ws.a[l - 1].topRows(m),
                    dz_prev);
}

// After forward on the same x, with or without dropout: fills ws.dw and ws.db with the gradient
// of the mean loss over the m rows. x is (m, n_in), y is (m, n_out).
template <typename T>
void backward(Workspace<T>& ws, const Network<T>& net, ConstMatrixRef<T> x, ConstMatrixRef<T> y) {
  const Index m = x.rows();
  backward_output<T>(ws, net, y);
  for (std::size_t l = net.layers.size(); l-- > 0;) {
    const auto dz = ws.dz[l].topRows(m);
    // dC/dW = xᵀ dC/dz, dC/db = Σ_samples dC/dz
    ws.dw[l].setZero();
    accumulate_weight_gradient<T>(ws.dw[l], T(1), ws, l, layer_input<T>(ws, net, l, x), dz);
    ws.db[l].noalias() = dz.colwise().sum();
    if (l > 0) backward_to_previous<T>(ws, net, l, m);
  }
}

// The loss summed over the batch's rows, or with ws.rows_scaled their sum weighted by row_scale.
template <typename T>
double batch_loss_sum(const Workspace<T>& ws, const Network<T>& net, ConstMatrixRef<T> y) {
  const Index m = y.rows();
  const std::size_t L = net.layers.size();
  return loss_sum<T>(net.loss, net.layers[L - 1].activation, ws.z[L - 1].topRows(m),
                     ws.a[L - 1].topRows(m), y, ws.rows_scaled ? ws.row_scale.data() : nullptr);
}

// Rows per pass in predict and evaluate: bounds their scratch memory whatever the input size.
inline constexpr Index inference_chunk_rows = 1024;

// out is (n, n_out), x is (n, n_in); y, when given, is (n, n_out). Returns the loss summed
// over the n rows (0 without y). Concurrent calls are safe when each has its own workspace.
template <typename T>
double predict(MatrixRef<T> out, Workspace<T>& ws, const Network<T>& net, ConstMatrixRef<T> x,
               const ConstMatrixRef<T>* y = nullptr) {
  const Index n = x.rows();
  ws.reserve(net, std::min(n, inference_chunk_rows), Purpose::inference);
  double total = 0.0;
  for (Index start = 0; start < n; start += inference_chunk_rows) {
    const Index m = std::min(inference_chunk_rows, n - start);
    forward<T>(ws, net, x.middleRows(start, m));
    out.middleRows(start, m) = ws.a.back().topRows(m);
    if (y) total += batch_loss_sum<T>(ws, net, y->middleRows(start, m));
  }
  return total;
}

template <typename T>
double predict(MatrixRef<T> out, const Network<T>& net, ConstMatrixRef<T> x,
               const ConstMatrixRef<T>* y = nullptr) {
  Workspace<T> ws;
  return predict<T>(out, ws, net, x, y);
}

// Entries of the dense copy that predict makes of a CSR x's rows too dense for the sparse kernels.
inline constexpr Index csr_dense_chunk_entries = Index(1) << 20;

// predict for a CSR x (n, n_in): each chunk's nonzeros go to the sparse first layer when it takes
// them; otherwise the chunk is made dense a few rows at a time, never the whole of x. The first
// dense chunk allocates ws.x, once.
template <typename T>
double predict(MatrixRef<T> out, Workspace<T>& ws, const Network<T>& net, const CsrMatrix<T>& x,
               const ConstMatrixRef<T>* y = nullptr) {
  const Index n = x.rows, n_in = net.n_in();
  const Index chunk = std::min(n, inference_chunk_rows);
  ws.reserve(net, chunk, Purpose::inference, batch_nonzeros<T>(x, chunk));
  const Index dense_rows = std::clamp<Index>(csr_dense_chunk_entries / n_in, 1, inference_chunk_rows);
  double total = 0.0;
  const auto pass = [&](ConstMatrixRef<T> input, Index start, Index m, bool in_sparse) {
    forward<T>(ws, net, input, nullptr, in_sparse);
    out.middleRows(start, m) = ws.a.back().topRows(m);
    if (y) total += batch_loss_sum<T>(ws, net, y->middleRows(start, m));
  };
  for (Index start = 0; start < n; start += inference_chunk_rows) {
    const Index m = std::min(inference_chunk_rows, n - start);
    if (ws.sparse_capable && ws.sparse.assign(x, nullptr, start, m)) {
      pass(unread_input<T>(m, n_in), start, m, true);
      continue;
    }
    if (ws.x.rows() < dense_rows || ws.x.cols() != n_in) ws.x.resize(dense_rows, n_in);
    for (Index part = start; part < start + m; part += dense_rows) {
      const Index rows = std::min(dense_rows, start + m - part);
      scatter_csr_rows<T>(ws.x, x, nullptr, part, rows);
      pass(ws.x.topRows(rows), part, rows, false);
    }
  }
  return total;
}

// Buffers for predict on several threads, each running its own rows through the whole network.
template <typename T>
struct InferenceWorkspace {
  std::vector<Workspace<T>> per_thread;  // [t] thread t's buffers
  std::vector<double> loss;              // [t] the loss of thread t's rows
};

// Multiply-adds a thread must have before predict splits rows across threads: below it a
// parallel region's start-up costs more than the second thread saves.
inline constexpr double inference_min_work_per_thread = double(1 << 20);
// Every thread packs each weight matrix it multiplies by for itself. For a matrix beyond the
// L2 cache (2 MB of floats) that copy costs as much as about 128 rows of arithmetic, and below
// that many rows a thread does better splitting each product's columns with the others.
inline constexpr Index inference_large_layer_weights = Index(1) << 19;
inline constexpr Index inference_min_rows_per_thread_large = 128;

// Threads for predicting n rows, each taking a contiguous block of them through the whole
// network: the layers then need no synchronization. 1 leaves the threads to each product.
template <typename T>
int inference_threads(const Network<T>& net, Index n, int available) {
  double per_row = 0.0;
  Index largest = 0;
  for (const auto& layer : net.layers) {
    per_row += double(layer.w.size());
    largest = std::max(largest, layer.w.size());
  }
  double threads = std::min(
      {double(available), double(n), double(n) * per_row / inference_min_work_per_thread});
  if (largest >= inference_large_layer_weights) {
    threads = std::min(threads, double(n / inference_min_rows_per_thread_large));
  }
  return int(std::max(1.0, threads));
}

// predict over the rows split across the allowed threads. The loss is summed in thread order,
// so the result does not depend on which thread finishes first.
template <typename T>
double predict(MatrixRef<T> out, InferenceWorkspace<T>& ws, const Network<T>& net,
               ConstMatrixRef<T> x, const ConstMatrixRef<T>* y = nullptr) {
  const Index n = x.rows();
  const int threads = inference_threads(net, n, threads_allowed());
  if (ws.per_thread.size() < std::size_t(threads)) {
    ws.per_thread.resize(std::size_t(threads));
    ws.loss.resize(std::size_t(threads));
  }
  if (threads == 1) return predict<T>(out, ws.per_thread[0], net, x, y);
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int t = 0; t < threads; ++t) {
    const Index begin = n * t / threads, rows = n * (t + 1) / threads - begin;
    const auto part_y =
        y ? std::optional<ConstMatrixRef<T>>(y->middleRows(begin, rows)) : std::nullopt;
    ws.loss[std::size_t(t)] =
        predict<T>(out.middleRows(begin, rows), ws.per_thread[std::size_t(t)], net,
                   x.middleRows(begin, rows), part_y ? &*part_y : nullptr);
  }
  double total = 0.0;
  for (int t = 0; t < threads; ++t) total += ws.loss[std::size_t(t)];
  return total;
}

}  // namespace fastgd
