#pragma once
// Weight updates from the gradients in a Workspace. Each update follows the algorithm that
// PyTorch documents for the optimizer of the same name (torch.optim), in the same order of
// operations, so a run here and a run there trace the same trajectory. The gradient g is the
// mean over the batch (ws.dw, ws.db). Weight decay λ applies to weights only, never to biases:
// a deliberate house convention (in torch terms, biases sit in a param group with
// weight_decay=0).
//
// Every optimizer counts its steps and allocates its buffers (momenta, moment estimates) on the
// first step that needs them, shaped like each layer's W and b; later steps allocate nothing.
// get_state() and set_state() copy the step count and the allocated buffers out and in, for
// checkpoints. Buffer names follow torch.optim's state, except that fastgd calls a momentum
// buffer a velocity:
//   SGD      velocity (torch: momentum_buffer; only with momentum)
//   Adam     exp_avg, exp_avg_sq
//   RMSprop  square_avg, velocity (torch: momentum_buffer; only with momentum)
//   Adagrad  sum

#include <algorithm>
#include <cassert>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fastgd/network.hpp"

namespace fastgd {

// Calls update(offset, count) over [0, n) split into contiguous parts, one per allowed thread,
// when n is large enough to be worth a thread. Parts start at multiples of 64 entries, so
// every entry meets the same vector or scalar code as without a split: the same bits.
template <typename Update>
void for_parts(Index n, Update&& update) {
  constexpr Index min_per_thread = Index(1) << 16;
  const int threads =
      int(std::max<Index>(1, std::min<Index>(threads_allowed(), n / min_per_thread)));
  if (threads == 1) return update(Index(0), n);
  const Index part = ((n + threads - 1) / threads + 63) / 64 * 64;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int t = 0; t < threads; ++t) {
    const Index begin = Index(t) * part;
    if (begin < n) update(begin, std::min(part, n - begin));
  }
}

// One buffer shaped like a network's parameters: w[l] like W_l, b[l] like b_l.
template <typename T>
struct LayerBuffers {
  std::vector<Matrix<T>> w;     // [l] (n_in_l, n_out_l)
  std::vector<RowVector<T>> b;  // [l] (n_out_l)
};

// What a checkpoint keeps of an optimizer: its step count and copies of the buffers it has
// allocated, by name.
template <typename T>
struct OptimizerState {
  long long steps = 0;
  std::vector<std::pair<std::string, LayerBuffers<T>>> buffers;
};

