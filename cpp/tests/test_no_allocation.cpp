// A training epoch after the first, and a predict after the first (on one thread or with its rows
// split over two), allocate nothing on the heap: with EIGEN_RUNTIME_NO_MALLOC
// and assertions on, any Eigen allocation while malloc is forbidden aborts this program, and so
// does any other operator new (a std::vector growing) through the replacement below. Every case
// runs on a dense input and on one that is 85 % zeros, which the first layer takes as sparse; and
// on each given as a CSR matrix, for an epoch in a new shuffled order and a predict (the sparse
// one's batches go to the sparse first layer, the dense one's are made dense), with sample
// weights and scikit-learn's L2 penalty.
#ifdef NDEBUG
#undef NDEBUG
#endif
#define EIGEN_RUNTIME_NO_MALLOC

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstdint>
#include <functional>
#include <new>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include <fastgd/train.hpp>

using namespace fastgd;

namespace {
bool heap_forbidden = false;
}

void* operator new(std::size_t size) {
  if (heap_forbidden) {
    std::fprintf(stderr, "operator new(%zu) during a step\n", size);
    std::abort();
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

void forbid_heap(bool forbidden) {
  Eigen::internal::set_is_malloc_allowed(!forbidden);
  heap_forbidden = forbidden;
}

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

// x's nonzeros as a scipy.sparse CSR matrix holds them.
struct Csr {
  std::vector<std::int64_t> indptr{0};
  std::vector<std::int32_t> indices;
  std::vector<float> data;
  Index cols;

  explicit Csr(const Matrix<float>& x) : cols(x.cols()) {
    for (Index i = 0; i < x.rows(); ++i) {
      for (Index j = 0; j < x.cols(); ++j) {
        if (x(i, j) != 0.0f) indices.push_back(std::int32_t(j)), data.push_back(x(i, j));
      }
      indptr.push_back(std::int64_t(indices.size()));
    }
  }
  // Its first `rows` rows.
  CsrMatrix<float> matrix(Index rows) const { return {indptr.data(), indices.data(), data.data(), rows, cols}; }
};

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
    for (const bool sparse : {false, true}) for (const auto& c : cases) {
      std::vector<Activation> activations(c.sizes.size() - 2, Activation::relu);
      activations.push_back(Activation::softmax);
      std::vector<double> dropout(activations.size(), c.dropout);
      dropout.back() = 0.0;
      Network<float> net(c.sizes, activations, Loss::cross_entropy, dropout);
      for (auto& layer : net.layers) layer.w.setRandom() *= 0.05f;
      const Index n = 3 * c.batch + 1;
      Matrix<float> x = Matrix<float>::Random(n, c.sizes.front());
      if (sparse) x = (x.array().abs() < 0.85f).select(0.0f, x);
      Matrix<float> y = Matrix<float>::Zero(n, c.sizes.back());
      for (Index i = 0; i < n; ++i) y(i, i % c.sizes.back()) = 1;
      const auto optimizer = c.make_optimizer();
      Workspace<float> ws;
      train_epoch<float>(net, *optimizer, ws, x, y, nullptr, c.batch);
      const bool took_sparse = ws.input_sparse;
      forbid_heap(true);
      train_epoch<float>(net, *optimizer, ws, x, y, nullptr, c.batch);
      train_epoch<float>(net, *optimizer, ws, x.topRows(c.batch / 2 + 1), y.topRows(c.batch / 2 + 1),
                         nullptr, c.batch);
      forbid_heap(false);
      InferenceWorkspace<float> inference;
      Matrix<float> out(n, c.sizes.back());
      predict<float>(out, inference, net, x);
      forbid_heap(true);
      predict<float>(out, inference, net, x);
      predict<float>(out.topRows(c.batch), inference, net, x.topRows(c.batch));
      forbid_heap(false);
      if (sparse && ws.sparse_capable && !took_sparse) {
        std::printf("FAIL: the 85 %% zeros input was not taken as sparse\n");
        return 1;
      }

      // The same rows as a CSR matrix: an epoch in a shuffled order, then one in another order
      // (a fit's second epoch), with sample weights and L2; then predict.
      const Csr csr(x);
      std::vector<double> weight(static_cast<std::size_t>(n));
      for (Index i = 0; i < n; ++i) weight[std::size_t(i)] = double(i % 4);
      std::vector<std::int64_t> first_order(static_cast<std::size_t>(n)), next_order(first_order.size());
      std::iota(first_order.begin(), first_order.end(), std::int64_t(0));
      std::mt19937_64 rng{static_cast<std::uint64_t>(n)};
      std::shuffle(first_order.begin(), first_order.end(), rng);
      next_order = first_order;
      std::shuffle(next_order.begin(), next_order.end(), rng);
      TrainOptions options;
      options.batch_size = c.batch;
      options.sample_weight = weight.data();
      options.l2 = 1e-4;
      Network<float> csr_net = net;
      const auto csr_optimizer = c.make_optimizer();
      Workspace<float> csr_ws;
      const ConstMatrixRef<float> y_ref(y);
      train_epoch<float>(csr_net, *csr_optimizer, csr_ws, csr.matrix(n), y_ref,
                                           first_order.data(), options);
      const bool csr_took_sparse = csr_ws.input_sparse;
      forbid_heap(true);
      train_epoch<float>(csr_net, *csr_optimizer, csr_ws, csr.matrix(n), y_ref,
                                           next_order.data(), options);
      train_epoch<float>(csr_net, *csr_optimizer, csr_ws, csr.matrix(n), y_ref, nullptr,
                                           options);
      forbid_heap(false);
      Workspace<float> csr_predict;
      predict<float>(out, csr_predict, net, csr.matrix(n));
      forbid_heap(true);
      predict<float>(out, csr_predict, net, csr.matrix(n));
      predict<float>(out.topRows(c.batch), csr_predict, net, csr.matrix(c.batch));
      forbid_heap(false);
      if (csr_took_sparse != took_sparse) {
        std::printf("FAIL: the CSR input was%s taken as sparse, its dense form was%s\n", csr_took_sparse ? "" : " not",
                    took_sparse ? "" : " not");
        return 1;
      }
      std::printf("ok: %d thread(s), %s input (dense and CSR), %lld-layer net, batch %lld, dropout %g, "
                  "%lld steps, predict on %d thread(s)\n",
                  threads, took_sparse ? "sparse" : "dense",
                  static_cast<long long>(c.sizes.size() - 1), static_cast<long long>(c.batch),
                  c.dropout, optimizer->steps, inference_threads(net, n, threads));
      ++passed;
    }
  }
  std::printf("%d passed, 0 failed\n", passed);
  return 0;
}
