// A training epoch after the first allocates nothing on the heap: with EIGEN_RUNTIME_NO_MALLOC
// and assertions on, any Eigen allocation while malloc is forbidden aborts this program.
#ifdef NDEBUG
#undef NDEBUG
#endif
#define EIGEN_RUNTIME_NO_MALLOC

#include <cstdio>
#include <functional>
#include <memory>
#include <vector>

#include <fastgd/train.hpp>

using namespace fastgd;

struct Case {
  std::vector<Index> sizes;
  Index batch;
  std::function<std::unique_ptr<Optimizer<float>>()> make_optimizer;
  double dropout = 0.0;  // on every hidden layer
};

template <typename O, typename H>
std::function<std::unique_ptr<Optimizer<float>>()> make(H hyper) {
  return [hyper] { return std::make_unique<O>(hyper); };
}

int main() {
  AdamHyperparameters adamw{1e-3, 0.9, 0.999, 1e-8, 1e-2, true};
  const std::vector<Case> cases = {
      {{784, 30, 10}, 10, make<SGD<float>>(SGDHyperparameters{3.0, 0.0, false, 0.0})},
      {{784, 128, 10}, 32, make<SGD<float>>(SGDHyperparameters{0.05, 0.9, false, 0.0})},
      {{100, 300, 200, 10}, 7, make<SGD<float>>(SGDHyperparameters{0.05, 0.9, true, 1e-4})},
      {{64, 1024, 10}, 256, make<SGD<float>>(SGDHyperparameters{0.01, 0.0, false, 1e-3})},
      {{50, 20, 10}, 1, make<SGD<float>>(SGDHyperparameters{0.1, 0.5, false, 0.0})},
      {{784, 128, 10}, 32, make<Adam<float>>(AdamHyperparameters{1e-3, 0.9, 0.999, 1e-8, 1e-4, false})},
      {{100, 300, 200, 10}, 7, make<Adam<float>>(adamw)},
      {{784, 30, 10}, 10, make<RMSprop<float>>(RMSpropHyperparameters{1e-2, 0.99, 1e-8, 0.0, 0.0})},
      {{50, 20, 10}, 1, make<RMSprop<float>>(RMSpropHyperparameters{1e-3, 0.9, 1e-8, 0.9, 1e-4})},
      {{64, 1024, 10}, 256, make<Adagrad<float>>(AdagradHyperparameters{1e-2, 1e-10, 1e-3})},
      {{784, 128, 10}, 32, make<Adam<float>>(AdamHyperparameters{1e-3, 0.9, 0.999, 1e-8, 0.0, false}), 0.5},
      {{100, 300, 200, 10}, 7, make<SGD<float>>(SGDHyperparameters{0.05, 0.9, false, 0.0}), 0.2},
  };
  int passed = 0;
  for (int threads : {1, 2}) {
    Eigen::setNbThreads(threads);
    for (const auto& c : cases) {
      std::vector<Activation> activations(c.sizes.size() - 2, Activation::relu);
      activations.push_back(Activation::softmax);
      std::vector<double> dropout(activations.size(), c.dropout);
      dropout.back() = 0.0;
      Network<float> net(c.sizes, activations, Loss::cross_entropy, dropout);
      for (auto& layer : net.layers) layer.w.setRandom() *= 0.05f;
      const Index n = 3 * c.batch + 1;
      const Matrix<float> x = Matrix<float>::Random(n, c.sizes.front());
      Matrix<float> y = Matrix<float>::Zero(n, c.sizes.back());
      for (Index i = 0; i < n; ++i) y(i, i % c.sizes.back()) = 1;
      const auto optimizer = c.make_optimizer();
      Workspace<float> ws;
      train_epoch<float>(net, *optimizer, ws, x, y, nullptr, c.batch);
      Eigen::internal::set_is_malloc_allowed(false);
      train_epoch<float>(net, *optimizer, ws, x, y, nullptr, c.batch);
      train_epoch<float>(net, *optimizer, ws, x.topRows(c.batch / 2 + 1), y.topRows(c.batch / 2 + 1),
                         nullptr, c.batch);
      Eigen::internal::set_is_malloc_allowed(true);
      std::printf("ok: %d thread(s), %lld-layer net, batch %lld, dropout %g, %lld steps\n", threads,
                  static_cast<long long>(c.sizes.size() - 1), static_cast<long long>(c.batch),
                  c.dropout, optimizer->steps);
      ++passed;
    }
  }
  std::printf("%d passed, 0 failed\n", passed);
  return 0;
}
