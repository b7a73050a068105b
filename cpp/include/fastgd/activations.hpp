#pragma once
// Activations as stateless structs: activate(a, z) computes a = f(z), and
// apply_jacobian(dz, z, a, da) computes dz = da · ∂a/∂z. dz may alias da (every
// implementation reads a coefficient of da before it writes the same coefficient of dz).
// All buffers are (batch, n) and row-major.

#include <cmath>
#include <stdexcept>
#include <string>

#include "fastgd/types.hpp"

namespace fastgd {

enum class Activation { identity, sigmoid, tanh, relu, leaky_relu, softmax };

inline constexpr double leaky_relu_slope = 0.01;

template <typename T>
struct Identity {
  static constexpr bool elementwise = true;
  static void activate(MatrixRef<T> a, ConstMatrixRef<T> z) { a = z; }
  static void apply_jacobian(MatrixRef<T> dz, ConstMatrixRef<T>, ConstMatrixRef<T>,
                             ConstMatrixRef<T> da) {
    if (dz.data() != da.data()) dz = da;
  }
};

template <typename T>
struct Sigmoid {
  static constexpr bool elementwise = true;
  // σ(z) = 1 / (1 + e^{-z}); e^{-z} overflows to +inf for very negative z, giving exactly 0.
  static void activate(MatrixRef<T> a, ConstMatrixRef<T> z) {
    a.array() = (T(1) + (-z.array()).exp()).inverse();
  }
  // σ'(z) = σ(z)(1 − σ(z))
  static void apply_jacobian(MatrixRef<T> dz, ConstMatrixRef<T>, ConstMatrixRef<T> a,
                             ConstMatrixRef<T> da) {
    dz.array() = da.array() * a.array() * (T(1) - a.array());
  }
};

template <typename T>
struct Tanh {
  static constexpr bool elementwise = true;
  static void activate(MatrixRef<T> a, ConstMatrixRef<T> z) { a.array() = z.array().tanh(); }
  // tanh'(z) = 1 − tanh²(z)
  static void apply_jacobian(MatrixRef<T> dz, ConstMatrixRef<T>, ConstMatrixRef<T> a,
                             ConstMatrixRef<T> da) {
    dz.array() = da.array() * (T(1) - a.array().square());
  }
};

template <typename T>
struct ReLU {
  static constexpr bool elementwise = true;
  static void activate(MatrixRef<T> a, ConstMatrixRef<T> z) { a.array() = z.array().max(T(0)); }
  // relu'(z) = 1 for z > 0, else 0 (the subgradient at 0 is taken as 0, as PyTorch does)
  static void apply_jacobian(MatrixRef<T> dz, ConstMatrixRef<T> z, ConstMatrixRef<T>,
                             ConstMatrixRef<T> da) {
    dz.array() = (z.array() > T(0)).select(da.array(), T(0));
  }
};

template <typename T>
struct LeakyReLU {
  static constexpr bool elementwise = true;
  static void activate(MatrixRef<T> a, ConstMatrixRef<T> z) {
    a.array() = (z.array() > T(0)).select(z.array(), T(leaky_relu_slope) * z.array());
  }
  static void apply_jacobian(MatrixRef<T> dz, ConstMatrixRef<T> z, ConstMatrixRef<T>,
                             ConstMatrixRef<T> da) {
    dz.array() = (z.array() > T(0)).select(da.array(), T(leaky_relu_slope) * da.array());
  }
};

template <typename T>
struct Softmax {
  static constexpr bool elementwise = false;
  // Row-wise softmax, shifted by the row maximum so that exp never overflows.
  static void activate(MatrixRef<T> a, ConstMatrixRef<T> z) {
    for (Index i = 0; i < z.rows(); ++i) {
      a.row(i).array() = (z.row(i).array() - z.row(i).maxCoeff()).exp();
      a.row(i) /= a.row(i).sum();
    }
  }
  // ∂a_j/∂z_k = a_j(δ_jk − a_k), so dz_k = a_k (da_k − Σ_j da_j a_j)
  static void apply_jacobian(MatrixRef<T> dz, ConstMatrixRef<T>, ConstMatrixRef<T> a,
                             ConstMatrixRef<T> da) {
    for (Index i = 0; i < a.rows(); ++i) {
      const T projection = da.row(i).dot(a.row(i));
      dz.row(i).array() = a.row(i).array() * (da.row(i).array() - projection);
    }
  }
};

// Calls f(Act{}) with the struct for `kind`, so that the loops inside f are compiled per
// activation and the choice costs one switch per layer per batch.
template <typename T, typename F>
decltype(auto) with_activation(Activation kind, F&& f) {
  switch (kind) {
    case Activation::identity: return f(Identity<T>{});
    case Activation::sigmoid: return f(Sigmoid<T>{});
    case Activation::tanh: return f(Tanh<T>{});
    case Activation::relu: return f(ReLU<T>{});
    case Activation::leaky_relu: return f(LeakyReLU<T>{});
    case Activation::softmax: return f(Softmax<T>{});
  }
  throw std::invalid_argument("unknown activation");
}

// Whether a block's rows follow each other in memory.
template <typename Block>
bool rows_adjoin(const Block& m) {
  return m.rows() <= 1 || m.outerStride() == m.cols();
}

// An elementwise activation sees blocks whose rows adjoin as one long row, so only the block's
// last entries, not every row's, miss the vector code.
template <typename T>
void activate(Activation kind, MatrixRef<T> a, ConstMatrixRef<T> z) {
  with_activation<T>(kind, [&](auto act) {
    using Act = decltype(act);
    if constexpr (Act::elementwise) {
      if (rows_adjoin(a) && rows_adjoin(z)) {
        Eigen::Map<Matrix<T>> a_row(a.data(), 1, a.size());
        const Eigen::Map<const Matrix<T>> z_row(z.data(), 1, z.size());
        return Act::activate(a_row, z_row);
      }
    }
    Act::activate(a, z);
  });
}

template <typename T>
void apply_jacobian(Activation kind, MatrixRef<T> dz, ConstMatrixRef<T> z, ConstMatrixRef<T> a,
                    ConstMatrixRef<T> da) {
  with_activation<T>(kind, [&](auto act) {
    using Act = decltype(act);
    if constexpr (Act::elementwise) {
      if (rows_adjoin(dz) && rows_adjoin(z) && rows_adjoin(a) && rows_adjoin(da)) {
        Eigen::Map<Matrix<T>> dz_row(dz.data(), 1, dz.size());
        const Eigen::Map<const Matrix<T>> z_row(z.data(), 1, z.size()),
            a_row(a.data(), 1, a.size()), da_row(da.data(), 1, da.size());
        return Act::apply_jacobian(dz_row, z_row, a_row, da_row);
      }
    }
    Act::apply_jacobian(dz, z, a, da);
  });
}

inline Activation activation_from_name(const std::string& name) {
  if (name == "identity") return Activation::identity;
  if (name == "sigmoid") return Activation::sigmoid;
  if (name == "tanh") return Activation::tanh;
  if (name == "relu") return Activation::relu;
  if (name == "leaky_relu") return Activation::leaky_relu;
  if (name == "softmax") return Activation::softmax;
  throw std::invalid_argument("unknown activation '" + name +
                              "'; expected identity, sigmoid, tanh, relu, leaky_relu or softmax");
}

inline const char* activation_name(Activation kind) {
  switch (kind) {
    case Activation::identity: return "identity";
    case Activation::sigmoid: return "sigmoid";
    case Activation::tanh: return "tanh";
    case Activation::relu: return "relu";
    case Activation::leaky_relu: return "leaky_relu";
    case Activation::softmax: return "softmax";
  }
  return "?";
}

}  // namespace fastgd
