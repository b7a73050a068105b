#pragma once
// Eigen types shared by the core. Storage is row-major so that a C-contiguous NumPy array of
// shape (rows, cols) maps onto a Matrix without a copy: samples are rows, W is (n_in, n_out).

#include <Eigen/Core>

namespace fastgd {

using Index = Eigen::Index;

inline constexpr Index cache_line_bytes = 64;

template <typename T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using RowVector = Eigen::Matrix<T, 1, Eigen::Dynamic>;

template <typename T>
using MatrixRef = Eigen::Ref<Matrix<T>>;
template <typename T>
using ConstMatrixRef = Eigen::Ref<const Matrix<T>>;
template <typename T>
using RowVectorRef = Eigen::Ref<RowVector<T>>;
template <typename T>
using ConstRowVectorRef = Eigen::Ref<const RowVector<T>>;

}  // namespace fastgd
