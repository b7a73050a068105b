#include <pybind11/pybind11.h>
#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <atomic>
#include <csignal>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <signal.h>

#include <fastgd/network.hpp>
#include <fastgd/train.hpp>

#include "bindings.hpp"

namespace py = pybind11;
using fastgd::ConstMatrixRef;
using fastgd::Index;
using fastgd::MatrixRef;

namespace fastgd_bindings {
// A scipy.sparse CSR matrix's arrays, passed as the tuple (indptr int64, indices int32, data) and
// checked whole (with the GIL released) so that the engine can trust them: indptr starts at 0 and never decreases, and every index lies in [0, cols).
template <typename T>
struct CsrArrays {
  py::array_t<std::int64_t, py::array::c_style> indptr;
  py::array_t<std::int32_t, py::array::c_style> indices;
  py::array_t<T, py::array::c_style> data;

  fastgd::CsrMatrix<T> checked(Index cols) const {
    if (indptr.ndim() != 1 || indptr.shape(0) < 1 || indices.ndim() != 1 || data.ndim() != 1) {
      throw std::invalid_argument("a sparse X needs 1-D indptr, indices and data");
    }
    fastgd::CsrMatrix<T> x{indptr.data(), indices.data(), data.data(), Index(indptr.shape(0)) - 1, cols};
    const Index stored = std::min(Index(indices.shape(0)), Index(data.shape(0)));
    py::gil_scoped_release release;
    if (x.indptr[0] != 0 || x.indptr[x.rows] > stored) {
      throw std::invalid_argument("the sparse X's indptr does not match its indices and data");
    }
    for (Index i = 0; i < x.rows; ++i) {
      if (x.indptr[i + 1] < x.indptr[i]) throw std::invalid_argument("the sparse X's indptr decreases");
    }
    for (std::int64_t e = 0; e < x.indptr[x.rows]; ++e) {
      if (x.indices[e] < 0 || x.indices[e] >= cols) {
        throw std::invalid_argument("the sparse X holds column " + std::to_string(x.indices[e]) +
                                    ", outside [0, " + std::to_string(cols) + ")");
      }
    }
    return x;
  }
};

}  // namespace fastgd_bindings

namespace pybind11::detail {
template <typename T>
struct type_caster<fastgd_bindings::CsrArrays<T>> {
  PYBIND11_TYPE_CASTER(fastgd_bindings::CsrArrays<T>, const_name("tuple[ndarray, ndarray, ndarray]"));

  // Arrays of exactly these dtypes, C-contiguous; the Python layer converts once per fit.
  bool load(handle src, bool) {
    if (!isinstance<tuple>(src) || len(src) != 3) return false;
    const auto parts = reinterpret_borrow<tuple>(src);
    if (!exact<std::int64_t>(parts[0]) || !exact<std::int32_t>(parts[1]) || !exact<T>(parts[2])) return false;
    value.indptr = reinterpret_borrow<array_t<std::int64_t, array::c_style>>(parts[0]);
    value.indices = reinterpret_borrow<array_t<std::int32_t, array::c_style>>(parts[1]);
    value.data = reinterpret_borrow<array_t<T, array::c_style>>(parts[2]);
    return true;
  }

  static handle cast(const fastgd_bindings::CsrArrays<T>&, return_value_policy, handle) { return none().release(); }

 private:
  template <typename E>
  static bool exact(handle h) {
    return isinstance<array_t<E, array::c_style>>(h);  // the dtype's and the layout's check
  }
};
}  // namespace pybind11::detail

namespace fastgd_bindings {
namespace {

// The network, the buffers its training loop reuses, a pool of inference buffers (one taken per
// concurrent predict, returned after, so steady-state calls allocate nothing), and a lock:
// training takes it exclusively, inference shares it.
template <typename T>
struct BoundNetwork {
  explicit BoundNetwork(fastgd::Network<T> network) : net(std::move(network)) {}

  std::unique_ptr<fastgd::InferenceWorkspace<T>> take_inference_workspace() {
    std::lock_guard<std::mutex> guard(pool_lock);
    if (idle.empty()) return std::make_unique<fastgd::InferenceWorkspace<T>>();
    auto ws = std::move(idle.back());
    idle.pop_back();
    return ws;
  }

