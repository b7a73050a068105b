#pragma once
// The epoch loop: every mini-batch's forward, backward and update, without leaving C++.

#include <atomic>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <numeric>

#include "fastgd/network.hpp"
#include "fastgd/optimizers.hpp"

namespace fastgd {

struct EpochResult {
  double loss_sum = 0.0;    // sum over the samples trained on of each one's loss before its update
                            // (with sample weights: Σ_batches m · the batch's weighted mean loss)
  double penalty_sum = 0.0;  // Σ_batches m · the batch's L2 penalty ½ λ Σ‖W‖² / Σw
  Index samples = 0;        // samples trained on
  Index batches = 0;        // batches applied
  Index failed_batch = -1;  // batch whose loss, or after which the weights, were NaN or Inf; or -1
  bool interrupted = false;  // stopped at a batch boundary because *stop became true
  Index nonfinite_row = -1;  // with check_rows: the row of x with NaN or Inf that stopped the epoch
};

// What training has done since the last reset, for another thread to read while it runs; one
// thread writes it.
struct Progress {
  std::atomic<Index> batches{0};
  std::atomic<Index> samples{0};
  std::atomic<double> loss_sum{0.0};

  void reset() {
    batches.store(0), samples.store(0), loss_sum.store(0.0);
  }

  void add_batch(Index m, double loss) {
    constexpr auto relaxed = std::memory_order_relaxed;
    loss_sum.store(loss_sum.load(relaxed) + loss, relaxed);
    samples.store(samples.load(relaxed) + m, relaxed);
    batches.store(batches.load(relaxed) + 1, relaxed);
  }
};

struct TrainOptions {
  Index batch_size = 32;
  double clip_norm = 0.0;                  // clip the gradient's global norm to this; 0 = off
  std::uint64_t dropout_seed = 0;          // batch b of the epoch draws the masks of (seed, b)
  Index first_batch = 0;                   // index in the epoch of this call's first batch
  const std::atomic<bool>* stop = nullptr;  // checked before every batch
  Progress* progress = nullptr;            // added to after every batch
  bool check_rows = false;                 // stop before a batch with a row of x not all finite
  const double* sample_weight = nullptr;   // (n) each row's weight in its batch's mean loss
  double l2 = 0.0;  // λ of scikit-learn's penalty ½ λ Σ‖W‖² / Σw, added to each batch's loss
};

// torch.nn.utils.clip_grad_norm_: with ‖g‖ the 2-norm of all gradients together, scale every
// gradient by max_norm / (‖g‖ + 1e-6) when that factor is below 1. Returns ‖g‖.
template <typename T>
double clip_gradient_norm(Workspace<T>& ws, double max_norm) {
  double squares = 0.0;
  for (std::size_t l = 0; l < ws.dw.size(); ++l) {
    squares += double(ws.dw[l].squaredNorm()) + double(ws.db[l].squaredNorm());
  }
  const double norm = std::sqrt(squares);
  const double factor = max_norm / (norm + 1e-6);
  if (factor < 1.0) {
    for (std::size_t l = 0; l < ws.dw.size(); ++l) {
      ws.dw[l] *= T(factor);
      ws.db[l] *= T(factor);
    }
  }
  return norm;
}

// backward followed by optimizer.step, for an optimizer that fuses_with_backward: each layer's
// update consumes its gradient as the product computing it, so ws.dw is never written or read.
template <typename T>
void backward_and_step(Workspace<T>& ws, Network<T>& net, Optimizer<T>& optimizer,
                       ConstMatrixRef<T> x, ConstMatrixRef<T> y) {
  assert(optimizer.fuses_with_backward() && ws.fits(net));
  const Index m = x.rows();
  optimizer.begin_fused_step(net);
  backward_output<T>(ws, net, y);
  for (std::size_t l = net.layers.size(); l-- > 0;) {
    if (l > 0) backward_to_previous<T>(ws, net, l, m);
    optimizer.update_layer(net, ws, l, layer_input<T>(ws, net, l, x), ws.dz[l].topRows(m));
  }
}

template <typename T>
bool weights_finite(const Network<T>& net) {
  for (const auto& layer : net.layers) {
    if (!layer.w.allFinite() || !layer.b.allFinite()) return false;
  }
  return true;
}

// Whether p[0..n) holds no NaN or Inf: x − x is 0 for a finite x and NaN otherwise, and a NaN
// poisons the sum. Two packet-wide sums, a few cycles per 2·lanes entries.
template <typename T>
bool all_finite(const T* p, Index n) {
  using namespace Eigen::internal;
  using P = packet_groups::Packet<T>;
  constexpr Index L = packet_groups::lanes<T>;
  P sum0 = pzero(P()), sum1 = pzero(P());
  Index j = 0;
  for (; j + 2 * L <= n; j += 2 * L) {
    const P a = ploadu<P>(p + j), b = ploadu<P>(p + j + L);
    sum0 = padd(sum0, psub(a, a));
    sum1 = padd(sum1, psub(b, b));
  }
  T rest = predux(padd(sum0, sum1));
  for (; j < n; ++j) rest += p[j] - p[j];
  return rest == T(0);
}

// Moves layer 0's W into ws.first_w for an epoch of fused steps, when the workspace has that buffer
// (a sparse-capable first layer within first_layer_copy_max_bytes), and back when it goes out of
// scope, however the epoch ends. There every row of W starts on a cache line, so a row spans as few
// lines as it can and, for widths such as 30 or 128, no packet the kernels load or store straddles
// two lines: a 784-30-10 network's epoch runs about 10 % faster. The kernels see the same numbers
// either way, so the results are the same bits.
template <typename T>
class FirstLayerOnLines {
 public:
  FirstLayerOnLines(Workspace<T>& ws, Network<T>& net, bool wanted) : ws_(ws), net_(net) {
    if (!wanted || ws.first_w.size() == 0) return;
    assert(!ws.first_w_holds_weights && ws.first_w.size() == net.layers[0].w.size());
    ws.first_w.view() = net.layers[0].w;
    ws.first_w_holds_weights = true;
  }
  ~FirstLayerOnLines() {
    if (!ws_.first_w_holds_weights) return;
    ws_.first_w_holds_weights = false;
    net_.layers[0].w = ws_.first_w.view();
  }
  FirstLayerOnLines(const FirstLayerOnLines&) = delete;
  FirstLayerOnLines& operator=(const FirstLayerOnLines&) = delete;