template <typename T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // One update of every layer from ws.dw and ws.db.
  virtual void step(Network<T>& net, const Workspace<T>& ws) = 0;

  // Whether the update can ride on the backward pass instead (see backward_and_step in
  // train.hpp): then begin_fused_step once, and update_layer for each layer l once its dC/dz
  // (m, n_out_l) and input x (m, n_in_l) are known, replace step, and ws.dw, ws.db stay unused.
  virtual bool fuses_with_backward() const { return false; }
  virtual void begin_fused_step(Network<T>&) {}
  virtual void update_layer(Network<T>&, Workspace<T>&, std::size_t, ConstMatrixRef<T>,
                            ConstMatrixRef<T>) {
    assert(false && "update_layer needs fuses_with_backward()");
  }

  // Whether this state can train net: true until the state is tied to a network's layer sizes
  // (by its first step, by set_state with buffers, or by setting `sizes`), then only for those.
  virtual bool fits(const Network<T>& net) const {
    if (sizes.empty()) return true;
    if (sizes.size() != net.layers.size() + 1 || sizes[0] != net.n_in()) return false;
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
      if (sizes[l + 1] != net.layers[l].w.cols()) return false;
    }
    return true;
  }

  // Names of the buffers this optimizer may keep, allocated or not.
  std::vector<std::string> buffer_names() const {
    std::vector<std::string> names;
    for (const auto& buffer : mutable_self().buffers()) names.emplace_back(buffer.name);
    return names;
  }

  // Copies of the step count and of every allocated buffer.
  OptimizerState<T> get_state() const {
    OptimizerState<T> state;
    state.steps = steps;
    for (const auto& buffer : mutable_self().buffers()) {
      if (buffer.w->empty()) continue;
      state.buffers.push_back({buffer.name, LayerBuffers<T>{*buffer.w, *buffer.b}});
    }
    return state;
  }

  // Restores a state taken by get_state: buffers absent from it are dropped (a later step
  // allocates them afresh, as on a first step). It is checked whole before anything changes,
  // against `sizes` when known, else against the layer sizes the buffers themselves imply;
  // a mismatch throws std::invalid_argument naming the buffer. (Checked here rather than only
  // asserted: a checkpoint is input, like the arguments of the bindings.)
  void set_state(const OptimizerState<T>& state) {
    if (state.steps < 0) {
      throw std::invalid_argument("steps must be non-negative, got " + std::to_string(state.steps));
    }
    auto known = buffers();
    std::vector<const LayerBuffers<T>*> given(known.size(), nullptr);
    for (const auto& [name, values] : state.buffers) {
      std::size_t k = 0;
      while (k < known.size() && name != known[k].name) ++k;
      if (k == known.size()) {
        std::string expected;
        for (const auto& buffer : known) expected += (expected.empty() ? "" : ", ") + std::string(buffer.name);
        throw std::invalid_argument("unknown buffer '" + name + "'; this optimizer keeps " +
                                    (expected.empty() ? std::string("none") : expected));
      }
      if (given[k]) throw std::invalid_argument("buffer '" + name + "' given twice");
      given[k] = &values;
    }
    std::vector<Index> want = sizes;
    for (std::size_t k = 0; k < known.size() && want.empty(); ++k) {
      if (given[k] && !given[k]->w.empty()) {
        want.push_back(given[k]->w[0].rows());
        for (const auto& w : given[k]->w) want.push_back(w.cols());
      }
    }
    for (std::size_t k = 0; k < known.size(); ++k) {
      // Empty lists stand for a buffer not allocated yet, like an absent one.
      const bool allocated = given[k] && !(given[k]->w.empty() && given[k]->b.empty());
      if (allocated) check_layout(known[k].name, *given[k], want);
    }
    for (std::size_t k = 0; k < known.size(); ++k) {
      *known[k].w = given[k] ? given[k]->w : std::vector<Matrix<T>>();
      *known[k].b = given[k] ? given[k]->b : std::vector<RowVector<T>>();
    }
    steps = state.steps;
    sizes = want;
  }

  long long steps = 0;       // updates applied
  std::vector<Index> sizes;  // [n_in, n_1, ..., n_out] of the network served; empty until known

 protected:
  struct Buffer {
    const char* name;
    std::vector<Matrix<T>>* w;
    std::vector<RowVector<T>>* b;
  };

  // Every buffer this optimizer may keep, with its name.
  virtual std::vector<Buffer> buffers() = 0;

  // Ties the state to net's layer sizes on its first step.
  void begin_step(const Network<T>& net) {
    assert(fits(net));
    if (sizes.empty()) sizes = net.sizes();
  }

  // w[l], b[l] shaped like layer l's W and b, every entry `value`.
  static void allocate(const Network<T>& net, std::vector<Matrix<T>>& w,
                       std::vector<RowVector<T>>& b, T value) {
    w.clear();
    b.clear();
    for (const auto& layer : net.layers) {
      w.push_back(Matrix<T>::Constant(layer.w.rows(), layer.w.cols(), value));
      b.push_back(RowVector<T>::Constant(layer.b.cols(), value));
    }
  }

 private:
  // buffers() hands out pointers for writing; the const members above only read through them.
  Optimizer& mutable_self() const { return const_cast<Optimizer&>(*this); }

  static std::string shape_text(Index rows, Index cols) {
    return "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")";
  }

  static void check_layout(const std::string& name, const LayerBuffers<T>& values,
                           const std::vector<Index>& sizes) {
    const std::size_t layers = sizes.empty() ? 0 : sizes.size() - 1;
    if (values.w.size() != layers || values.b.size() != layers) {
      throw std::invalid_argument(name + "_w and " + name + "_b hold " +
                                  std::to_string(values.w.size()) + " and " +
                                  std::to_string(values.b.size()) + " arrays, expected one per layer (" +
                                  std::to_string(layers) + ")");
    }
    for (std::size_t l = 0; l < layers; ++l) {
      const auto& w = values.w[l];
      if (w.rows() != sizes[l] || w.cols() != sizes[l + 1]) {
        throw std::invalid_argument(name + "_w[" + std::to_string(l) + "] has shape " +
                                    shape_text(w.rows(), w.cols()) + ", expected " +
                                    shape_text(sizes[l], sizes[l + 1]));
      }
      if (values.b[l].cols() != sizes[l + 1]) {
        throw std::invalid_argument(name + "_b[" + std::to_string(l) + "] has shape (" +
                                    std::to_string(values.b[l].cols()) + ",), expected (" +
                                    std::to_string(sizes[l + 1]) + ",)");
      }
    }
  }
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
    assert(ws.fits(net));
    this->begin_step(net);
    const bool first_momentum_step = hyper.momentum != 0.0 && velocity_w.empty();
    if (first_momentum_step) this->allocate(net, velocity_w, velocity_b, T(0));
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
    ++this->steps;
  }

  // The gradient xᵀ dz goes straight into θ (or into the velocity) through the product that
  // computes it; Nesterov needs g and b apart, so it keeps the separate step.
  bool fuses_with_backward() const override { return !hyper.nesterov; }

  void begin_fused_step(Network<T>& net) override {
    this->begin_step(net);
    if (hyper.momentum != 0.0 && velocity_w.empty()) this->allocate(net, velocity_w, velocity_b, T(0));
    ++this->steps;
  }

  // x is (m, n_in_l), dz is (m, n_out_l): ∇W = xᵀ dz and ∇b = Σ_rows dz, as in backward.
  void update_layer(Network<T>& net, Workspace<T>& ws, std::size_t l, ConstMatrixRef<T> x,
                    ConstMatrixRef<T> dz) override {
    auto& layer = net.layers[l];
    MatrixRef<T> w = layer_weights<T>(ws, net, l);
    const T lr = T(hyper.lr), mu = T(hyper.momentum), decay = T(hyper.weight_decay);
    auto accumulate_gradient = [&](MatrixRef<T> target, T alpha) {
      accumulate_weight_gradient<T>(target, alpha, ws, l, x, dz);
    };
    if (hyper.momentum == 0.0) {
      // θ ← θ − γ (∇θ + λθ) = (1 − γλ) θ − γ ∇θ
      if (decay != T(0)) w *= T(1) - lr * decay;
      accumulate_gradient(w, -lr);
      layer.b.noalias() -= lr * dz.colwise().sum();
      return;
    }
    auto& velocity = velocity_w[l];
    // b ← μ b + g with g = ∇θ + λθ (b starts at 0, so the first step gives b = g); θ ← θ − γ b
    if (decay != T(0)) {
      velocity = mu * velocity + decay * w;
    } else {
      velocity *= mu;
    }
    accumulate_gradient(velocity, T(1));
    w.noalias() -= lr * velocity;
    velocity_b[l] = mu * velocity_b[l] + dz.colwise().sum();
    layer.b.noalias() -= lr * velocity_b[l];
  }

  SGDHyperparameters hyper;
  std::vector<Matrix<T>> velocity_w;     // [l] (n_in_l, n_out_l), momentum buffers b
  std::vector<RowVector<T>> velocity_b;  // [l] (n_out_l)

 protected:
  std::vector<typename Optimizer<T>::Buffer> buffers() override {
    return {{"velocity", &velocity_w, &velocity_b}};
  }

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

