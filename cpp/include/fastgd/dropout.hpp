#pragma once
// Inverted dropout with counter-based masks: the mask of a layer's output in one training batch
// is a pure function of (seed, batch, layer, row, column), so the NumPy twin reproduces it bit
// for bit, no generator state needs saving, and masks cost no memory beyond the batch's own.

#include <cstdint>
#include <stdexcept>

#include "fastgd/types.hpp"

namespace fastgd {

// splitmix64's output function (Steele, Lea & Flood 2014): a bijection of the 64-bit integers
// whose outputs for consecutive inputs pass BigCrush.
inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

inline std::uint64_t dropout_key(std::uint64_t seed, std::uint64_t batch, std::uint64_t layer) {
  return splitmix64(splitmix64(splitmix64(seed) ^ batch) ^ layer);
}

// A unit is dropped when the top 53 bits of its hash, read as u ∈ [0, 1), fall below the rate.
inline std::uint64_t dropout_threshold(double rate) {
  return std::uint64_t(rate * 9007199254740992.0);  // rate · 2^53, truncated
}

inline void check_dropout_rate(double rate) {
  if (!(rate >= 0.0 && rate < 1.0)) throw std::invalid_argument("dropout must be in [0, 1)");
}

// mask (m, n): 0 for a dropped unit, 1 / (1 − rate) for a kept one, so that the expected value
// of a ⊙ mask is a and inference needs no rescaling.
template <typename T>
void dropout_mask(MatrixRef<T> mask, std::uint64_t seed, std::uint64_t batch,
                  std::uint64_t layer, double rate) {
  const std::uint64_t key = dropout_key(seed, batch, layer);
  const std::uint64_t threshold = dropout_threshold(rate);
  const T keep_scale = T(1.0 / (1.0 - rate));
  const Index n = mask.cols();
  for (Index i = 0; i < mask.rows(); ++i) {
    for (Index j = 0; j < n; ++j) {
      const std::uint64_t unit = std::uint64_t(i * n + j);
      mask(i, j) = (splitmix64(key ^ unit) >> 11) >= threshold ? keep_scale : T(0);
    }
  }
}

}  // namespace fastgd