 private:
  Workspace<T>& ws_;
  Network<T>& net_;
};

// Asks for every cache line of p[0..count) to be on its way to the L2 cache.
template <typename T>
void prefetch_entries(const T* p, Index count) {
  const char* first = reinterpret_cast<const char*>(p);
  const Index bytes = count * Index(sizeof(T));
  for (Index at = 0; at < bytes; at += cache_line_bytes) __builtin_prefetch(first + at, 0, 2);
}

// How far ahead of the gathering the rows of x are prefetched: about this many bytes, so that
// they arrive during the batch before theirs and stay in L2 until gathered. A row whose first
// read only would start the hardware's stream costs about a third of a 784-30-10 epoch at
// batch 10; prefetched 10 to 20 rows ahead it costs about a tenth. 512 bytes of each row instead
// of the whole gained nothing, and prefetching the whole next batch at once slowed the batch.
inline constexpr Index gather_prefetch_bytes = Index(64) << 10;

// Gathers the batch's rows order[start + i] (or start + i, without order), i < m, of x into
// ws.x and of y into ws.y, prefetching rows gather_prefetch_bytes ahead. Returns false: ws.x
// holds them.
template <typename T>
bool gather_batch(Workspace<T>& ws, ConstMatrixRef<T> x, ConstMatrixRef<T> y,
                  const std::int64_t* order, Index start, Index m) {
  const Index n = x.rows();
  const Index ahead = std::max<Index>(1, gather_prefetch_bytes / (x.cols() * Index(sizeof(T))));
  for (Index i = 0; i < m; ++i) {
    const Index row = order ? Index(order[start + i]) : start + i;
    assert(row >= 0 && row < n);
    if (order && start + i + ahead < n) {
      const Index later = Index(order[start + i + ahead]);
      prefetch_entries<T>(x.data() + later * x.outerStride(), x.cols());
      prefetch_entries<T>(y.data() + later * y.outerStride(), y.cols());
    }
    ws.x.row(i) = x.row(row);
    ws.y.row(i) = y.row(row);
  }
  return false;
}

// The same from a CSR x: its nonzeros go to ws.sparse when the first layer takes them (returns
// true), else the rows are scattered into ws.x (returns false). x is never densified whole.
template <typename T>
bool gather_batch(Workspace<T>& ws, const CsrMatrix<T>& x, ConstMatrixRef<T> y,
                  const std::int64_t* order, Index start, Index m) {
  for (Index i = 0; i < m; ++i) ws.y.row(i) = y.row(order ? Index(order[start + i]) : start + i);
  if (ws.sparse_capable && ws.sparse.assign(x, order, start, m)) return true;
  if (ws.x.rows() < ws.capacity) ws.x.resize(ws.capacity, x.cols);
  scatter_csr_rows<T>(ws.x, x, order, start, m);
  return false;
}

template <typename T>
Index input_rows(const CsrMatrix<T>& x) { return x.rows; }
template <typename T>
Index input_rows(const Eigen::Ref<const Matrix<T>>& x) { return x.rows(); }

// Workspace::reserve's csr_nonzeros for batches of x: −1 for a dense x.
template <typename T>
Index csr_nonzeros(const CsrMatrix<T>& x, Index batch) { return batch_nonzeros<T>(x, batch); }
template <typename T>
Index csr_nonzeros(const Eigen::Ref<const Matrix<T>>&, Index) { return -1; }

// Σ_l ‖W_l‖², for the L2 penalty.
template <typename T>
double squared_weights(const Workspace<T>& ws, const Network<T>& net) {
  double total = 0.0;
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    total += double(layer_weights<T>(ws, net, l).squaredNorm());
  }
  return total;
}