struct AdamHyperparameters {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;            // on weights, not biases
  bool decoupled_weight_decay = false;  // true: AdamW's decay of θ itself, not an L2 term in g
};

// One Adam (or AdamW) step on n parameters, a layer's W or b flattened, updating param,
// exp_avg (m) and exp_avg_sq (v) in place. t is the step number after the increment, λ the
// weight decay for these parameters. torch.optim.Adam / torch.optim.AdamW
// (https://pytorch.org/docs/stable/generated/torch.optim.Adam.html, .../torch.optim.AdamW.html):
//   g ← ∇θ + λθ                 (Adam)     or    θ ← θ − γλθ    (AdamW)
//   m ← β1 m + (1 − β1) g
//   v ← β2 v + (1 − β2) g²
//   θ ← θ − γ m̂ / (√v̂ + ε),  m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)
// with the last line in torch's grouping: θ ← θ − (γ / (1 − β1^t)) m / (√v / √(1 − β2^t) + ε).
template <typename T>
void adam_update(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, Index n,
                 const AdamHyperparameters& hyper, double decay, long long t) {
  // Scalars in double, as torch computes them in Python floats, then rounded to T once.
  const T beta1 = T(hyper.beta1), one_minus_beta1 = T(1.0 - hyper.beta1);
  const T beta2 = T(hyper.beta2), one_minus_beta2 = T(1.0 - hyper.beta2);
  const T lambda = T(decay);
  const T shrink = T(1.0 - hyper.lr * decay);                                     // 1 − γλ
  const T step_size = T(hyper.lr / (1.0 - std::pow(hyper.beta1, double(t))));    // γ / (1 − β1^t)
  const T correction2_sqrt = T(std::sqrt(1.0 - std::pow(hyper.beta2, double(t))));  // √(1 − β2^t)
  const T eps = T(hyper.eps);
  const bool decoupled = hyper.decoupled_weight_decay;
  for (Index i = 0; i < n; ++i) {
    T g = grad[i];
    if (decay != 0.0) {
      if (decoupled) {
        param[i] *= shrink;  // AdamW: θ ← θ − γλθ = θ (1 − γλ)
      } else {
        g += lambda * param[i];  // Adam: g ← g + λθ
      }
    }
    exp_avg[i] = beta1 * exp_avg[i] + one_minus_beta1 * g;           // m ← β1 m + (1 − β1) g
    exp_avg_sq[i] = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g;  // v ← β2 v + (1 − β2) g²
    const T denom = std::sqrt(exp_avg_sq[i]) / correction2_sqrt + eps;  // √v̂ + ε
    param[i] -= step_size * exp_avg[i] / denom;                         // θ ← θ − γ m̂ / (√v̂ + ε)
  }
}

