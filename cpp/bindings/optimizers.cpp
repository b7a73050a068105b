#include <pybind11/pybind11.h>
#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cmath>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fastgd/optimizers.hpp>
#include <fastgd/sklearn_optimizers.hpp>

#include "bindings.hpp"

namespace py = pybind11;
using fastgd::Index;

namespace fastgd_bindings {
namespace {

std::string number_text(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

void require_positive(const char* name, double value) {
  if (!std::isfinite(value)) throw std::invalid_argument(std::string(name) + " must be finite, got " + number_text(value));
  if (!(value > 0.0)) throw std::invalid_argument(std::string(name) + " must be positive, got " + number_text(value));
}

void require_non_negative(const char* name, double value) {
  if (!std::isfinite(value)) throw std::invalid_argument(std::string(name) + " must be finite, got " + number_text(value));
  if (!(value >= 0.0)) throw std::invalid_argument(std::string(name) + " must be at least 0, got " + number_text(value));
}

void require_below_one(const char* name, double value) {
  require_non_negative(name, value);
  if (!(value < 1.0)) throw std::invalid_argument(std::string(name) + " must be in [0, 1), got " + number_text(value));
}

fastgd::SGDHyperparameters sgd_hyper(double lr, double momentum, bool nesterov, double weight_decay) {
  require_positive("lr", lr);
  require_non_negative("momentum", momentum);
  require_non_negative("weight_decay", weight_decay);
  if (nesterov && momentum == 0.0) throw std::invalid_argument("nesterov momentum needs momentum > 0");
  return {lr, momentum, nesterov, weight_decay};
}

fastgd::SklearnSGDHyperparameters sklearn_sgd_hyper(double lr, double momentum, bool nesterov) {
  require_positive("lr", lr);
  require_non_negative("momentum", momentum);
  if (momentum > 1.0) throw std::invalid_argument("momentum must be in [0, 1], got " + number_text(momentum));
  return {lr, momentum, nesterov};
}

fastgd::SklearnAdamHyperparameters sklearn_adam_hyper(double lr, double beta_1, double beta_2, double epsilon) {
  require_positive("lr", lr);
  require_below_one("beta_1", beta_1);
  require_below_one("beta_2", beta_2);
  require_positive("epsilon", epsilon);
  return {lr, beta_1, beta_2, epsilon};
}

fastgd::AdamHyperparameters adam_hyper(double lr, std::pair<double, double> betas, double eps,
                                       double weight_decay, bool decoupled_weight_decay) {
  require_positive("lr", lr);
  require_below_one("betas[0]", betas.first);
  require_below_one("betas[1]", betas.second);
  require_positive("eps", eps);
  require_non_negative("weight_decay", weight_decay);
  return {lr, betas.first, betas.second, eps, weight_decay, decoupled_weight_decay};
}

fastgd::RMSpropHyperparameters rmsprop_hyper(double lr, double alpha, double eps, double momentum,
                                             double weight_decay) {
  require_positive("lr", lr);
  require_below_one("alpha", alpha);
  require_positive("eps", eps);
  require_non_negative("momentum", momentum);
  require_non_negative("weight_decay", weight_decay);
  return {lr, alpha, eps, momentum, weight_decay};
}

fastgd::AdagradHyperparameters adagrad_hyper(double lr, double eps, double weight_decay) {
  require_positive("lr", lr);
  require_positive("eps", eps);
  require_non_negative("weight_decay", weight_decay);
  return {lr, eps, weight_decay};
}

// A new state, tied to a network's layer sizes when given, so that set_state checks
// checkpoints against them.
template <typename O, typename H>
std::unique_ptr<O> make_state(const H& hyper, const std::optional<std::vector<Index>>& sizes) {
  auto optimizer = std::make_unique<O>(hyper);
  if (!sizes) return optimizer;
  if (sizes->size() < 2) throw std::invalid_argument("sizes must list at least an input and an output size");
  for (Index size : *sizes) {
    if (size < 1) throw std::invalid_argument("sizes must be positive, got " + std::to_string(size));
  }
  optimizer->sizes = *sizes;
  return optimizer;
}

std::string shape_text(const py::array& array) {
  std::string text = "(";
  for (py::ssize_t d = 0; d < array.ndim(); ++d) {
    text += std::to_string(array.shape(d)) + (array.ndim() == 1 ? "," : d + 1 < array.ndim() ? ", " : "");
  }
  return text + ")";
}

// The `ndim`-D array `item` (element `label` of a state) as a C-contiguous array of T.
template <typename T>
py::array_t<T, py::array::c_style> read_array(py::handle item, const std::string& label, int ndim) {
  py::array original = py::array::ensure(item);
  if (!original || std::string("biuf").find(original.dtype().kind()) == std::string::npos) {
    throw py::type_error(label + " must be an array of real numbers, got " +
                         std::string(py::str(py::type::handle_of(item).attr("__name__"))));
  }
  if (original.ndim() != ndim) {
    throw std::invalid_argument(label + " must be " + std::to_string(ndim) + "-D, got shape " +
                                shape_text(original));
  }
  return py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(original);
}

// The arrays of one buffer key ("exp_avg_w": a list with one array per layer).
template <typename Array, typename T>
std::vector<Array> read_layers(py::handle value, const std::string& key, int ndim) {
  if (!py::isinstance<py::list>(value) && !py::isinstance<py::tuple>(value)) {
    throw py::type_error(key + " must be a list of arrays, one per layer, got " +
                         std::string(py::str(py::type::handle_of(value).attr("__name__"))));
  }
  std::vector<Array> layers;
  Index l = 0;
  for (py::handle item : value) {
    const auto array = read_array<T>(item, key + "[" + std::to_string(l++) + "]", ndim);
    const Index rows = ndim == 2 ? array.shape(0) : 1, cols = array.shape(ndim - 1);
    layers.emplace_back(Eigen::Map<const Array>(array.data(), rows, cols));
  }
  return layers;
}

// get_state() as Python: {"steps": int, "<name>_w": [W-shaped array per layer], "<name>_b": [...]}.
template <typename T>
py::dict state_to_dict(const fastgd::Optimizer<T>& self) {
  auto state = self.get_state();
  py::dict out;
  out["steps"] = state.steps;
  for (auto& [name, values] : state.buffers) {
    py::list w, b;
    for (auto& array : values.w) w.append(py::cast(std::move(array)));
    for (auto& array : values.b) b.append(py::cast(std::move(array)));
    out[py::str(name + "_w")] = w;
    out[py::str(name + "_b")] = b;
  }
  return out;
}

template <typename T>
fastgd::OptimizerState<T> state_from_dict(const fastgd::Optimizer<T>& self, py::handle object) {
  if (!py::isinstance<py::dict>(object)) {
    throw py::type_error("state must be a dict as get_state() returns, got " +
                         std::string(py::str(py::type::handle_of(object).attr("__name__"))));
  }
  const auto dict = py::reinterpret_borrow<py::dict>(object);
  const auto names = self.buffer_names();
  std::string expected = "steps";
  for (const auto& name : names) expected += ", " + name + "_w, " + name + "_b";
  for (auto item : dict) {
    const std::string key = py::str(item.first);
    bool known = key == "steps";
    for (const auto& name : names) known = known || key == name + "_w" || key == name + "_b";
    if (!py::isinstance<py::str>(item.first) || !known) {
      throw std::invalid_argument("unknown key '" + key + "' in the optimizer state; expected " + expected);
    }
  }
  if (!dict.contains("steps")) throw std::invalid_argument("the optimizer state has no 'steps'");
  const py::object steps = dict["steps"];
  if (py::isinstance<py::bool_>(steps) || !PyIndex_Check(steps.ptr())) {
    throw py::type_error("steps must be an integer, got " + std::string(py::repr(steps)));
  }
  fastgd::OptimizerState<T> state;
  state.steps = py::int_(steps.attr("__index__")()).cast<long long>();
  for (const auto& name : names) {
    const std::string w_key = name + "_w", b_key = name + "_b";
    const bool has_w = dict.contains(w_key), has_b = dict.contains(b_key);
    if (has_w != has_b) {
      throw std::invalid_argument("the optimizer state has " + (has_w ? w_key : b_key) + " but no " +
                                  (has_w ? b_key : w_key));
    }
    if (!has_w) continue;
    fastgd::LayerBuffers<T> values;
    values.w = read_layers<fastgd::Matrix<T>, T>(dict[py::str(w_key)], w_key, 2);
    values.b = read_layers<fastgd::RowVector<T>, T>(dict[py::str(b_key)], b_key, 1);
    state.buffers.emplace_back(name, std::move(values));
  }
  return state;
}

template <typename T>
void define_for(py::module_& m, const char* suffix) {
  using fastgd::Optimizer;
  using Sizes = std::optional<std::vector<Index>>;
  const auto name = [suffix](const char* base) { return std::string(base) + suffix; };

  py::class_<Optimizer<T>>(m, name("Optimizer").c_str(),
                           "Base of the optimizer states the training loop updates with.")
      .def_property_readonly("steps", [](const Optimizer<T>& self) { return self.steps; },
                             "Updates applied so far.")
      .def_property_readonly(
          "sizes",
          [](const Optimizer<T>& self) -> py::object {
            if (self.sizes.empty()) return py::none();
            return py::cast(self.sizes);
          },
          "Layer sizes of the network this state serves, or None until known.")
      .def_property_readonly("buffer_names", &Optimizer<T>::buffer_names,
                             "Names of the buffers this optimizer may keep.")
      .def("get_state", &state_to_dict<T>,
           "Copies of the state: {'steps': int, '<buffer>_w': [array like W per layer],\n"
           "'<buffer>_b': [array like b per layer], ...} for every buffer allocated so far.")
      .def("set_state",
           [](Optimizer<T>& self, py::handle state) { self.set_state(state_from_dict<T>(self, state)); },
           py::arg("state"),
           "Restore a state from get_state(). Buffers absent from it are dropped; shapes are checked\n"
           "against `sizes` (or each other) before anything changes, and a mismatch raises\n"
           "ValueError naming the buffer.");

  using fastgd::SGD;
  py::class_<SGD<T>, Optimizer<T>>(m, name("SGD").c_str(),
                                   "State of stochastic gradient descent for one network.")
      .def(py::init([](double lr, double momentum, bool nesterov, double weight_decay, const Sizes& sizes) {
             return make_state<SGD<T>>(sgd_hyper(lr, momentum, nesterov, weight_decay), sizes);
           }),
           py::arg("lr"), py::arg("momentum") = 0.0, py::arg("nesterov") = false,
           py::arg("weight_decay") = 0.0, py::arg("sizes") = py::none())
      .def("set_hyperparameters",
           [](SGD<T>& self, double lr, double momentum, bool nesterov, double weight_decay) {
             self.hyper = sgd_hyper(lr, momentum, nesterov, weight_decay);
           },
           py::arg("lr"), py::arg("momentum"), py::arg("nesterov"), py::arg("weight_decay"))
      .def_property_readonly("lr", [](const SGD<T>& self) { return self.hyper.lr; })
      .def_property_readonly("momentum", [](const SGD<T>& self) { return self.hyper.momentum; })
      .def_property_readonly("nesterov", [](const SGD<T>& self) { return self.hyper.nesterov; })
      .def_property_readonly("weight_decay",
                             [](const SGD<T>& self) { return self.hyper.weight_decay; })
      .def_property_readonly(
          "velocity",
          [](const SGD<T>& self) {
            py::list out;
            for (std::size_t l = 0; l < self.velocity_w.size(); ++l) {
              out.append(py::make_tuple(fastgd::Matrix<T>(self.velocity_w[l]),
                                        fastgd::RowVector<T>(self.velocity_b[l])));
            }
            return out;
          },
          "Copies of the momentum buffers [(vW, vb), ...]; empty before the first momentum step.");

  using fastgd::Adam;
  py::class_<Adam<T>, Optimizer<T>>(m, name("Adam").c_str(),
                                    "State of Adam (or AdamW, with decoupled_weight_decay) for one network.")
      .def(py::init([](double lr, std::pair<double, double> betas, double eps, double weight_decay,
                       bool decoupled_weight_decay, const Sizes& sizes) {
             return make_state<Adam<T>>(adam_hyper(lr, betas, eps, weight_decay, decoupled_weight_decay),
                                       sizes);
           }),
           py::arg("lr") = 1e-3, py::arg("betas") = std::make_pair(0.9, 0.999), py::arg("eps") = 1e-8,
           py::arg("weight_decay") = 0.0, py::arg("decoupled_weight_decay") = false,
           py::arg("sizes") = py::none())
      .def("set_hyperparameters",
           [](Adam<T>& self, double lr, std::pair<double, double> betas, double eps, double weight_decay,
              bool decoupled_weight_decay) {
             self.hyper = adam_hyper(lr, betas, eps, weight_decay, decoupled_weight_decay);
           },
           py::arg("lr"), py::arg("betas"), py::arg("eps"), py::arg("weight_decay"),
           py::arg("decoupled_weight_decay") = false)
      .def_property_readonly("lr", [](const Adam<T>& self) { return self.hyper.lr; })
      .def_property_readonly("betas", [](const Adam<T>& self) {
        return py::make_tuple(self.hyper.beta1, self.hyper.beta2);
      })
      .def_property_readonly("eps", [](const Adam<T>& self) { return self.hyper.eps; })
      .def_property_readonly("weight_decay", [](const Adam<T>& self) { return self.hyper.weight_decay; })
      .def_property_readonly("decoupled_weight_decay",
                             [](const Adam<T>& self) { return self.hyper.decoupled_weight_decay; });

  using fastgd::RMSprop;
  py::class_<RMSprop<T>, Optimizer<T>>(m, name("RMSprop").c_str(),
                                       "State of RMSprop (not centered) for one network.")
      .def(py::init([](double lr, double alpha, double eps, double momentum, double weight_decay,
                       const Sizes& sizes) {
             return make_state<RMSprop<T>>(rmsprop_hyper(lr, alpha, eps, momentum, weight_decay), sizes);
           }),
           py::arg("lr") = 1e-2, py::arg("alpha") = 0.99, py::arg("eps") = 1e-8, py::arg("momentum") = 0.0,
           py::arg("weight_decay") = 0.0, py::arg("sizes") = py::none())
      .def("set_hyperparameters",
           [](RMSprop<T>& self, double lr, double alpha, double eps, double momentum, double weight_decay) {
             self.hyper = rmsprop_hyper(lr, alpha, eps, momentum, weight_decay);
           },
           py::arg("lr"), py::arg("alpha"), py::arg("eps"), py::arg("momentum"), py::arg("weight_decay"))
      .def_property_readonly("lr", [](const RMSprop<T>& self) { return self.hyper.lr; })
      .def_property_readonly("alpha", [](const RMSprop<T>& self) { return self.hyper.alpha; })
      .def_property_readonly("eps", [](const RMSprop<T>& self) { return self.hyper.eps; })
      .def_property_readonly("momentum", [](const RMSprop<T>& self) { return self.hyper.momentum; })
      .def_property_readonly("weight_decay", [](const RMSprop<T>& self) { return self.hyper.weight_decay; });

  using fastgd::SklearnSGD;
  py::class_<SklearnSGD<T>, Optimizer<T>>(m, name("SklearnSGD").c_str(),
                                          "State of scikit-learn's MLP SGD solver for one network.")
      .def(py::init([](double lr, double momentum, bool nesterov, const Sizes& sizes) {
             return make_state<SklearnSGD<T>>(sklearn_sgd_hyper(lr, momentum, nesterov), sizes);
           }),
           py::arg("lr"), py::arg("momentum") = 0.9, py::arg("nesterov") = true, py::arg("sizes") = py::none())
      .def("set_hyperparameters",
           [](SklearnSGD<T>& self, double lr, double momentum, bool nesterov) {
             self.hyper = sklearn_sgd_hyper(lr, momentum, nesterov);
           },
           py::arg("lr"), py::arg("momentum"), py::arg("nesterov"))
      .def_property_readonly("lr", [](const SklearnSGD<T>& self) { return self.hyper.lr; });

  using fastgd::SklearnAdam;
  py::class_<SklearnAdam<T>, Optimizer<T>>(m, name("SklearnAdam").c_str(),
                                           "State of scikit-learn's MLP Adam solver for one network.")
      .def(py::init([](double lr, double beta_1, double beta_2, double epsilon, const Sizes& sizes) {
             return make_state<SklearnAdam<T>>(sklearn_adam_hyper(lr, beta_1, beta_2, epsilon), sizes);
           }),
           py::arg("lr") = 1e-3, py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999,
           py::arg("epsilon") = 1e-8, py::arg("sizes") = py::none())
      .def("set_hyperparameters",
           [](SklearnAdam<T>& self, double lr, double beta_1, double beta_2, double epsilon) {
             self.hyper = sklearn_adam_hyper(lr, beta_1, beta_2, epsilon);
           },
           py::arg("lr"), py::arg("beta_1"), py::arg("beta_2"), py::arg("epsilon"))
      .def_property_readonly("lr", [](const SklearnAdam<T>& self) { return self.hyper.lr; });

  using fastgd::Adagrad;
  py::class_<Adagrad<T>, Optimizer<T>>(m, name("Adagrad").c_str(), "State of Adagrad for one network.")
      .def(py::init([](double lr, double eps, double weight_decay, const Sizes& sizes) {
             return make_state<Adagrad<T>>(adagrad_hyper(lr, eps, weight_decay), sizes);
           }),
           py::arg("lr") = 1e-2, py::arg("eps") = 1e-10, py::arg("weight_decay") = 0.0,
           py::arg("sizes") = py::none())
      .def("set_hyperparameters",
           [](Adagrad<T>& self, double lr, double eps, double weight_decay) {
             self.hyper = adagrad_hyper(lr, eps, weight_decay);
           },
           py::arg("lr"), py::arg("eps"), py::arg("weight_decay"))
      .def_property_readonly("lr", [](const Adagrad<T>& self) { return self.hyper.lr; })
      .def_property_readonly("eps", [](const Adagrad<T>& self) { return self.hyper.eps; })
      .def_property_readonly("weight_decay", [](const Adagrad<T>& self) { return self.hyper.weight_decay; });
}

}  // namespace

void define_optimizers(py::module_& m) {
  define_for<float>(m, "32");
  define_for<double>(m, "64");
}

}  // namespace fastgd_bindings