// ws.row_scale = w_i / Σ w over the batch's rows, when there are sample weights; returns Σ w
// (m without weights).
template <typename T>
double scale_rows(Workspace<T>& ws, const double* sample_weight, const std::int64_t* order,
                  Index start, Index m) {
  ws.rows_scaled = sample_weight != nullptr;
  if (!sample_weight) return double(m);
  double total = 0.0;
  for (Index i = 0; i < m; ++i) total += sample_weight[order ? order[start + i] : start + i];
  for (Index i = 0; i < m; ++i) {
    const double w = sample_weight[order ? order[start + i] : start + i];
    ws.row_scale[std::size_t(i)] = T(total > 0.0 ? w / total : 0.0);
  }
  return total;
}

// dW_l += λ / Σw · W_l: the gradient of the L2 penalty.
template <typename T>
void add_l2_gradient(Workspace<T>& ws, const Network<T>& net, double factor) {
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    ws.dw[l].noalias() += T(factor) * layer_weights<T>(ws, net, l);
  }
}

// train_epoch's loop over the batches, with layer 0's W wherever the epoch keeps it.
template <typename T, typename Input>
EpochResult train_batches(Network<T>& net, Optimizer<T>& optimizer, Workspace<T>& ws,
                          const Input& x, ConstMatrixRef<T> y, const std::int64_t* order,
                          const TrainOptions& options, bool fused) {
  const Index batch_size = options.batch_size, n = input_rows(x);
  EpochResult result;
  for (Index start = 0; start < n; start += batch_size, ++result.batches) {
    if (options.stop && options.stop->load(std::memory_order_relaxed)) {
      result.interrupted = true;
      return result;
    }
    const Index m = std::min(batch_size, n - start);
    const bool in_sparse = gather_batch<T>(ws, x, y, order, start, m);
    // After the gathering, whose trips to memory a check between rows would hold back.
    for (Index i = 0; options.check_rows && !in_sparse && i < m; ++i) {
      if (!all_finite<T>(ws.x.row(i).data(), ws.x.cols())) {
        result.nonfinite_row = order ? Index(order[start + i]) : start + i;
        return result;
      }
    }
    const double weight_sum = scale_rows<T>(ws, options.sample_weight, order, start, m);
    if (weight_sum == 0.0) {  // a batch of weight 0 moves nothing
      result.samples += m;
      continue;
    }
    const ConstMatrixRef<T> xb =
        in_sparse ? ConstMatrixRef<T>(unread_input<T>(m, net.n_in())) : ConstMatrixRef<T>(ws.x.topRows(m));
    const auto yb = ws.y.topRows(m);
    const DropoutBatch dropout{options.dropout_seed,
                               std::uint64_t(options.first_batch + result.batches)};
    forward<T>(ws, net, xb, &dropout, in_sparse);
    // With weights the loss is already the batch's weighted mean; sklearn counts it m times.
    double loss = batch_loss_sum<T>(ws, net, yb);
    if (ws.rows_scaled) loss *= double(m);
    const double penalty =
        options.l2 > 0.0 ? double(m) * 0.5 * options.l2 * squared_weights<T>(ws, net) / weight_sum
                         : 0.0;
    if (!std::isfinite(loss) || !std::isfinite(penalty)) {
      result.failed_batch = result.batches;
      return result;
    }
    if (fused) {
      backward_and_step<T>(ws, net, optimizer, xb, yb);
    } else {
      backward<T>(ws, net, xb, yb);
      if (options.l2 > 0.0) add_l2_gradient<T>(ws, net, options.l2 / weight_sum);
      if (options.clip_norm > 0.0) clip_gradient_norm<T>(ws, options.clip_norm);
      optimizer.step(net, ws);
    }
    result.loss_sum += loss;
    result.penalty_sum += penalty;
    result.samples += m;
    if (options.progress) options.progress->add_batch(m, loss + penalty);
  }
  return result;
}

