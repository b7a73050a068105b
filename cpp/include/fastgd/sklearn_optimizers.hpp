#pragma once
// The two stochastic solvers of scikit-learn's MLPClassifier and MLPRegressor
// (sklearn/neural_network/_stochastic_optimizers.py), for the estimators of fastgd.sklearn. They
// differ from torch.optim's SGD and Adam, which optimizers.hpp follows: the velocity holds the step
// itself (learning rate included), and Adam's ε is added to √v before the bias correction, which
// scales the learning rate instead. Both update weights and biases alike; scikit-learn's L2 term
// is part of the gradient they are given (train.hpp adds it). The learning rate may change between
// steps (invscaling, adaptive): the estimator sets it at the end of each epoch.

#include <cassert>
#include <cmath>
#include <vector>

#include "fastgd/optimizers.hpp"

namespace fastgd {

struct SklearnSGDHyperparameters {
  double lr = 0.1;
  double momentum = 0.9;
  bool nesterov = true;
};

// One step on n parameters, a layer's W or b flattened, and their velocity u (0 before the first):
//   u ← μ u − γ g
//   θ ← θ + μ u − γ g   with Nesterov's momentum,   θ ← θ + u   without
template <typename T>
void sklearn_sgd_update(T* param, const T* grad, T* velocity, Index n,
                        const SklearnSGDHyperparameters& hyper) {
  const T lr = T(hyper.lr), mu = T(hyper.momentum);
  for (Index i = 0; i < n; ++i) {
    velocity[i] = mu * velocity[i] - lr * grad[i];
    param[i] += hyper.nesterov ? mu * velocity[i] - lr * grad[i] : velocity[i];
  }
}

template <typename T>
class SklearnSGD final : public Optimizer<T> {
 public:
  explicit SklearnSGD(const SklearnSGDHyperparameters& hyper) : hyper(hyper) {}

  void step(Network<T>& net, const Workspace<T>& ws) override {
    assert(ws.fits(net));
    this->begin_step(net);
    if (velocity_w.empty()) this->allocate(net, velocity_w, velocity_b, T(0));
    ++this->steps;
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
      auto& layer = net.layers[l];
      for_parts(layer.w.size(), [&](Index at, Index count) {
        sklearn_sgd_update<T>(layer.w.data() + at, ws.dw[l].data() + at,
                              velocity_w[l].data() + at, count, hyper);
      });
      sklearn_sgd_update<T>(layer.b.data(), ws.db[l].data(), velocity_b[l].data(), layer.b.size(),
                            hyper);
    }
  }

  SklearnSGDHyperparameters hyper;
  std::vector<Matrix<T>> velocity_w;     // [l] (n_in_l, n_out_l): u
  std::vector<RowVector<T>> velocity_b;  // [l] (n_out_l)

 protected:
  std::vector<typename Optimizer<T>::Buffer> buffers() override {
    return {{"velocity", &velocity_w, &velocity_b}};
  }
};

struct SklearnAdamHyperparameters {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

// One step t (counted from 1) on n parameters, a layer's W or b flattened, with moments m and v
// (0 before the first):
//   m ← β1 m + (1 − β1) g
//   v ← β2 v + (1 − β2) g²
//   γ_t = γ √(1 − β2^t) / (1 − β1^t)
//   θ ← θ − γ_t m / (√v + ε)
template <typename T>
void sklearn_adam_update(T* param, const T* grad, T* m, T* v, Index n,
                         const SklearnAdamHyperparameters& hyper, long long t) {
  const T beta1 = T(hyper.beta1), one_minus_beta1 = T(1.0 - hyper.beta1);
  const T beta2 = T(hyper.beta2), one_minus_beta2 = T(1.0 - hyper.beta2);
  // In double, as scikit-learn computes it in Python floats, then rounded to T once.
  const T lr_t = T(hyper.lr * std::sqrt(1.0 - std::pow(hyper.beta2, double(t))) /
                   (1.0 - std::pow(hyper.beta1, double(t))));
  const T eps = T(hyper.eps);
  for (Index i = 0; i < n; ++i) {
    m[i] = beta1 * m[i] + one_minus_beta1 * grad[i];
    v[i] = beta2 * v[i] + one_minus_beta2 * (grad[i] * grad[i]);
    param[i] += -lr_t * m[i] / (std::sqrt(v[i]) + eps);
  }
}

template <typename T>
class SklearnAdam final : public Optimizer<T> {
 public:
  explicit SklearnAdam(const SklearnAdamHyperparameters& hyper) : hyper(hyper) {}

  void step(Network<T>& net, const Workspace<T>& ws) override {
    assert(ws.fits(net));
    this->begin_step(net);
    if (exp_avg_w.empty()) this->allocate(net, exp_avg_w, exp_avg_b, T(0));
    if (exp_avg_sq_w.empty()) this->allocate(net, exp_avg_sq_w, exp_avg_sq_b, T(0));
    const long long t = ++this->steps;
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
      auto& layer = net.layers[l];
      for_parts(layer.w.size(), [&](Index at, Index count) {
        sklearn_adam_update<T>(layer.w.data() + at, ws.dw[l].data() + at,
                               exp_avg_w[l].data() + at, exp_avg_sq_w[l].data() + at, count,
                               hyper, t);
      });
      sklearn_adam_update<T>(layer.b.data(), ws.db[l].data(), exp_avg_b[l].data(),
                             exp_avg_sq_b[l].data(), layer.b.size(), hyper, t);
    }
  }

  SklearnAdamHyperparameters hyper;
  std::vector<Matrix<T>> exp_avg_w, exp_avg_sq_w;     // [l] (n_in_l, n_out_l): m and v
  std::vector<RowVector<T>> exp_avg_b, exp_avg_sq_b;  // [l] (n_out_l)

 protected:
  std::vector<typename Optimizer<T>::Buffer> buffers() override {
    return {{"exp_avg", &exp_avg_w, &exp_avg_b}, {"exp_avg_sq", &exp_avg_sq_w, &exp_avg_sq_b}};
  }
};

}  // namespace fastgd
