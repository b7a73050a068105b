#pragma once
// Rows of up to max_packets SIMD packets held in registers, for the kernels whose output rows are
// narrow (the sparse first layer, small products). When a width is not a multiple of the packet,
// a group's last packet ends at the group's last column and overlaps its predecessor.

#include <cassert>
#include <type_traits>

#include <Eigen/Core>

#include "fastgd/types.hpp"

namespace fastgd {
namespace packet_groups {

template <typename T>
using Packet = typename Eigen::internal::packet_traits<T>::type;
template <typename T>
inline constexpr int lanes = Eigen::internal::unpacket_traits<Packet<T>>::size;
inline constexpr int max_packets = 8;

// Calls group(begin, K, last) for the column groups of [begin, end) (end − begin ≥ lanes):
// K packets at begin + k·lanes for k < K − 1, and the last at `last` = min(begin + (K − 1)·lanes,
// end − lanes), so the group covers [begin, last + lanes).
template <typename T, typename Group>
void for_each_group(Index begin, Index end, Group&& group) {
  constexpr Index P = lanes<T>;
  assert(end - begin >= P);
  while (end - begin > max_packets * P) {
    // A full group, unless it would leave less than a packet for the last one.
    if (end - begin - max_packets * P >= P) {
      group(begin, std::integral_constant<int, max_packets>(), begin + (max_packets - 1) * P);
      begin += max_packets * P;
    } else {
      group(begin, std::integral_constant<int, max_packets - 1>(), begin + (max_packets - 2) * P);
      begin += (max_packets - 1) * P;
    }
  }
  const Index width = end - begin;
  const int packets = int((width + P - 1) / P);
  const Index last = end - P;
  switch (packets) {
    case 1: return group(begin, std::integral_constant<int, 1>(), last);
    case 2: return group(begin, std::integral_constant<int, 2>(), last);
    case 3: return group(begin, std::integral_constant<int, 3>(), last);
    case 4: return group(begin, std::integral_constant<int, 4>(), last);
    case 5: return group(begin, std::integral_constant<int, 5>(), last);
    case 6: return group(begin, std::integral_constant<int, 6>(), last);
    case 7: return group(begin, std::integral_constant<int, 7>(), last);
    default: return group(begin, std::integral_constant<int, 8>(), last);
  }
}

// Offset of packet k in a group of K whose last packet starts at last_offset.
template <typename T, int K>
constexpr Index packet_offset(int k, Index last_offset) {
  return k == K - 1 ? last_offset : Index(k) * lanes<T>;
}

// Independent sums per packet: a group of few packets alternates entries between two sets of
// sums, so consecutive multiply-adds do not wait on each other's latency.
template <int K>
inline constexpr int sum_sets = K <= 4 ? 2 : 1;

// sum[0] += Σ value(e) · row(e) over e in [first, end), each row read as a group of K packets
// whose last is at last_offset. The entries alternate between the sum_sets<K> sets of sums,
// which are then added into sum[0].
template <typename T, int K, typename ValueAt, typename RowAt>
inline void add_scaled_rows(Packet<T> (&sum)[sum_sets<K>][K], Index first, Index end,
                            ValueAt&& value, RowAt&& row, Index last_offset) {
  using namespace Eigen::internal;
  using P = Packet<T>;
  constexpr int S = sum_sets<K>;
  Index e = first;
  for (; e + S <= end; e += S) {
    for (int s = 0; s < S; ++s) {
      const P v = pset1<P>(value(e + s));
      const T* src = row(e + s);
      for (int k = 0; k < K; ++k) {
        sum[s][k] = pmadd(v, ploadu<P>(src + packet_offset<T, K>(k, last_offset)), sum[s][k]);
      }
    }
  }
  for (; e < end; ++e) {
    const P v = pset1<P>(value(e));
    const T* src = row(e);
    for (int k = 0; k < K; ++k) {
      sum[0][k] = pmadd(v, ploadu<P>(src + packet_offset<T, K>(k, last_offset)), sum[0][k]);
    }
  }
  for (int k = 0; k < K; ++k) {
    for (int s = 1; s < S; ++s) sum[0][k] = padd(sum[0][k], sum[s][k]);
  }
}

// t[group] += scale · s[k] packet by packet. The last packet may share lanes with packet K − 2:
// both are read before either is written, and the last is written first, so the shared lanes
// end as old + scale · s[K − 2], written once.
template <typename T, int K>
inline void add_to_group(T* t, const Packet<T>* s, const Packet<T>& scale, Index last_offset) {
  using namespace Eigen::internal;
  using P = Packet<T>;
  if constexpr (K == 1) {
    pstoreu(t, pmadd(scale, s[0], ploadu<P>(t)));
  } else {
    T* at_last = t + last_offset;
    T* at_previous = t + Index(K - 2) * lanes<T>;
    const P old_last = ploadu<P>(at_last), old_previous = ploadu<P>(at_previous);
    pstoreu(at_last, pmadd(scale, s[K - 1], old_last));
    pstoreu(at_previous, pmadd(scale, s[K - 2], old_previous));
    for (int k = 0; k < K - 2; ++k) {
      T* at = t + Index(k) * lanes<T>;
      pstoreu(at, pmadd(scale, s[k], ploadu<P>(at)));
    }
  }
}

}  // namespace packet_groups
}  // namespace fastgd