// Gathers the rows order[i] (or i, without order) of x and y into the workspace batch by batch
// and updates the network after each. x is (n, n_in), dense or CSR, y is (n, n_out), order is
// (n). A batch whose loss is not finite, or with check_rows one holding a row of a dense x that
// is not, is not applied; weights that are not finite at the end of the epoch mark its last
// batch as failed. Either way the caller restores the weights it trusts.
template <typename T, typename Input>
EpochResult train_epoch_on(Network<T>& net, Optimizer<T>& optimizer, Workspace<T>& ws,
                           const Input& x, ConstMatrixRef<T> y, const std::int64_t* order,
                           const TrainOptions& options) {
  const Index n = input_rows(x);
  assert(options.batch_size > 0 && y.rows() == n && optimizer.fits(net));
  const Index batch = std::min(options.batch_size, n);
  ws.reserve(net, batch, Purpose::training, csr_nonzeros<T>(x, batch));
  const bool fused =
      options.clip_norm == 0.0 && options.l2 == 0.0 && optimizer.fuses_with_backward();
  EpochResult result;
  {
    const FirstLayerOnLines<T> first_layer(ws, net, fused);
    result = train_batches<T>(net, optimizer, ws, x, y, order, options, fused);
  }
  ws.rows_scaled = false;
  const bool completed =
      result.failed_batch == -1 && result.nonfinite_row == -1 && !result.interrupted;
  if (completed && result.batches > 0 && !weights_finite(net)) {
    result.failed_batch = result.batches - 1;
  }
  return result;
}

template <typename T>
EpochResult train_epoch(Network<T>& net, Optimizer<T>& optimizer, Workspace<T>& ws,
                        ConstMatrixRef<T> x, ConstMatrixRef<T> y, const std::int64_t* order,
                        const TrainOptions& options) {
  return train_epoch_on<T>(net, optimizer, ws, x, y, order, options);
}

template <typename T>
EpochResult train_epoch(Network<T>& net, Optimizer<T>& optimizer, Workspace<T>& ws,
                        const CsrMatrix<T>& x, ConstMatrixRef<T> y, const std::int64_t* order,
                        const TrainOptions& options) {
  return train_epoch_on<T>(net, optimizer, ws, x, y, order, options);
}