  void return_inference_workspace(std::unique_ptr<fastgd::InferenceWorkspace<T>> ws) {
    std::lock_guard<std::mutex> guard(pool_lock);
    idle.push_back(std::move(ws));
  }

  double predict(MatrixRef<T> out, ConstMatrixRef<T> x, const ConstMatrixRef<T>* y) {
    auto ws = take_inference_workspace();
    double loss;
    {
      std::shared_lock guard(lock);
      loss = fastgd::predict<T>(out, *ws, net, x, y);
    }
    return_inference_workspace(std::move(ws));
    return loss;
  }

  double predict(MatrixRef<T> out, const fastgd::CsrMatrix<T>& x, const ConstMatrixRef<T>* y) {
    auto ws = take_inference_workspace();
    double loss;
    {
      std::shared_lock guard(lock);
      if (ws->per_thread.empty()) ws->per_thread.resize(1);
      loss = fastgd::predict<T>(out, ws->per_thread[0], net, x, y);
    }
    return_inference_workspace(std::move(ws));
    return loss;
  }

  fastgd::Network<T> net;
  fastgd::Workspace<T> ws;
  fastgd::Progress progress;
  std::shared_mutex lock;
  std::mutex pool_lock;
  std::vector<std::unique_ptr<fastgd::InferenceWorkspace<T>>> idle;
};

// While an epoch runs with the GIL released, Python's own SIGINT handler cannot run: this one
// records Ctrl-C for the loop to see at its next batch boundary, and is replaced by the previous
// handler when the epoch ends.
std::atomic<bool> interrupt_requested{false};

extern "C" void record_interrupt(int) { interrupt_requested.store(true); }

class InterruptCatcher {
 public:
  explicit InterruptCatcher(bool active) : active_(active) {
    if (!active_) return;
    interrupt_requested.store(false);
    struct sigaction action {};
    action.sa_handler = record_interrupt;
    sigemptyset(&action.sa_mask);
    active_ = sigaction(SIGINT, &action, &previous_) == 0;
  }
  ~InterruptCatcher() {
    if (active_) sigaction(SIGINT, &previous_, nullptr);
  }
  InterruptCatcher(const InterruptCatcher&) = delete;
  InterruptCatcher& operator=(const InterruptCatcher&) = delete;

