#pragma once
// The epoch loop: every mini-batch's forward, backward and update, without leaving C++.

#include <cassert>
#include <cmath>
#include <cstdint>

#include "fastgd/network.hpp"
#include "fastgd/optimizers.hpp"

namespace fastgd {

struct EpochResult {
  double loss_sum = 0.0;    // sum over the samples trained on of each one's loss before its update
  Index samples = 0;        // samples trained on
  Index failed_batch = -1;  // index of the batch whose loss was NaN or Inf (not applied), or -1
};

// Gathers the rows order[i] (or i, without order) of x and y into the workspace batch by batch
// and updates the network after each. x is (n, n_in), y is (n, n_out), order is (n).
template <typename T>
EpochResult train_epoch(Network<T>& net, Optimizer<T>& optimizer, Workspace<T>& ws,
                        ConstMatrixRef<T> x, ConstMatrixRef<T> y, const std::int64_t* order,
                        Index batch_size) {
  assert(batch_size > 0 && y.rows() == x.rows() && optimizer.fits(net));
  const Index n = x.rows();
  ws.reserve(net, std::min(batch_size, n));
  EpochResult result;
  for (Index start = 0, batch = 0; start < n; start += batch_size, ++batch) {
    const Index m = std::min(batch_size, n - start);
    for (Index i = 0; i < m; ++i) {
      const Index row = order ? Index(order[start + i]) : start + i;
      assert(row >= 0 && row < n);
      ws.x.row(i) = x.row(row);
      ws.y.row(i) = y.row(row);
    }
    const auto xb = ws.x.topRows(m);
    const auto yb = ws.y.topRows(m);
    forward<T>(ws, net, xb);
    const double loss = batch_loss_sum<T>(ws, net, yb);
    if (!std::isfinite(loss)) {
      result.failed_batch = batch;
      return result;
    }
    backward<T>(ws, net, xb, yb);
    optimizer.step(net, ws);
    result.loss_sum += loss;
    result.samples += m;
  }
  return result;
}

}  // namespace fastgd