// Rows per pass of full_gradient: bounds its buffers whatever the size of x.
inline constexpr Index full_gradient_chunk_rows = 1024;

struct FullGradient {
  double loss = 0.0;     // the (weighted) mean loss over x
  double penalty = 0.0;  // ½ λ Σ‖W‖² / Σw
};

// The gradient of the (weighted) mean loss over all of x plus the L2 penalty, into grads (shaped
// like the network), without updating: scikit-learn's objective for lbfgs. Rows are taken in
// chunks, each weighing its rows by w_i / Σw over all of x, so the sum of the chunks' gradients
// is the whole one. x is (n, n_in), dense or CSR, y is (n, n_out), sample_weight (n) or null.
template <typename T, typename Input>
FullGradient full_gradient_on(LayerBuffers<T>& grads, Network<T>& net, Workspace<T>& ws,
                              const Input& x, ConstMatrixRef<T> y, const double* sample_weight,
                              double l2) {
  const Index n = input_rows(x);
  const Index chunk = std::min(full_gradient_chunk_rows, n);
  ws.reserve(net, chunk, Purpose::training, csr_nonzeros<T>(x, chunk));
  double weight_sum = double(n);
  if (sample_weight) weight_sum = std::accumulate(sample_weight, sample_weight + n, 0.0);
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    grads.w[l].setZero(net.layers[l].w.rows(), net.layers[l].w.cols());
    grads.b[l].setZero(net.layers[l].b.cols());
  }
  FullGradient result;
  ws.rows_scaled = true;
  for (Index start = 0; start < n; start += full_gradient_chunk_rows) {
    const Index m = std::min(full_gradient_chunk_rows, n - start);
    const bool in_sparse = gather_batch<T>(ws, x, y, nullptr, start, m);
    for (Index i = 0; i < m; ++i) {
      const double w = sample_weight ? sample_weight[start + i] : 1.0;
      ws.row_scale[std::size_t(i)] = T(weight_sum > 0.0 ? w / weight_sum : 0.0);
    }
    const ConstMatrixRef<T> xb =
        in_sparse ? ConstMatrixRef<T>(unread_input<T>(m, net.n_in())) : ConstMatrixRef<T>(ws.x.topRows(m));
    const auto yb = ws.y.topRows(m);
    forward<T>(ws, net, xb, nullptr, in_sparse);
    result.loss += batch_loss_sum<T>(ws, net, yb);
    backward<T>(ws, net, xb, yb);
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
      grads.w[l] += ws.dw[l];
      grads.b[l] += ws.db[l];
    }
  }
  ws.rows_scaled = false;
  if (l2 > 0.0 && weight_sum > 0.0) {
    result.penalty = 0.5 * l2 * squared_weights<T>(ws, net) / weight_sum;
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
      grads.w[l] += T(l2 / weight_sum) * net.layers[l].w;
    }
  }
  return result;
}

template <typename T>
FullGradient full_gradient(LayerBuffers<T>& grads, Network<T>& net, Workspace<T>& ws,
                           ConstMatrixRef<T> x, ConstMatrixRef<T> y, const double* sample_weight,
                           double l2) {
  return full_gradient_on<T>(grads, net, ws, x, y, sample_weight, l2);
}

template <typename T>
FullGradient full_gradient(LayerBuffers<T>& grads, Network<T>& net, Workspace<T>& ws,
                           const CsrMatrix<T>& x, ConstMatrixRef<T> y, const double* sample_weight,
                           double l2) {
  return full_gradient_on<T>(grads, net, ws, x, y, sample_weight, l2);
}

template <typename T>
EpochResult train_epoch(Network<T>& net, Optimizer<T>& optimizer, Workspace<T>& ws,
                        ConstMatrixRef<T> x, ConstMatrixRef<T> y, const std::int64_t* order,
                        Index batch_size) {
  TrainOptions options;
  options.batch_size = batch_size;
  return train_epoch<T>(net, optimizer, ws, x, y, order, options);
}

}  // namespace fastgd
