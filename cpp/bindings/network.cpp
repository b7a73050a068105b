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
      .def("train_epoch",
           [](Bound& self, fastgd::Optimizer<T>& optimizer, ConstMatrixRef<T> x, ConstMatrixRef<T> y,
              std::optional<py::array_t<std::int64_t, py::array::c_style>> order, Index batch_size,
              double clip_norm, bool catch_interrupt, std::uint64_t dropout_seed, Index first_batch,
              bool check_rows) {
             require_input(self.net, x);
             require_shape("y", y.rows(), y.cols(), x.rows(), self.net.n_out());
             if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
             if (first_batch < 0) throw std::invalid_argument("first_batch must be at least 0");
             if (!(clip_norm >= 0.0)) throw std::invalid_argument("clip_norm must be 0 (off) or positive");
             if (!optimizer.fits(self.net)) {
               throw std::invalid_argument("the optimizer's state belongs to a network of another shape");
             }
             const std::int64_t* rows = nullptr;
             if (order) {
               if (order->ndim() != 1 || order->shape(0) != x.rows()) {
                 throw std::invalid_argument("order must have one index per row of X");
               }
               rows = order->data();
             }
             fastgd::EpochResult result;
             {
               py::gil_scoped_release release;
               if (rows) {
                 for (Index i = 0; i < x.rows(); ++i) {
                   if (rows[i] < 0 || rows[i] >= x.rows()) {
                     throw std::invalid_argument("order holds row " + std::to_string(rows[i]) +
                                                 ", outside [0, " + std::to_string(x.rows()) + ")");
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
               result = fastgd::train_epoch<T>(self.net, optimizer, self.ws, x, y, rows, options);
             }
             if (result.nonfinite_row >= 0) {
               throw std::invalid_argument("X contains NaN or Inf (at row " +
                                           std::to_string(result.nonfinite_row) + ")");
             }
             return py::make_tuple(result.loss_sum, result.samples, result.failed_batch,
                                   result.interrupted);
           },
           py::arg("optimizer"), py::arg("x").noconvert(), py::arg("y").noconvert(), py::arg("order"),
           py::arg("batch_size"), py::arg("clip_norm") = 0.0, py::arg("catch_interrupt") = false,
           py::arg("dropout_seed") = 0, py::arg("first_batch") = 0, py::arg("check_rows") = false,
           "Train on the rows of x in `order` (or in turn), batch by batch, with the GIL released.\n"
           "Batch b of this call is batch first_batch + b of the epoch, and draws its dropout\n"
           "masks from (dropout_seed, first_batch + b). With check_rows, a row of x holding NaN\n"
           "or Inf raises ValueError before its batch is applied (earlier batches stay applied).\n"
           "Returns (loss_sum, samples, failed_batch, interrupted): failed_batch is -1 unless a\n"
           "batch's loss (not applied) or the weights at the epoch's end were not finite;\n"
           "interrupted is true when Ctrl-C (caught only with catch_interrupt, from the main\n"
           "thread) stopped the epoch at a batch boundary.")
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
