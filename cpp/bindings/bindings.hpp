#pragma once
#include <pybind11/pybind11.h>

namespace fastgd_bindings {

void define_network(pybind11::module_& m);
void define_optimizers(pybind11::module_& m);

}  // namespace fastgd_bindings
