#pragma once
// Costs, as the textbook defines them, each the mean over the batch of a per-sample loss:
//   mse            C = 1/m Σ_samples ½‖a − y‖²
//   cross_entropy  softmax output: C = −1/m Σ_samples Σ_j y_j log a_j
//                  sigmoid output: C = −1/m Σ_samples Σ_j [y_j log a_j + (1 − y_j) log(1 − a_j)]
// loss_sum returns the sum over the batch (callers divide by the sample count they want);
// output_delta writes dC/dz of the output layer for the mean over the m rows given. Both take
// optional per-row factors s_i: then loss_sum gives Σ_i s_i C_i and output_delta the gradient of
// that sum. With s_i = w_i / Σ_k w_k that is the mean weighted by sample weights w.
// Cross-entropy is computed from the pre-activation z, so log of 0 never appears.

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "fastgd/activations.hpp"

namespace fastgd {

enum class Loss { mse, cross_entropy };

inline Loss loss_from_name(const std::string& name) {
  if (name == "mse") return Loss::mse;
  if (name == "cross_entropy") return Loss::cross_entropy;
  throw std::invalid_argument("unknown loss '" + name + "'; expected mse or cross_entropy");
}

inline const char* loss_name(Loss loss) { return loss == Loss::mse ? "mse" : "cross_entropy"; }

inline void check_loss_output(Loss loss, Activation output) {
  if (loss == Loss::cross_entropy && output != Activation::softmax &&
      output != Activation::sigmoid) {
    throw std::invalid_argument(std::string("cross_entropy needs a softmax or sigmoid output "
                                            "layer, got '") +
                                activation_name(output) + "'");
  }
}

// z, a, y are (m, n_out); row_scale, when given, is (m)
template <typename T>
double loss_sum(Loss loss, Activation output, ConstMatrixRef<T> z, ConstMatrixRef<T> a,
                ConstMatrixRef<T> y, const T* row_scale = nullptr) {
  if (row_scale) {
    double total = 0.0;
    for (Index i = 0; i < z.rows(); ++i) {
      total += double(row_scale[i]) * loss_sum<T>(loss, output, z.row(i), a.row(i), y.row(i));
    }
    return total;
  }
  double total = 0.0;
  if (loss == Loss::mse) {
    for (Index i = 0; i < a.rows(); ++i) total += 0.5 * double((a.row(i) - y.row(i)).squaredNorm());
    return total;
  }
  if (output == Activation::softmax) {
    // log a_j = z_j − logsumexp(z), with logsumexp(z) = max z + log Σ_k e^{z_k − max z}
    for (Index i = 0; i < z.rows(); ++i) {
      const double shift = double(z.row(i).maxCoeff());
      double sum_exp = 0.0, y_dot_z = 0.0, y_sum = 0.0;
      for (Index j = 0; j < z.cols(); ++j) {
        sum_exp += std::exp(double(z(i, j)) - shift);
        y_dot_z += double(y(i, j)) * double(z(i, j));
        y_sum += double(y(i, j));
      }
      total += y_sum * (shift + std::log(sum_exp)) - y_dot_z;
    }
    return total;
  }
  // −[y log σ(z) + (1 − y) log(1 − σ(z))] = softplus(z) − y z,
  // with softplus(z) = log(1 + e^z) = max(z, 0) + log1p(e^{−|z|})
  for (Index i = 0; i < z.rows(); ++i) {
    for (Index j = 0; j < z.cols(); ++j) {
      const double zij = double(z(i, j));
      total += std::max(zij, 0.0) + std::log1p(std::exp(-std::abs(zij))) - double(y(i, j)) * zij;
    }
  }
  return total;
}

// dz, z, a, y are (m, n_out); m = dz.rows() is the batch the mean is taken over, unless
// row_scale (m) gives each row's factor instead of 1/m
template <typename T>
void output_delta(MatrixRef<T> dz, Loss loss, Activation output, ConstMatrixRef<T> z,
                  ConstMatrixRef<T> a, ConstMatrixRef<T> y, const T* row_scale = nullptr) {
  if (row_scale) {
    const bool through_jacobian = loss == Loss::mse;
    for (Index i = 0; i < dz.rows(); ++i) {
      if (loss == Loss::cross_entropy && output == Activation::softmax) {
        dz.row(i).noalias() = (a.row(i) * y.row(i).sum() - y.row(i)) * row_scale[i];
      } else {
        dz.row(i).noalias() = (a.row(i) - y.row(i)) * row_scale[i];
      }
    }
    if (through_jacobian) apply_jacobian<T>(output, dz, z, a, dz);
    return;
  }
  const T inv_m = T(1) / T(dz.rows());
  if (loss == Loss::mse) {
    // dC/da = (a − y)/m, then through the output activation's Jacobian
    dz.noalias() = (a - y) * inv_m;
    apply_jacobian<T>(output, dz, z, a, dz);
  } else if (output == Activation::softmax) {
    // d/dz_k [Σ_j y_j · logsumexp(z) − Σ_j y_j z_j] = a_k Σ_j y_j − y_k, which is a − y
    // for targets that sum to 1
    for (Index i = 0; i < dz.rows(); ++i) {
      dz.row(i).noalias() = (a.row(i) * y.row(i).sum() - y.row(i)) * inv_m;
    }
  } else {
    // d/dz [softplus(z) − y z] = σ(z) − y
    dz.noalias() = (a - y) * inv_m;
  }
}

}  // namespace fastgd
