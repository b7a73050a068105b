#include <pybind11/pybind11.h>
#include <pybind11/eigen.h>
#include <pybind11/stl.h>

#include <fastgd/optimizers.hpp>

#include "bindings.hpp"

namespace py = pybind11;

namespace fastgd_bindings {
namespace {

template <typename T>
void define_for(py::module_& m, const char* suffix) {
  using fastgd::Optimizer;
  using fastgd::SGD;
  py::class_<Optimizer<T>>(m, (std::string("Optimizer") + suffix).c_str(),
                           "Base of the optimizer states the training loop updates with.");
  py::class_<SGD<T>, Optimizer<T>>(m, (std::string("SGD") + suffix).c_str(),
                                   "State of stochastic gradient descent for one network.")
      .def(py::init([](double lr, double momentum, bool nesterov, double weight_decay) {
             return new SGD<T>(fastgd::SGDHyperparameters{lr, momentum, nesterov, weight_decay});
           }),
           py::arg("lr"), py::arg("momentum") = 0.0, py::arg("nesterov") = false,
           py::arg("weight_decay") = 0.0)
      .def("set_hyperparameters",
           [](SGD<T>& self, double lr, double momentum, bool nesterov, double weight_decay) {
             self.hyper = fastgd::SGDHyperparameters{lr, momentum, nesterov, weight_decay};
           },
           py::arg("lr"), py::arg("momentum"), py::arg("nesterov"), py::arg("weight_decay"))
      .def_property_readonly("lr", [](const SGD<T>& self) { return self.hyper.lr; })
      .def_property_readonly("momentum", [](const SGD<T>& self) { return self.hyper.momentum; })
      .def_property_readonly("nesterov", [](const SGD<T>& self) { return self.hyper.nesterov; })
      .def_property_readonly("weight_decay",
                             [](const SGD<T>& self) { return self.hyper.weight_decay; })
      .def_property_readonly("steps", [](const SGD<T>& self) { return self.steps; })
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
}

}  // namespace

void define_optimizers(py::module_& m) {
  define_for<float>(m, "32");
  define_for<double>(m, "64");
}

}  // namespace fastgd_bindings