// torch.optim.Adam, or torch.optim.AdamW with decoupled_weight_decay. Both moments start at 0.
template <typename T>
class Adam final : public Optimizer<T> {
 public:
  explicit Adam(const AdamHyperparameters& hyper) : hyper(hyper) {}

  void step(Network<T>& net, const Workspace<T>& ws) override {
    assert(ws.fits(net));
    this->begin_step(net);
    if (exp_avg_w.empty()) this->allocate(net, exp_avg_w, exp_avg_b, T(0));        // m₀ ← 0
    if (exp_avg_sq_w.empty()) this->allocate(net, exp_avg_sq_w, exp_avg_sq_b, T(0));  // v₀ ← 0
    const long long t = ++this->steps;  // t ← t + 1 before the update, as torch counts
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
      auto& layer = net.layers[l];
      for_parts(layer.w.size(), [&](Index at, Index count) {
        adam_update<T>(layer.w.data() + at, ws.dw[l].data() + at, exp_avg_w[l].data() + at,
                       exp_avg_sq_w[l].data() + at, count, hyper, hyper.weight_decay, t);
      });
      adam_update<T>(layer.b.data(), ws.db[l].data(), exp_avg_b[l].data(), exp_avg_sq_b[l].data(),
                     layer.b.size(), hyper, 0.0, t);
    }
  }

  AdamHyperparameters hyper;
  std::vector<Matrix<T>> exp_avg_w, exp_avg_sq_w;     // [l] (n_in_l, n_out_l): m and v
  std::vector<RowVector<T>> exp_avg_b, exp_avg_sq_b;  // [l] (n_out_l)

 protected:
  std::vector<typename Optimizer<T>::Buffer> buffers() override {
    return {{"exp_avg", &exp_avg_w, &exp_avg_b}, {"exp_avg_sq", &exp_avg_sq_w, &exp_avg_sq_b}};
  }
};

struct RMSpropHyperparameters {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double momentum = 0.0;
  double weight_decay = 0.0;  // on weights, not biases
};

// One RMSprop step (centered=False) on n parameters, a layer's W or b flattened, updating
// param, square_avg (v) and, when μ > 0, velocity (b) in place. λ is the weight decay for these
// parameters. torch.optim.RMSprop
// (https://pytorch.org/docs/stable/generated/torch.optim.RMSprop.html):
//   g ← ∇θ + λθ
//   v ← α v + (1 − α) g²
//   b ← μ b + g / (√v + ε),  θ ← θ − γ b       when μ > 0
//   θ ← θ − γ g / (√v + ε)                     otherwise
template <typename T>
void rmsprop_update(T* param, const T* grad, T* square_avg, T* velocity, Index n,
                    const RMSpropHyperparameters& hyper, double decay) {
  const T lr = T(hyper.lr), alpha = T(hyper.alpha), one_minus_alpha = T(1.0 - hyper.alpha);
  const T mu = T(hyper.momentum), eps = T(hyper.eps), lambda = T(decay);
  const bool with_momentum = hyper.momentum > 0.0;
  for (Index i = 0; i < n; ++i) {
    T g = grad[i];
    if (decay != 0.0) g += lambda * param[i];                             // g ← g + λθ
    square_avg[i] = square_avg[i] * alpha + one_minus_alpha * g * g;     // v ← α v + (1 − α) g²
    const T avg = std::sqrt(square_avg[i]) + eps;                        // √v + ε
    if (with_momentum) {
      velocity[i] = velocity[i] * mu + g / avg;  // b ← μ b + g / (√v + ε)
      param[i] -= lr * velocity[i];              // θ ← θ − γ b
    } else {
      param[i] -= lr * g / avg;  // θ ← θ − γ g / (√v + ε)
    }
  }
}