 private:
  bool active_;
  struct sigaction previous_ {};
};

std::string shape_text(Index rows, Index cols) {
  return "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")";
}

void require_shape(const char* name, Index rows, Index cols, Index want_rows, Index want_cols) {
  if (rows != want_rows || cols != want_cols) {
    throw std::invalid_argument(std::string(name) + " has shape " + shape_text(rows, cols) +
                                ", expected " + shape_text(want_rows, want_cols));
  }
}

template <typename T>
void require_input(const fastgd::Network<T>& net, ConstMatrixRef<T> x) {
  if (x.cols() != net.n_in()) {
    throw std::invalid_argument("X has " + std::to_string(x.cols()) + " features, the network takes " +
                                std::to_string(net.n_in()));
  }
}

template <typename T>
py::array_t<T> view(T* data, std::vector<py::ssize_t> shape, py::handle owner) {
  std::vector<py::ssize_t> strides(shape.size(), py::ssize_t(sizeof(T)));
  if (shape.size() == 2) strides[0] = shape[1] * py::ssize_t(sizeof(T));
  return py::array_t<T>(shape, strides, data, owner);
}

// The array behind h when it can be read, or written, as an aligned C-contiguous T array in place.
template <typename T>
const py::detail::PyArray_Proxy* direct_array(py::handle h, bool writeable) {
  if (!py::isinstance<py::array>(h)) return nullptr;
  const auto* proxy = py::detail::array_proxy(h.ptr());
  // Held for the life of the process: released at exit, it could outlive the interpreter.
  static PyObject* const wanted = py::dtype::of<T>().release().ptr();
  const int required = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_ |
                       (writeable ? py::detail::npy_api::NPY_ARRAY_WRITEABLE_ : 0);
  if ((proxy->flags & required) != required ||
      !py::detail::npy_api::get().PyArray_EquivTypes_(proxy->descr, wanted)) {
    return nullptr;
  }
  return proxy;
}

// net.predict(x, out=out)'s path: x (n_in) with out (n_out), or x (m, n_in) with out (m, n_out),
// both C-contiguous T arrays and x finite, goes straight to the engine; returns false, having
// done nothing, for anything else, which the Python layer then checks and explains.
template <typename T>
bool predict_direct(BoundNetwork<T>& self, py::handle out_handle, py::handle x_handle) {
  const auto* x = direct_array<T>(x_handle, false);
  const auto* out = direct_array<T>(out_handle, true);
  if (!x || !out || x->nd != out->nd || x->nd < 1 || x->nd > 2) return false;
  const bool single = x->nd == 1;
  const Index rows = single ? 1 : Index(x->dimensions[0]);
  const Index n_in = Index(x->dimensions[single ? 0 : 1]);
  const Index n_out = Index(out->dimensions[single ? 0 : 1]);
  if (rows < 1 || n_in != self.net.n_in() || n_out != self.net.n_out() ||
      (!single && Index(out->dimensions[0]) != rows)) {
    return false;
  }
  const Eigen::Map<const fastgd::Matrix<T>> x_map(reinterpret_cast<const T*>(x->data), rows, n_in);
  if (!x_map.allFinite()) return false;
  Eigen::Map<fastgd::Matrix<T>> out_map(reinterpret_cast<T*>(out->data), rows, n_out);
  if (rows * n_in * self.net.layers.front().w.cols() < (Index(1) << 20)) {
    self.predict(out_map, x_map, nullptr);  // too little work to let another thread in
  } else {
    py::gil_scoped_release release;
    self.predict(out_map, x_map, nullptr);
  }
  return true;
}

template <typename T>
fastgd::CsrMatrix<T> engine_input(const fastgd::Network<T>& net, const CsrArrays<T>& x) {
  return x.checked(net.n_in());
}

template <typename T>
ConstMatrixRef<T> engine_input(const fastgd::Network<T>& net, const ConstMatrixRef<T>& x) {
  require_input(net, x);
  return x;
}

using SampleWeight = std::optional<py::array_t<double, py::array::c_style | py::array::forcecast>>;

const double* sample_weight_data(const SampleWeight& weight, Index rows) {
  if (!weight) return nullptr;
  if (weight->ndim() != 1 || weight->shape(0) != rows) {
    throw std::invalid_argument("sample_weight must have one weight per row of X");
  }
  const double* data = weight->data();
  for (Index i = 0; i < rows; ++i) {
    if (!(data[i] >= 0.0) || !std::isfinite(data[i])) {
      throw std::invalid_argument("sample_weight must be finite and non-negative");
    }
  }
  return data;
}

template <typename T, typename Input>
py::tuple train_epoch(BoundNetwork<T>& self, fastgd::Optimizer<T>& optimizer, const Input& x_given,
                      ConstMatrixRef<T> y, std::optional<py::array_t<std::int64_t, py::array::c_style>> order,
                      Index batch_size, double clip_norm, bool catch_interrupt, std::uint64_t dropout_seed,
                      Index first_batch, bool check_rows, const SampleWeight& sample_weight, double l2) {
  const auto x = engine_input(self.net, x_given);
  const Index n = fastgd::input_rows(x);
  require_shape("y", y.rows(), y.cols(), n, self.net.n_out());
  if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  if (first_batch < 0) throw std::invalid_argument("first_batch must be at least 0");
  if (!(clip_norm >= 0.0)) throw std::invalid_argument("clip_norm must be 0 (off) or positive");
  if (!(l2 >= 0.0) || !std::isfinite(l2)) throw std::invalid_argument("l2 must be finite and non-negative");
  if (!optimizer.fits(self.net)) {
    throw std::invalid_argument("the optimizer's state belongs to a network of another shape");
  }
  const std::int64_t* rows = nullptr;
  if (order) {
    if (order->ndim() != 1 || order->shape(0) != n) {
      throw std::invalid_argument("order must have one index per row of X");
    }
    rows = order->data();
  }
  const double* weights = sample_weight_data(sample_weight, n);
  fastgd::EpochResult result;
  {
    py::gil_scoped_release release;
    if (rows) {
      for (Index i = 0; i < n; ++i) {
        if (rows[i] < 0 || rows[i] >= n) {
          throw std::invalid_argument("order holds row " + std::to_string(rows[i]) + ", outside [0, " +
                                      std::to_string(n) + ")");
        }
      }
    }
    std::unique_lock guard(self.lock);
    InterruptCatcher catcher(catch_interrupt);
    fastgd::TrainOptions options;
    options.batch_size = batch_size;
    options.clip_norm = clip_norm;
    options.dropout_seed = dropout_seed;
    options.first_batch = first_batch;
    options.progress = &self.progress;
    options.stop = catch_interrupt ? &interrupt_requested : nullptr;
    options.check_rows = check_rows;
    options.sample_weight = weights;
    options.l2 = l2;
    result = fastgd::train_epoch<T>(self.net, optimizer, self.ws, x, y, rows, options);
  }
  if (result.nonfinite_row >= 0) {
    throw std::invalid_argument("X contains NaN or Inf (at row " + std::to_string(result.nonfinite_row) + ")");
  }
  return py::make_tuple(result.loss_sum, result.samples, result.failed_batch, result.interrupted,
                        result.penalty_sum);
}

template <typename T, typename Input>
py::tuple full_gradient(BoundNetwork<T>& self, const Input& x_given, ConstMatrixRef<T> y,
                        const SampleWeight& sample_weight, double l2) {
  const auto x = engine_input(self.net, x_given);
  const Index n = fastgd::input_rows(x);
  require_shape("y", y.rows(), y.cols(), n, self.net.n_out());
  if (n == 0) throw std::invalid_argument("X is empty");
  if (!(l2 >= 0.0) || !std::isfinite(l2)) throw std::invalid_argument("l2 must be finite and non-negative");
  const double* weights = sample_weight_data(sample_weight, n);
  fastgd::LayerBuffers<T> grads;
  grads.w.resize(self.net.layers.size());
  grads.b.resize(self.net.layers.size());
  fastgd::FullGradient result;
  {
    py::gil_scoped_release release;
    std::unique_lock guard(self.lock);
    result = fastgd::full_gradient<T>(grads, self.net, self.ws, x, y, weights, l2);
  }
  py::list pairs;
  for (std::size_t l = 0; l < grads.w.size(); ++l) pairs.append(py::make_tuple(grads.w[l], grads.b[l]));
  return py::make_tuple(result.loss, result.penalty, pairs);
}

template <typename T>
void define_for(py::module_& m, const char* suffix) {
  using Bound = BoundNetwork<T>;
  py::class_<Bound>(m, (std::string("Network") + suffix).c_str(),
                    "A dense network in C++. Use fastgd.Network, which validates its input.")
      .def(py::init([](const std::vector<Index>& sizes, const std::vector<std::string>& activations,
                       const std::string& loss, const std::vector<double>& dropout) {
             std::vector<fastgd::Activation> kinds;
             for (const auto& name : activations) kinds.push_back(fastgd::activation_from_name(name));
             const auto kind_of_loss = fastgd::loss_from_name(loss);
             return new Bound(fastgd::Network<T>(sizes, kinds, kind_of_loss, dropout));
           }),
           py::arg("sizes"), py::arg("activations"), py::arg("loss"),
           py::arg("dropout") = std::vector<double>{})
      .def_property_readonly("n_layers", [](const Bound& self) { return self.net.n_layers(); })
      .def_property_readonly("n_in", [](const Bound& self) { return self.net.n_in(); })
      .def_property_readonly("n_out", [](const Bound& self) { return self.net.n_out(); })
      .def_property_readonly("loss", [](const Bound& self) { return fastgd::loss_name(self.net.loss); })
      .def_property_readonly("dropout", [](const Bound& self) { return self.net.dropout_rates(); })
      .def_property_readonly("activations", [](const Bound& self) {
        std::vector<std::string> names;
        for (const auto& layer : self.net.layers) names.push_back(fastgd::activation_name(layer.activation));
        return names;
      })
      .def("weight", [](py::object self, Index l) {
             auto& bound = self.cast<Bound&>();
             if (l < 0 || l >= bound.net.n_layers()) throw py::index_error("layer index out of range");
             auto& w = bound.net.layers[std::size_t(l)].w;
             return view<T>(w.data(), {w.rows(), w.cols()}, self);
           }, py::arg("layer"), "W of a layer, (n_in, n_out), sharing memory with the network.")
      .def("bias", [](py::object self, Index l) {
             auto& bound = self.cast<Bound&>();
             if (l < 0 || l >= bound.net.n_layers()) throw py::index_error("layer index out of range");
             auto& b = bound.net.layers[std::size_t(l)].b;
             return view<T>(b.data(), {b.cols()}, self);
           }, py::arg("layer"), "b of a layer, (n_out,), sharing memory with the network.")
      .def("predict", [](Bound& self, MatrixRef<T> out, ConstMatrixRef<T> x) {
             require_input(self.net, x);
             require_shape("out", out.rows(), out.cols(), x.rows(), self.net.n_out());
             py::gil_scoped_release release;
             self.predict(out, x, nullptr);
           }, py::arg("out").noconvert(), py::arg("x").noconvert(),
           "Write the network's output for x (n, n_in) into out (n, n_out).")
      .def("predict_direct", &predict_direct<T>, py::arg("out"), py::arg("x"),
           "Write the output for x into out and return True when both are C-contiguous arrays of\n"
           "the network's dtype and matching shapes (1-D for one sample) and x is finite; else\n"
           "return False and do nothing.")
      .def("evaluate", [](Bound& self, MatrixRef<T> out, ConstMatrixRef<T> x, ConstMatrixRef<T> y) {
             require_input(self.net, x);
             require_shape("out", out.rows(), out.cols(), x.rows(), self.net.n_out());
             require_shape("y", y.rows(), y.cols(), x.rows(), self.net.n_out());
             py::gil_scoped_release release;
             return self.predict(out, x, &y);
           }, py::arg("out").noconvert(), py::arg("x").noconvert(), py::arg("y").noconvert(),
           "Write the output for x into out and return the loss summed over the rows.")
      .def("train_epoch", &train_epoch<T, ConstMatrixRef<T>>, py::arg("optimizer"), py::arg("x").noconvert(),
           py::arg("y").noconvert(), py::arg("order"), py::arg("batch_size"), py::arg("clip_norm") = 0.0,
           py::arg("catch_interrupt") = false, py::arg("dropout_seed") = 0, py::arg("first_batch") = 0,
           py::arg("check_rows") = false, py::arg("sample_weight") = py::none(), py::arg("l2") = 0.0,
           "Train on the rows of x in `order` (or in turn), batch by batch, with the GIL released.\n"
           "Batch b of this call is batch first_batch + b of the epoch, and draws its dropout\n"
           "masks from (dropout_seed, first_batch + b). With check_rows, a row of x holding NaN\n"
           "or Inf raises ValueError before its batch is applied (earlier batches stay applied).\n"
           "With sample_weight (n,), each batch's loss is the mean weighted by it; with l2, the\n"
           "penalty l2/2 sum ||W||^2 / sum(weights) is added to every batch's loss.\n"
           "Returns (loss_sum, samples, failed_batch, interrupted, penalty_sum): failed_batch is\n"
           "-1 unless a batch's loss (not applied) or the weights at the epoch's end were not\n"
           "finite; interrupted is true when Ctrl-C (caught only with catch_interrupt, from the\n"
           "main thread) stopped the epoch at a batch boundary.")
      .def("train_epoch_sparse", &train_epoch<T, CsrArrays<T>>, py::arg("optimizer"), py::arg("x"),
           py::arg("y").noconvert(), py::arg("order"), py::arg("batch_size"), py::arg("clip_norm") = 0.0,
           py::arg("catch_interrupt") = false, py::arg("dropout_seed") = 0, py::arg("first_batch") = 0,
           py::arg("check_rows") = false, py::arg("sample_weight") = py::none(), py::arg("l2") = 0.0,
           "train_epoch for x = (indptr int64, indices int32, data), a CSR matrix of n_in columns:\n"
           "each batch's nonzeros go to the sparse first layer, or the batch alone is made dense.")
      .def("full_gradient", &full_gradient<T, ConstMatrixRef<T>>, py::arg("x").noconvert(),
           py::arg("y").noconvert(), py::arg("sample_weight") = py::none(), py::arg("l2") = 0.0,
           "(mean loss, penalty, [(dW, db), ...]): the gradient of the (weighted) mean loss over all\n"
           "rows plus the penalty l2/2 sum ||W||^2 / sum(weights), without updating.")
      .def("full_gradient_sparse", &full_gradient<T, CsrArrays<T>>, py::arg("x"), py::arg("y").noconvert(),
           py::arg("sample_weight") = py::none(), py::arg("l2") = 0.0,
           "full_gradient for x = (indptr, indices, data), a CSR matrix of n_in columns.")
      .def("predict_sparse", [](Bound& self, MatrixRef<T> out, const CsrArrays<T>& x) {
             const auto csr = x.checked(self.net.n_in());
             require_shape("out", out.rows(), out.cols(), csr.rows, self.net.n_out());
             py::gil_scoped_release release;
             self.predict(out, csr, nullptr);
           }, py::arg("out").noconvert(), py::arg("x"),
           "predict for x = (indptr, indices, data), a CSR matrix of n_in columns.")
      .def("evaluate_sparse", [](Bound& self, MatrixRef<T> out, const CsrArrays<T>& x, ConstMatrixRef<T> y) {
             const auto csr = x.checked(self.net.n_in());
             require_shape("out", out.rows(), out.cols(), csr.rows, self.net.n_out());
             require_shape("y", y.rows(), y.cols(), csr.rows, self.net.n_out());
             py::gil_scoped_release release;
             return self.predict(out, csr, &y);
           }, py::arg("out").noconvert(), py::arg("x"), py::arg("y").noconvert(),
           "evaluate for x = (indptr, indices, data), a CSR matrix of n_in columns.")
      .def("progress", [](const Bound& self) {
             return py::make_tuple(self.progress.batches.load(), self.progress.samples.load(),
                                   self.progress.loss_sum.load());
           },
           "(batches, samples, loss_sum) trained since reset_progress(); safe to call from another\n"
           "thread while train_epoch runs.")
      .def("reset_progress", [](Bound& self) { self.progress.reset(); })
      .def("gradients", [](Bound& self, ConstMatrixRef<T> x, ConstMatrixRef<T> y,
                           std::optional<std::uint64_t> dropout_seed) {
             require_input(self.net, x);
             require_shape("y", y.rows(), y.cols(), x.rows(), self.net.n_out());
             if (x.rows() == 0) throw std::invalid_argument("X is empty");
             fastgd::Workspace<T> ws(self.net, x.rows());
             double loss;
             {
               py::gil_scoped_release release;
               std::shared_lock guard(self.lock);
               const fastgd::DropoutBatch dropout{dropout_seed.value_or(0), 0};
               fastgd::forward<T>(ws, self.net, x, dropout_seed ? &dropout : nullptr);
               loss = fastgd::batch_loss_sum<T>(ws, self.net, y);
               fastgd::backward<T>(ws, self.net, x, y);
             }
             py::list grads;
             for (std::size_t l = 0; l < ws.dw.size(); ++l) {
               grads.append(py::make_tuple(fastgd::Matrix<T>(ws.dw[l]), fastgd::RowVector<T>(ws.db[l])));
             }
             return py::make_tuple(loss / double(x.rows()), grads);
           }, py::arg("x").noconvert(), py::arg("y").noconvert(), py::arg("dropout_seed") = py::none(),
           "Mean loss over the rows and its gradient [(dW, db), ...], without updating; with\n"
           "dropout_seed, through the dropout masks of batch 0 under that seed.");

  m.def((std::string("first_nonfinite") + suffix).c_str(), [](ConstMatrixRef<T> x) -> py::object {
        for (Index i = 0; i < x.rows(); ++i) {
          if (x.row(i).allFinite()) continue;
          for (Index j = 0; j < x.cols(); ++j) {
            if (!std::isfinite(x(i, j))) return py::make_tuple(i, j);
          }
        }
        return py::none();
      }, py::arg("x").noconvert(), "(row, column) of the first NaN or Inf in x, or None.");

  m.def((std::string("dropout_mask") + suffix).c_str(),
        [](Index rows, Index cols, std::uint64_t seed, std::uint64_t batch, std::uint64_t layer,
           double rate) {
          if (rows < 0 || cols < 0) throw std::invalid_argument("rows and cols must be >= 0");
          fastgd::check_dropout_rate(rate);
          fastgd::Matrix<T> mask(rows, cols);
          fastgd::dropout_mask<T>(mask, seed, batch, layer, rate);
          return mask;
        }, py::arg("rows"), py::arg("cols"), py::arg("seed"), py::arg("batch"), py::arg("layer"),
        py::arg("rate"), "The dropout scales (0 or 1 / (1 - rate)) of one layer in one batch.");
}

}  // namespace

void define_network(py::module_& m) {
  define_for<float>(m, "32");
  define_for<double>(m, "64");
}

}  // namespace fastgd_bindings
