#pragma once
// A dense layer: z = x W + b, with x (m, n_in), W (n_in, n_out), b (n_out), z (m, n_out).
// Backward functions overwrite their gradient outputs; nothing accumulates across calls.

#include "fastgd/types.hpp"

namespace fastgd {

// z is (m, n_out), x is (m, n_in), w is (n_in, n_out), b is (n_out)
template <typename T>
void dense_forward(MatrixRef<T> z, ConstMatrixRef<T> x, ConstMatrixRef<T> w,
                   ConstRowVectorRef<T> b) {
  z.noalias() = x * w;
  z.rowwise() += b;
}

// dw is (n_in, n_out), db is (n_out), dz is (m, n_out), x is (m, n_in)
template <typename T>
void dense_backward_params(MatrixRef<T> dw, RowVectorRef<T> db, ConstMatrixRef<T> dz,
                           ConstMatrixRef<T> x) {
  // dC/dW = xᵀ dC/dz
  dw.noalias() = x.transpose() * dz;
  // dC/db = Σ_samples dC/dz
  db.noalias() = dz.colwise().sum();
}

// dx is (m, n_in), dz is (m, n_out), w is (n_in, n_out)
template <typename T>
void dense_backward_input(MatrixRef<T> dx, ConstMatrixRef<T> dz, ConstMatrixRef<T> w) {
  // dC/dx = dC/dz Wᵀ
  dx.noalias() = dz * w.transpose();
}

}  // namespace fastgd