// torch.optim.RMSprop with centered=False. v starts at 0, and b at 0 on the first step with
// momentum.
template <typename T>
class RMSprop final : public Optimizer<T> {
 public:
  explicit RMSprop(const RMSpropHyperparameters& hyper) : hyper(hyper) {}

  void step(Network<T>& net, const Workspace<T>& ws) override {
    assert(ws.fits(net));
    this->begin_step(net);
    if (square_avg_w.empty()) this->allocate(net, square_avg_w, square_avg_b, T(0));  // v₀ ← 0
    const bool with_momentum = hyper.momentum > 0.0;
    if (with_momentum && velocity_w.empty()) this->allocate(net, velocity_w, velocity_b, T(0));  // b₀ ← 0
    ++this->steps;
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
      auto& layer = net.layers[l];
      for_parts(layer.w.size(), [&](Index at, Index count) {
        rmsprop_update<T>(layer.w.data() + at, ws.dw[l].data() + at, square_avg_w[l].data() + at,
                          with_momentum ? velocity_w[l].data() + at : nullptr, count, hyper,
                          hyper.weight_decay);
      });
      rmsprop_update<T>(layer.b.data(), ws.db[l].data(), square_avg_b[l].data(),
                        with_momentum ? velocity_b[l].data() : nullptr, layer.b.size(), hyper, 0.0);
    }
  }

  RMSpropHyperparameters hyper;
  std::vector<Matrix<T>> square_avg_w, velocity_w;     // [l] (n_in_l, n_out_l): v and b
  std::vector<RowVector<T>> square_avg_b, velocity_b;  // [l] (n_out_l)

 protected:
  std::vector<typename Optimizer<T>::Buffer> buffers() override {
    return {{"square_avg", &square_avg_w, &square_avg_b}, {"velocity", &velocity_w, &velocity_b}};
  }
};

struct AdagradHyperparameters {
  double lr = 1e-2;
  double eps = 1e-10;
  double weight_decay = 0.0;  // on weights, not biases
};

// One Adagrad step on n parameters, a layer's W or b flattened, updating param and sum (s) in
// place. λ is the weight decay for these parameters. torch.optim.Adagrad with lr_decay 0 and
// initial_accumulator_value 0 (https://pytorch.org/docs/stable/generated/torch.optim.Adagrad.html),
// so its γ̃ = γ / (1 + (t − 1) η) is γ and s starts at 0:
//   g ← ∇θ + λθ
//   s ← s + g²
//   θ ← θ − γ g / (√s + ε)
template <typename T>
void adagrad_update(T* param, const T* grad, T* sum, Index n, const AdagradHyperparameters& hyper,
                    double decay) {
  const T lr = T(hyper.lr), eps = T(hyper.eps), lambda = T(decay);
  for (Index i = 0; i < n; ++i) {
    T g = grad[i];
    if (decay != 0.0) g += lambda * param[i];  // g ← g + λθ
    sum[i] += g * g;                           // s ← s + g²
    const T std_dev = std::sqrt(sum[i]) + eps;  // √s + ε
    param[i] -= lr * g / std_dev;               // θ ← θ − γ g / (√s + ε)
  }
}

// torch.optim.Adagrad with lr_decay 0 and initial_accumulator_value 0.
template <typename T>
class Adagrad final : public Optimizer<T> {
 public:
  explicit Adagrad(const AdagradHyperparameters& hyper) : hyper(hyper) {}

  void step(Network<T>& net, const Workspace<T>& ws) override {
    assert(ws.fits(net));
    this->begin_step(net);
    if (sum_w.empty()) this->allocate(net, sum_w, sum_b, T(0));  // s₀ ← initial_accumulator_value = 0
    ++this->steps;
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
      auto& layer = net.layers[l];
      for_parts(layer.w.size(), [&](Index at, Index count) {
        adagrad_update<T>(layer.w.data() + at, ws.dw[l].data() + at, sum_w[l].data() + at, count,
                          hyper, hyper.weight_decay);
      });
      adagrad_update<T>(layer.b.data(), ws.db[l].data(), sum_b[l].data(), layer.b.size(), hyper, 0.0);
    }
  }

  AdagradHyperparameters hyper;
  std::vector<Matrix<T>> sum_w;     // [l] (n_in_l, n_out_l): s
  std::vector<RowVector<T>> sum_b;  // [l] (n_out_l)

 protected:
  std::vector<typename Optimizer<T>::Buffer> buffers() override {
    return {{"sum", &sum_w, &sum_b}};
  }
};

}  // namespace fastgd
