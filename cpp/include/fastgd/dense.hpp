#pragma once
// A dense layer: z = x W + b, with x (m, n_in), W (n_in, n_out), b (n_out), z (m, n_out).
// The plain Eigen products (the oracle, allocating as Eigen does) overwrite their outputs; the
// engine's versions run through gemm_accumulate with packing buffers from a GemmScratch, the
// weight gradient as accumulate_xt_dz (its caller zeroes or scales the target).

#include "fastgd/gemm.hpp"
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

// z is (m, n_out), x is (m, n_in), w is (n_in, n_out), b is (n_out)
template <typename T>
void dense_forward(MatrixRef<T> z, ConstMatrixRef<T> x, ConstMatrixRef<T> w,
                   ConstRowVectorRef<T> b, GemmScratch<T>& scratch) {
  z.rowwise() = b;
  gemm_accumulate<Eigen::RowMajor, Eigen::RowMajor, T>(z.data(), z.outerStride(), z.rows(),
                                                       z.cols(), x.cols(), x.data(),
                                                       x.outerStride(), w.data(),
                                                       w.outerStride(), T(1), scratch);
}

// target += α xᵀ dz: target is (n_in, n_out), x is (m, n_in), dz is (m, n_out)
template <typename T>
void accumulate_xt_dz(MatrixRef<T> target, T alpha, ConstMatrixRef<T> x, ConstMatrixRef<T> dz,
                      GemmScratch<T>& scratch) {
  // the row-major x read column-major is xᵀ
  gemm_accumulate<Eigen::ColMajor, Eigen::RowMajor, T>(
      target.data(), target.outerStride(), target.rows(), target.cols(), dz.rows(), x.data(),
      x.outerStride(), dz.data(), dz.outerStride(), alpha, scratch);
}

// dx is (m, n_in), dz is (m, n_out), w is (n_in, n_out)
template <typename T>
void dense_backward_input(MatrixRef<T> dx, ConstMatrixRef<T> dz, ConstMatrixRef<T> w,
                          GemmScratch<T>& scratch) {
  // dC/dx = dC/dz Wᵀ; the row-major W read column-major is Wᵀ
  dx.setZero();
  gemm_accumulate<Eigen::RowMajor, Eigen::ColMajor, T>(dx.data(), dx.outerStride(), dx.rows(),
                                                       dx.cols(), dz.cols(), dz.data(),
                                                       dz.outerStride(), w.data(),
                                                       w.outerStride(), T(1), scratch);
}

}  // namespace fastgd
