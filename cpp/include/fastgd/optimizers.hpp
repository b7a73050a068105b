#pragma once
// Weight updates from the gradients in a Workspace. Each update follows the algorithm that
// PyTorch documents for the optimizer of the same name (torch.optim), in the same order of
// operations, so a run here and a run there trace the same trajectory.

#include <cassert>
#include <vector>

#include "fastgd/network.hpp"

namespace fastgd {

template <typename T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update of every layer from ws.dw and ws.db.
  virtual void step(Network<T>& net, const Workspace<T>& ws) = 0;
  // Whether the state held (if any) has the shapes of net's parameters.
  virtual bool fits(const Network<T>& net) const = 0;
};

struct SGDHyperparameters {
  double lr = 0.01;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;  // applied to weights, not biases (the textbook's L2 term)
};

// torch.optim.SGD with dampening 0:
//   g ← ∇θ + λθ
//   b ← g on the first step, μ b + g after
//   g ← g + μ b with Nesterov, else g ← b      (only when μ ≠ 0)
//   θ ← θ − γ g
template <typename T>
class SGD final : public Optimizer<T> {
 public:
  explicit SGD(const SGDHyperparameters& hyper) : hyper(hyper) {}

  void step(Network<T>& net, const Workspace<T>& ws) override {
    assert(fits(net) && ws.fits(net));
    const bool first_momentum_step = hyper.momentum != 0.0 && velocity_w.empty();
    if (first_momentum_step) {
      for (const auto& layer : net.layers) {
        velocity_w.emplace_back(layer.w.rows(), layer.w.cols());
        velocity_b.emplace_back(layer.b.cols());
      }
    }
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
      auto& layer = net.layers[l];
      if (hyper.momentum == 0.0) {
        update_plain(layer.w, ws.dw[l], T(hyper.weight_decay));
        update_plain(layer.b, ws.db[l], T(0));
      } else {
        update_momentum(layer.w, ws.dw[l], velocity_w[l], T(hyper.weight_decay),
                        first_momentum_step);
        update_momentum(layer.b, ws.db[l], velocity_b[l], T(0), first_momentum_step);
      }
    }
    ++steps;
  }

  bool fits(const Network<T>& net) const override {
    if (velocity_w.empty()) return true;
    if (velocity_w.size() != net.layers.size()) return false;
    for (std::size_t l = 0; l < velocity_w.size(); ++l) {
      if (velocity_w[l].rows() != net.layers[l].w.rows() ||
          velocity_w[l].cols() != net.layers[l].w.cols()) {
        return false;
      }
    }
    return true;
  }

  SGDHyperparameters hyper;
  long long steps = 0;
  std::vector<Matrix<T>> velocity_w;     // [l] (n_in_l, n_out_l), momentum buffers b
  std::vector<RowVector<T>> velocity_b;  // [l] (n_out_l)

 private:
  template <typename P, typename G>
  void update_plain(P& param, const G& grad, T decay) {
    const T lr = T(hyper.lr);
    // θ ← θ − γ (∇θ + λθ)
    if (decay == T(0)) {
      param.noalias() -= lr * grad;
    } else {
      param.array() -= lr * (grad.array() + decay * param.array());
    }
  }

  template <typename P, typename G, typename V>
  void update_momentum(P& param, const G& grad, V& velocity, T decay, bool first) {
    const T lr = T(hyper.lr), mu = T(hyper.momentum);
    // b ← g on the first step, μ b + g after, with g = ∇θ + λθ
    if (first) {
      velocity.array() = grad.array() + decay * param.array();
    } else {
      velocity.array() = mu * velocity.array() + (grad.array() + decay * param.array());
    }
    if (hyper.nesterov) {
      // θ ← θ − γ (g + μ b)
      param.array() -= lr * ((grad.array() + decay * param.array()) + mu * velocity.array());
    } else {
      // θ ← θ − γ b
      param.noalias() -= lr * velocity;
    }
  }
};

}  // namespace fastgd
