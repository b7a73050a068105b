// C++-only tests of the fastgd core: values against hand-written formulas, gradients against
// central finite differences in float64, and the optimizer and epoch loop against hand-rolled
// loops. Prints one line per failed check, then "N passed, M failed"; exits nonzero on failure.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastgd/activations.hpp"
#include "fastgd/dense.hpp"
#include "fastgd/dropout.hpp"
#include "fastgd/losses.hpp"
#include "fastgd/network.hpp"
#include "fastgd/optimizers.hpp"
#include "fastgd/sklearn_optimizers.hpp"
#include "fastgd/sparse.hpp"
#include "fastgd/train.hpp"
#include "fastgd/types.hpp"

namespace {

using namespace fastgd;
using Mat = Matrix<double>;
using Row = RowVector<double>;

int failed_checks_in_test = 0;

void record_failure(const char* file, int line, const char* expression, const std::string& detail) {
  ++failed_checks_in_test;
  std::printf("%s:%d: CHECK(%s) failed: %s\n", file, line, expression, detail.c_str());
}

// detail is evaluated only when the check fails.
#define CHECK(condition, detail)                                              \
  do {                                                                        \
    if (!(condition)) record_failure(__FILE__, __LINE__, #condition, detail); \
  } while (0)

#define CHECK_THROWS(exception_type, ...)                                                 \
  do {                                                                                    \
    bool threw_expected = false;                                                          \
    try {                                                                                 \
      __VA_ARGS__;                                                                        \
    } catch (const exception_type&) {                                                     \
      threw_expected = true;                                                              \
    } catch (...) {                                                                       \
    }                                                                                     \
    if (!threw_expected) {                                                                \
      record_failure(__FILE__, __LINE__, #__VA_ARGS__, "did not throw " #exception_type); \
    }                                                                                     \
  } while (0)

template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream out;
  out.precision(17);
  (out << ... << parts);
  return out.str();
}

bool near(double got, double want, double rtol, double atol) {
  return std::abs(got - want) <= atol + rtol * std::max(std::abs(got), std::abs(want));
}

// Infinite when any difference is NaN or Inf, which maxCoeff alone may skip.
template <typename A, typename B>
double max_abs_diff(const A& got, const B& want) {
  const auto diff = (got - want).cwiseAbs().eval();
  return diff.allFinite() ? diff.maxCoeff() : std::numeric_limits<double>::infinity();
}

Mat random_matrix(Index rows, Index cols, std::mt19937_64& rng, double lo = -1.0, double hi = 1.0) {
  std::uniform_real_distribution<double> uniform(lo, hi);
  Mat m(rows, cols);
  for (Index k = 0; k < m.size(); ++k) m(k) = uniform(rng);
  return m;
}

Mat one_hot_rows(Index rows, Index cols, std::mt19937_64& rng) {
  std::uniform_int_distribution<Index> pick(0, cols - 1);
  Mat y = Mat::Zero(rows, cols);
  for (Index i = 0; i < rows; ++i) y(i, pick(rng)) = 1.0;
  return y;
}

Mat targets_for(const Network<double>& net, Index rows, std::mt19937_64& rng) {
  if (net.loss == Loss::mse) return random_matrix(rows, net.n_out(), rng);
  if (net.layers.back().activation == Activation::softmax)
    return one_hot_rows(rows, net.n_out(), rng);
  return random_matrix(rows, net.n_out(), rng, 0.0, 1.0);
}

void randomize(Network<double>& net, std::mt19937_64& rng) {
  for (auto& layer : net.layers) {
    layer.w = random_matrix(layer.w.rows(), layer.w.cols(), rng);
    layer.b = random_matrix(1, layer.b.cols(), rng);
  }
}

Mat activated(Activation kind, const Mat& z) {
  Mat a(z.rows(), z.cols());
  activate<double>(kind, a, z);
  return a;
}

double mean_loss(const Network<double>& net, const Mat& x, const Mat& y) {
  Workspace<double> ws(net, x.rows());
  forward<double>(ws, net, x);
  return batch_loss_sum<double>(ws, net, y) / double(x.rows());
}

const Activation all_activations[] = {Activation::identity,   Activation::sigmoid,
                                      Activation::tanh,       Activation::relu,
                                      Activation::leaky_relu, Activation::softmax};

void test_activations() {
  Mat z(3, 4);
  z << -2.5, -0.3, 0.7, 3.1,  //
      1.2, -1.7, 0.05, -0.4,  //
      0.9, 2.2, -3.3, -0.02;
  for (Activation kind : all_activations) {
    const std::string name = activation_name(kind);
    const Mat a = activated(kind, z);
    Mat want(z.rows(), z.cols());
    for (Index i = 0; i < z.rows(); ++i) {
      double row_exp_sum = 0.0;
      for (Index j = 0; j < z.cols(); ++j) row_exp_sum += std::exp(z(i, j));
      for (Index j = 0; j < z.cols(); ++j) {
        const double v = z(i, j);
        switch (kind) {
          case Activation::identity: want(i, j) = v; break;
          case Activation::sigmoid: want(i, j) = 1.0 / (1.0 + std::exp(-v)); break;
          case Activation::tanh: want(i, j) = std::tanh(v); break;
          case Activation::relu: want(i, j) = v > 0 ? v : 0.0; break;
          case Activation::leaky_relu: want(i, j) = v > 0 ? v : 0.01 * v; break;
          case Activation::softmax: want(i, j) = std::exp(v) / row_exp_sum; break;
        }
      }
    }
    CHECK(max_abs_diff(a, want) < 1e-14, cat(name, " activate off by ", max_abs_diff(a, want)));

    std::mt19937_64 rng(11);
    const Mat da = random_matrix(z.rows(), z.cols(), rng);
    Mat dz(z.rows(), z.cols());
    apply_jacobian<double>(kind, dz, z, a, da);
    // dz_ik = Σ_j da_ij ∂a_ij/∂z_ik, which is d/dz_ik of Σ da ⊙ f(z)
    const double eps = 1e-6;
    Mat fd(z.rows(), z.cols());
    for (Index i = 0; i < z.rows(); ++i) {
      for (Index k = 0; k < z.cols(); ++k) {
        Mat plus = z, minus = z;
        plus(i, k) += eps;
        minus(i, k) -= eps;
        fd(i, k) = (activated(kind, plus).cwiseProduct(da).sum() -
                    activated(kind, minus).cwiseProduct(da).sum()) /
                   (2 * eps);
      }
    }
    CHECK(max_abs_diff(dz, fd) < 1e-8,
          cat(name, " apply_jacobian vs finite differences off by ", max_abs_diff(dz, fd)));

    Mat in_place = da;
    apply_jacobian<double>(kind, in_place, z, a, in_place);
    CHECK(max_abs_diff(in_place, dz) == 0.0,
          cat(name, " apply_jacobian with dz aliasing da off by ", max_abs_diff(in_place, dz)));
  }

  const Mat softmax_a = activated(Activation::softmax, z);
  for (Index i = 0; i < z.rows(); ++i) {
    CHECK(std::abs(softmax_a.row(i).sum() - 1.0) < 1e-15,
          cat("row ", i, " sums to ", softmax_a.row(i).sum()));
  }
  Mat large(2, 3);
  large << 1000, 1000, 1000,  //
      1000, 999, -1000;
  const Mat large_a = activated(Activation::softmax, large);
  CHECK(large_a.allFinite(), cat("softmax of large z is not finite:\n", large_a));
  CHECK(max_abs_diff(large_a.row(0), Row::Constant(3, 1.0 / 3.0)) < 1e-15, cat(large_a.row(0)));
  const double e = std::exp(-1.0);
  CHECK(near(large_a(1, 0), 1.0 / (1.0 + e), 1e-15, 0.0) &&
            near(large_a(1, 1), e / (1.0 + e), 1e-15, 0.0) && large_a(1, 2) < 1e-300,
        cat(large_a.row(1)));

  Mat saturating(1, 2);
  saturating << 1000, -1000;
  const Mat sigmoid_a = activated(Activation::sigmoid, saturating);
  CHECK(sigmoid_a(0, 0) == 1.0 && sigmoid_a(0, 1) >= 0.0 && sigmoid_a(0, 1) < 1e-300,
        cat(sigmoid_a));
}

double direct_loss_sum(Loss loss, Activation output, const Mat& a, const Mat& y) {
  if (loss == Loss::mse) return 0.5 * (a - y).squaredNorm();
  double total = 0.0;
  for (Index k = 0; k < a.size(); ++k) {
    total -= y(k) * std::log(a(k));
    if (output == Activation::sigmoid) total -= (1.0 - y(k)) * std::log(1.0 - a(k));
  }
  return total;
}

void test_losses() {
  struct Case {
    Loss loss;
    Activation output;
  };
  const Case cases[] = {{Loss::mse, Activation::identity},
                        {Loss::mse, Activation::sigmoid},
                        {Loss::mse, Activation::tanh},
                        {Loss::mse, Activation::softmax},
                        {Loss::cross_entropy, Activation::softmax},
                        {Loss::cross_entropy, Activation::sigmoid}};
  std::mt19937_64 rng(5);
  for (const Case& c : cases) {
    const std::string name = cat(loss_name(c.loss), "+", activation_name(c.output));
    const Index m = 4, n = 3;
    const Mat z = random_matrix(m, n, rng, -2.0, 2.0);
    Mat y = random_matrix(m, n, rng, 0.0, 1.0);
    if (c.output == Activation::softmax && c.loss == Loss::cross_entropy) {
      y.topRows(2) = one_hot_rows(2, n, rng);
      y.row(2) /= y.row(2).sum();
    }
    const Mat a = activated(c.output, z);
    const double got = loss_sum<double>(c.loss, c.output, z, a, y);
    const double want = direct_loss_sum(c.loss, c.output, a, y);
    CHECK(near(got, want, 1e-12, 0.0), cat(name, " loss_sum ", got, " want ", want));

    Mat dz(m, n);
    output_delta<double>(dz, c.loss, c.output, z, a, y);
    const double eps = 1e-6;
    Mat fd(m, n);
    for (Index k = 0; k < z.size(); ++k) {
      Mat plus = z, minus = z;
      plus(k) += eps;
      minus(k) -= eps;
      fd(k) = (loss_sum<double>(c.loss, c.output, plus, activated(c.output, plus), y) -
               loss_sum<double>(c.loss, c.output, minus, activated(c.output, minus), y)) /
              (2 * eps * double(m));
    }
    CHECK(max_abs_diff(dz, fd) < 1e-8, cat(name, " output_delta vs finite differences off by ",
                                           max_abs_diff(dz, fd), "\n", dz, "\n", fd));
  }

  // −log softmax(z)_1 = logsumexp(z) − z_1 = 1000 + log(1 + e^{−1000} + e^{−2000}) + 1000
  Mat z_softmax(1, 3), y_softmax(1, 3);
  z_softmax << 1000, -1000, 0;
  y_softmax << 0, 1, 0;
  const Mat a_softmax = activated(Activation::softmax, z_softmax);
  const double ce_softmax =
      loss_sum<double>(Loss::cross_entropy, Activation::softmax, z_softmax, a_softmax, y_softmax);
  CHECK(std::isfinite(ce_softmax) && near(ce_softmax, 2000.0, 1e-15, 0.0), cat(ce_softmax));

  // softplus(1000) − 0 + softplus(−1000) + 1000 = 2000
  Mat z_sigmoid(1, 2), y_sigmoid(1, 2);
  z_sigmoid << 1000, -1000;
  y_sigmoid << 0, 1;
  const Mat a_sigmoid = activated(Activation::sigmoid, z_sigmoid);
  const double ce_sigmoid =
      loss_sum<double>(Loss::cross_entropy, Activation::sigmoid, z_sigmoid, a_sigmoid, y_sigmoid);
  CHECK(std::isfinite(ce_sigmoid) && near(ce_sigmoid, 2000.0, 1e-15, 0.0), cat(ce_sigmoid));
  Mat dz_sigmoid(1, 2);
  output_delta<double>(dz_sigmoid, Loss::cross_entropy, Activation::sigmoid, z_sigmoid, a_sigmoid,
                       y_sigmoid);
  CHECK(dz_sigmoid.allFinite(), cat(dz_sigmoid));

  CHECK_THROWS(std::invalid_argument, check_loss_output(Loss::cross_entropy, Activation::relu));
  CHECK_THROWS(std::invalid_argument, check_loss_output(Loss::cross_entropy, Activation::identity));
  check_loss_output(Loss::cross_entropy, Activation::softmax);
  check_loss_output(Loss::cross_entropy, Activation::sigmoid);
  check_loss_output(Loss::mse, Activation::relu);
}

bool is_kinked(Activation kind) {
  return kind == Activation::relu || kind == Activation::leaky_relu;
}

// Smallest |z| at a relu or leaky_relu unit, where the loss is not differentiable.
double distance_to_kink(const Network<double>& net, const Mat& x) {
  Workspace<double> ws(net, x.rows());
  forward<double>(ws, net, x);
  double smallest = std::numeric_limits<double>::infinity();
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    if (is_kinked(net.layers[l].activation)) {
      smallest = std::min(smallest, ws.z[l].topRows(x.rows()).cwiseAbs().minCoeff());
    }
  }
  return smallest;
}

// Compares ws.dw and ws.db with central finite differences of loss() in every parameter of net;
// returns a description of the mismatches, empty when there are none.
template <typename LossFunction>
std::string compare_with_finite_differences(Network<double>& net, const Workspace<double>& ws,
                                            LossFunction loss) {
  const double eps = 1e-6;
  int checked = 0, mismatches = 0;
  std::string first_mismatch;
  auto compare = [&](double analytic, double& parameter, const char* name, std::size_t l, Index i,
                     Index j) {
    const double saved = parameter;
    parameter = saved + eps;
    const double plus = loss();
    parameter = saved - eps;
    const double minus = loss();
    parameter = saved;
    const double numeric = (plus - minus) / (2 * eps);
    ++checked;
    if (!near(analytic, numeric, 1e-6, 1e-9) && mismatches++ == 0) {
      first_mismatch = cat(name, "[", l, "](", i, ",", j, "): backward ", analytic,
                           ", finite differences ", numeric);
    }
  };
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    auto& layer = net.layers[l];
    for (Index i = 0; i < layer.w.rows(); ++i) {
      for (Index j = 0; j < layer.w.cols(); ++j) compare(ws.dw[l](i, j), layer.w(i, j), "dw", l, i, j);
    }
    for (Index j = 0; j < layer.b.cols(); ++j) compare(ws.db[l](j), layer.b(j), "db", l, 0, j);
  }
  if (mismatches == 0) return "";
  return cat(mismatches, " of ", checked, " gradients differ from finite differences, first ",
             first_mismatch);
}

void test_backward_matches_finite_differences() {
  using A = Activation;
  struct Case {
    std::vector<Index> sizes;
    std::vector<Activation> activations;
    Loss loss;
  };
  const std::vector<Case> cases = {
      {{4, 3}, {A::sigmoid}, Loss::cross_entropy},
      {{3, 2}, {A::identity}, Loss::mse},
      {{4, 5, 3}, {A::tanh, A::softmax}, Loss::cross_entropy},
      {{3, 6, 2}, {A::relu, A::sigmoid}, Loss::mse},
      {{3, 5, 4, 2}, {A::leaky_relu, A::sigmoid, A::identity}, Loss::mse},
      {{5, 6, 4, 3}, {A::relu, A::tanh, A::softmax}, Loss::cross_entropy},
      {{2, 4, 3, 3}, {A::identity, A::leaky_relu, A::sigmoid}, Loss::cross_entropy},
      {{3, 4, 4, 3}, {A::sigmoid, A::tanh, A::softmax}, Loss::mse},
  };
  const Index m = 6;
  std::mt19937_64 rng(2024);
  for (std::size_t c = 0; c < cases.size(); ++c) {
    Network<double> net(cases[c].sizes, cases[c].activations, cases[c].loss);
    randomize(net, rng);
    Mat x = random_matrix(m, net.n_in(), rng);
    for (int tries = 0; tries < 100 && distance_to_kink(net, x) < 1e-3; ++tries) {
      x = random_matrix(m, net.n_in(), rng);
    }
    CHECK(distance_to_kink(net, x) >= 1e-3, cat("case ", c, ": no input away from relu kinks"));
    const Mat y = targets_for(net, m, rng);

    Workspace<double> ws(net, m);
    forward<double>(ws, net, x);
    backward<double>(ws, net, x, y);
    const std::string mismatch =
        compare_with_finite_differences(net, ws, [&] { return mean_loss(net, x, y); });
    CHECK(mismatch.empty(), cat("case ", c, ": ", mismatch));
  }
}

void test_dropout() {
  Mat mask(400, 500), again(400, 500), next_batch(400, 500), next_layer(400, 500);
  dropout_mask<double>(mask, 7, 3, 1, 0.3);
  dropout_mask<double>(again, 7, 3, 1, 0.3);
  dropout_mask<double>(next_batch, 7, 4, 1, 0.3);
  dropout_mask<double>(next_layer, 7, 3, 2, 0.3);
  CHECK(mask == again, "the same (seed, batch, layer) gave different masks");
  CHECK(mask != next_batch && mask != next_layer, "another batch or layer drew the same mask");
  const double dropped = (mask.array() == 0.0).cast<double>().mean();
  CHECK(std::abs(dropped - 0.3) < 0.005, cat("dropped fraction ", dropped, ", rate 0.3"));
  CHECK(((mask.array() == 0.0) || (mask.array() == 1.0 / 0.7)).all(), "a scale other than 0 or 1/0.7");
  const double overlap = (mask.array() * next_batch.array()).mean() * 0.7 * 0.7;
  CHECK(std::abs(overlap - 0.49) < 0.005, cat("masks of consecutive batches overlap at ", overlap));
  Mat all_kept(3, 4);
  dropout_mask<double>(all_kept, 1, 0, 0, 0.0);
  CHECK((all_kept.array() == 1.0).all(), "rate 0 dropped units");

  using A = Activation;
  Network<double> net({5, 8, 7, 3}, {A::tanh, A::sigmoid, A::softmax}, Loss::cross_entropy,
                      {0.5, 0.25, 0.0});
  CHECK_THROWS(std::invalid_argument,
               Network<double>({5, 3}, {A::softmax}, Loss::cross_entropy, {0.5}));
  CHECK_THROWS(std::invalid_argument,
               Network<double>({5, 4, 3}, {A::tanh, A::softmax}, Loss::cross_entropy, {1.0, 0.0}));
  std::mt19937_64 rng(99);
  randomize(net, rng);
  const Index m = 6;
  const Mat x = random_matrix(m, net.n_in(), rng);
  const Mat y = targets_for(net, m, rng);
  const DropoutBatch batch{11, 2};
  Workspace<double> ws(net, m), probe(net, m);
  forward<double>(ws, net, x, &batch);
  backward<double>(ws, net, x, y);
  CHECK((ws.dropped[0].array() == 0.0).any(), "no unit was dropped");
  // The masks hold still while the weights move, so the loss is a smooth function of them.
  const std::string mismatch = compare_with_finite_differences(net, ws, [&] {
    forward<double>(probe, net, x, &batch);
    return batch_loss_sum<double>(probe, net, y) / double(m);
  });
  CHECK(mismatch.empty(), mismatch);

  Network<double> plain({5, 8, 7, 3}, {A::tanh, A::sigmoid, A::softmax}, Loss::cross_entropy);
  plain.layers = net.layers;
  Mat out(m, 3), plain_out(m, 3);
  predict<double>(out, net, x);
  predict<double>(plain_out, plain, x);
  CHECK(out == plain_out, "inference dropped units");
}

void test_network_validation() {
  using A = Activation;
  CHECK_THROWS(std::invalid_argument, Network<double>({3}, {}, Loss::mse));
  CHECK_THROWS(std::invalid_argument, Network<double>({}, {}, Loss::mse));
  CHECK_THROWS(std::invalid_argument,
               Network<double>({3, 0, 2}, {A::relu, A::identity}, Loss::mse));
  CHECK_THROWS(std::invalid_argument,
               Network<double>({3, 2, 0}, {A::relu, A::identity}, Loss::mse));
  CHECK_THROWS(std::invalid_argument, Network<double>({3, 4, 2}, {A::relu}, Loss::mse));
  CHECK_THROWS(std::invalid_argument,
               Network<double>({3, 4, 2}, {A::relu, A::relu, A::identity}, Loss::mse));
  CHECK_THROWS(std::invalid_argument,
               Network<double>({3, 4, 2}, {A::softmax, A::softmax}, Loss::cross_entropy));
  CHECK_THROWS(std::invalid_argument, Network<double>({3, 2}, {A::identity}, Loss::cross_entropy));

  const Network<double> valid({3, 4, 2}, {A::relu, A::softmax}, Loss::cross_entropy);
  CHECK(valid.n_in() == 3 && valid.n_out() == 2 && valid.n_layers() == 2,
        cat(valid.n_in(), " ", valid.n_out(), " ", valid.n_layers()));

  CHECK_THROWS(std::invalid_argument, activation_from_name("gelu"));
  CHECK_THROWS(std::invalid_argument, activation_from_name(""));
  CHECK_THROWS(std::invalid_argument, loss_from_name("hinge"));
  for (Activation kind : all_activations) {
    CHECK(activation_from_name(activation_name(kind)) == kind, activation_name(kind));
  }
  CHECK(
      loss_from_name("mse") == Loss::mse && loss_from_name("cross_entropy") == Loss::cross_entropy,
      "loss names do not round-trip");
}

void test_predict_in_chunks() {
  std::mt19937_64 rng(7);
  Network<double> net({6, 8, 3}, {Activation::tanh, Activation::softmax}, Loss::cross_entropy);
  randomize(net, rng);
  constexpr Index n = 2500;
  static_assert(n > 2 * inference_chunk_rows, "two full chunks and a partial one");
  const Mat x = random_matrix(n, net.n_in(), rng);
  const Mat y = one_hot_rows(n, net.n_out(), rng);

  Workspace<double> ws(net, n);
  forward<double>(ws, net, x);
  const Mat whole = ws.a.back().topRows(n);
  const double whole_loss = batch_loss_sum<double>(ws, net, y);

  Mat out = Mat::Constant(n, net.n_out(), std::nan(""));
  const double no_targets_loss = predict<double>(out, net, x);
  CHECK(no_targets_loss == 0.0, cat(no_targets_loss));
  CHECK(max_abs_diff(out, whole) < 1e-14,
        cat("predict vs forward off by ", max_abs_diff(out, whole)));

  const ConstMatrixRef<double> y_ref(y);
  Mat out_with_loss(n, net.n_out());
  const double chunked_loss = predict<double>(out_with_loss, net, x, &y_ref);
  CHECK(near(chunked_loss, whole_loss, 1e-12, 0.0), cat(chunked_loss, " vs ", whole_loss));
  CHECK(max_abs_diff(out_with_loss, out) == 0.0, "predict output depends on whether y is given");
}

// predict with its rows split over threads gives what one thread gives, whether the network
// is small or has a layer large enough to need many rows a thread, with a sparse or dense input.
void test_predict_on_threads_matches_one_thread() {
  std::mt19937_64 rng(11);
  Network<double> small({40, 24, 3}, {Activation::relu, Activation::softmax}, Loss::cross_entropy);
  Network<double> large({48, 1100, 4}, {Activation::tanh, Activation::softmax}, Loss::cross_entropy);
  static_assert(48 * 1100 < inference_large_layer_weights && 1100 * 4 < inference_large_layer_weights);
  Network<double> wide({600, 900, 3}, {Activation::relu, Activation::softmax}, Loss::cross_entropy);
  CHECK(wide.layers[0].w.size() >= inference_large_layer_weights, "the wide net has no large layer");
  for (Network<double>* net : {&small, &large, &wide}) {
    randomize(*net, rng);
    for (auto& layer : net->layers) layer.w *= 0.1;
    InferenceWorkspace<double> ws;
    for (const bool sparse : {false, true}) for (const Index n : {Index(1), Index(5), Index(301), Index(2600)}) {
      Mat x = random_matrix(n, net->n_in(), rng);
      if (sparse) x = (x.array().abs() < 0.9).select(0.0, x);
      const Mat y = one_hot_rows(n, net->n_out(), rng);
      const ConstMatrixRef<double> y_ref(y);
      Eigen::setNbThreads(1);
      Mat want(n, net->n_out());
      const double want_loss = predict<double>(want, *net, x, &y_ref);
      for (const int threads : {2, 3}) {
        Eigen::setNbThreads(threads);
        const int used = inference_threads(*net, n, threads);
        if (n == 2600) CHECK(used >= 2, cat("2600 rows on ", used, " of ", threads, " threads"));
        if (n == 1) CHECK(used == 1, cat("one row on ", used, " threads"));
        Mat got = Mat::Constant(n, net->n_out(), std::nan(""));
        const double loss = predict<double>(got, ws, *net, x, &y_ref);
        const std::string where = cat(net->layers[0].w.cols(), "-wide net, ", n, " rows, ",
                                      sparse ? "sparse" : "dense", " input, ", threads, " threads: ");
        CHECK(max_abs_diff(got, want) < 1e-13, cat(where, "outputs off by ", max_abs_diff(got, want)));
        CHECK(near(loss, want_loss, 1e-12, 0.0), cat(where, "loss ", loss, " vs ", want_loss));
        Mat again(n, net->n_out());
        CHECK(predict<double>(again, ws, *net, x, &y_ref) == loss && again == got,
              cat(where, "a second call differs"));
      }
    }
  }
  Eigen::setNbThreads(1);
}

// torch.optim.SGD on one tensor, dampening 0:
//   g ← ∇θ + λθ;  b ← g (first step) or μb + g;  g ← g + μb (Nesterov) or b;  θ ← θ − γg
template <typename P>
void reference_sgd_step(P& theta, P& buffer, const P& grad, const SGDHyperparameters& hyper,
                        double decay, bool first) {
  for (Index k = 0; k < theta.size(); ++k) {
    double g = grad(k) + decay * theta(k);
    if (hyper.momentum != 0.0) {
      buffer(k) = first ? g : hyper.momentum * buffer(k) + g;
      g = hyper.nesterov ? g + hyper.momentum * buffer(k) : buffer(k);
    }
    theta(k) -= hyper.lr * g;
  }
}

void test_sgd() {
  std::mt19937_64 rng(3);
  Network<double> start({3, 4, 2}, {Activation::tanh, Activation::identity}, Loss::mse);
  randomize(start, rng);

  auto fill_gradients = [&](Workspace<double>& ws) {
    for (std::size_t l = 0; l < ws.dw.size(); ++l) {
      ws.dw[l] = random_matrix(ws.dw[l].rows(), ws.dw[l].cols(), rng);
      ws.db[l] = random_matrix(1, ws.db[l].cols(), rng);
    }
  };

  {
    Network<double> net = start;
    Workspace<double> ws(net, 1);
    fill_gradients(ws);
    SGD<double> sgd({0.1, 0.0, false, 0.0});
    sgd.step(net, ws);
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
      const Mat want_w = start.layers[l].w - 0.1 * ws.dw[l];
      const Row want_b = start.layers[l].b - 0.1 * ws.db[l];
      CHECK(max_abs_diff(net.layers[l].w, want_w) < 1e-15 &&
                max_abs_diff(net.layers[l].b, want_b) < 1e-15,
            cat("plain SGD layer ", l));
    }
    CHECK(sgd.velocity_w.empty() && sgd.steps == 1, "plain SGD keeps no momentum state");
  }

  const SGDHyperparameters variants[] = {
      {0.1, 0.0, false, 0.05}, {0.1, 0.9, false, 0.0}, {0.05, 0.9, true, 0.0},
      {0.1, 0.8, false, 0.1},  {0.02, 0.7, true, 0.3},
  };
  for (const SGDHyperparameters& hyper : variants) {
    const std::string name =
        cat("lr=", hyper.lr, " momentum=", hyper.momentum, " nesterov=", hyper.nesterov,
            " weight_decay=", hyper.weight_decay);
    Network<double> net = start, want = start;
    Workspace<double> ws(net, 1);
    SGD<double> sgd(hyper);
    std::vector<Mat> buffer_w(net.layers.size());
    std::vector<Row> buffer_b(net.layers.size());
    for (int step = 0; step < 3; ++step) {
      fill_gradients(ws);
      sgd.step(net, ws);
      for (std::size_t l = 0; l < want.layers.size(); ++l) {
        buffer_w[l].resize(ws.dw[l].rows(), ws.dw[l].cols());
        buffer_b[l].resize(ws.db[l].cols());
        reference_sgd_step(want.layers[l].w, buffer_w[l], ws.dw[l], hyper, hyper.weight_decay,
                           step == 0);
        reference_sgd_step(want.layers[l].b, buffer_b[l], ws.db[l], hyper, 0.0, step == 0);
      }
    }
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
      const double w_error = max_abs_diff(net.layers[l].w, want.layers[l].w);
      const double b_error = max_abs_diff(net.layers[l].b, want.layers[l].b);
      CHECK(w_error < 1e-14 && b_error < 1e-14,
            cat(name, ": layer ", l, " weights off by ", w_error, ", biases by ", b_error));
    }
    CHECK(sgd.steps == 3, cat(name, ": steps ", sgd.steps));
  }

  Network<double> net = start;
  Workspace<double> ws(net, 1);
  fill_gradients(ws);
  SGD<double> sgd({0.1, 0.9, false, 0.0});
  CHECK(sgd.fits(Network<double>({5, 7}, {Activation::identity}, Loss::mse)),
        "a momentum optimizer without state fits any network");
  sgd.step(net, ws);
  CHECK(sgd.fits(net), "momentum state does not fit the network it was made on");
  CHECK(!sgd.fits(Network<double>({3, 5, 2}, {Activation::tanh, Activation::identity}, Loss::mse)),
        "fits a wider hidden layer");
  CHECK(
      !sgd.fits(Network<double>(
          {3, 4, 2, 2}, {Activation::tanh, Activation::identity, Activation::identity}, Loss::mse)),
      "fits a deeper network");
  CHECK(!sgd.fits(Network<double>({3, 4}, {Activation::tanh}, Loss::mse)),
        "fits a shallower network");
}

// One batch of train_epoch done by hand: gather rows, forward, loss, backward, step.
double manual_batch(Network<double>& net, SGD<double>& sgd, const Mat& x, const Mat& y,
                    const std::vector<std::int64_t>& rows) {
  const Index m = Index(rows.size());
  Mat xb(m, x.cols()), yb(m, y.cols());
  for (Index i = 0; i < m; ++i) {
    xb.row(i) = x.row(rows[i]);
    yb.row(i) = y.row(rows[i]);
  }
  Workspace<double> ws(net, m);
  forward<double>(ws, net, xb);
  const double loss = batch_loss_sum<double>(ws, net, yb);
  backward<double>(ws, net, xb, yb);
  sgd.step(net, ws);
  return loss;
}

double max_parameter_diff(const Network<double>& a, const Network<double>& b) {
  double worst = 0.0;
  for (std::size_t l = 0; l < a.layers.size(); ++l) {
    worst = std::max({worst, max_abs_diff(a.layers[l].w, b.layers[l].w),
                      max_abs_diff(a.layers[l].b, b.layers[l].b)});
  }
  return worst;
}

void test_train_epoch() {
  std::mt19937_64 rng(13);
  Network<double> start({2, 3, 2}, {Activation::tanh, Activation::softmax}, Loss::cross_entropy);
  randomize(start, rng);
  const Mat x = random_matrix(7, 2, rng);
  Mat y = one_hot_rows(7, 2, rng);
  const std::vector<std::int64_t> order = {4, 0, 6, 2, 1, 5, 3};
  const std::vector<std::vector<std::int64_t>> batches = {{4, 0, 6}, {2, 1, 5}, {3}};
  const SGDHyperparameters hyper{0.1, 0.9, true, 0.01};

  Network<double> net = start, manual = start;
  SGD<double> sgd(hyper), manual_sgd(hyper);
  Workspace<double> ws;
  const EpochResult result = train_epoch<double>(net, sgd, ws, x, y, order.data(), 3);
  double manual_loss = 0.0;
  for (const auto& rows : batches) manual_loss += manual_batch(manual, manual_sgd, x, y, rows);
  CHECK(result.failed_batch == -1 && result.samples == 7,
        cat("failed_batch ", result.failed_batch, " samples ", result.samples));
  CHECK(near(result.loss_sum, manual_loss, 1e-14, 0.0), cat(result.loss_sum, " vs ", manual_loss));
  CHECK(max_parameter_diff(net, manual) < 1e-14, cat("off by ", max_parameter_diff(net, manual)));
  CHECK(ws.capacity == 3, cat("capacity ", ws.capacity));

  Network<double> natural = start, natural_manual = start;
  SGD<double> natural_sgd(hyper), natural_manual_sgd(hyper);
  train_epoch<double>(natural, natural_sgd, ws, x, y, nullptr, 3);
  for (const auto& rows : std::vector<std::vector<std::int64_t>>{{0, 1, 2}, {3, 4, 5}, {6}}) {
    manual_batch(natural_manual, natural_manual_sgd, x, y, rows);
  }
  CHECK(max_parameter_diff(natural, natural_manual) < 1e-14,
        cat("without order off by ", max_parameter_diff(natural, natural_manual)));

  y(order[4], 0) = std::nan("");
  Network<double> poisoned = start, first_batch_only = start;
  SGD<double> poisoned_sgd(hyper), first_batch_sgd(hyper);
  const EpochResult failed = train_epoch<double>(poisoned, poisoned_sgd, ws, x, y, order.data(), 3);
  const double first_loss = manual_batch(first_batch_only, first_batch_sgd, x, y, batches[0]);
  CHECK(failed.failed_batch == 1 && failed.samples == 3,
        cat("failed_batch ", failed.failed_batch, " samples ", failed.samples));
  CHECK(near(failed.loss_sum, first_loss, 1e-14, 0.0), cat(failed.loss_sum, " vs ", first_loss));
  CHECK(max_parameter_diff(poisoned, first_batch_only) < 1e-14,
        cat("the failed batch changed the weights by ",
            max_parameter_diff(poisoned, first_batch_only)));

  // After one step at lr 1e200 the output weights are ~1e200, so the next batch's squared
  // error overflows to inf.
  Network<double> exploding({2, 3, 1}, {Activation::tanh, Activation::identity}, Loss::mse);
  randomize(exploding, rng);
  const Mat y_regression = random_matrix(7, 1, rng);
  SGD<double> huge_lr({1e200, 0.0, false, 0.0});
  Workspace<double> exploding_ws;
  const EpochResult overflowed =
      train_epoch<double>(exploding, huge_lr, exploding_ws, x, y_regression, order.data(), 3);
  CHECK(overflowed.failed_batch == 1 && huge_lr.steps == 1,
        cat("failed_batch ", overflowed.failed_batch, " steps ", huge_lr.steps));
}

// backward_and_step (the update riding on the gradient's product) against backward then step,
// over several steps so that the velocity carries over, with dropout on a hidden layer.
void test_fused_sgd_matches_separate_step() {
  std::mt19937_64 rng(17);
  Network<double> start({5, 7, 6, 3}, {Activation::relu, Activation::sigmoid, Activation::softmax},
                        Loss::cross_entropy, {0.3, 0.0, 0.0});
  randomize(start, rng);
  const Mat x = random_matrix(4, 5, rng);
  const Mat y = one_hot_rows(4, 3, rng);
  for (const SGDHyperparameters hyper : {SGDHyperparameters{0.5, 0.0, false, 0.0},
                                         SGDHyperparameters{0.5, 0.0, false, 0.1},
                                         SGDHyperparameters{0.2, 0.9, false, 0.0},
                                         SGDHyperparameters{0.2, 0.9, false, 0.05}}) {
    Network<double> fused = start, separate = start;
    SGD<double> fused_sgd(hyper), separate_sgd(hyper);
    CHECK(fused_sgd.fuses_with_backward(), "SGD without Nesterov should fuse");
    Workspace<double> fused_ws(fused, 4), separate_ws(separate, 4);
    for (std::uint64_t step = 0; step < 3; ++step) {
      const DropoutBatch dropout{9, step};
      forward<double>(fused_ws, fused, x, &dropout);
      backward_and_step<double>(fused_ws, fused, fused_sgd, x, y);
      forward<double>(separate_ws, separate, x, &dropout);
      backward<double>(separate_ws, separate, x, y);
      separate_sgd.step(separate, separate_ws);
    }
    const std::string label = cat("lr ", hyper.lr, " momentum ", hyper.momentum, " decay ", hyper.weight_decay);
    CHECK(max_parameter_diff(fused, separate) < 1e-14, cat(label, ": off by ", max_parameter_diff(fused, separate)));
    CHECK(max_parameter_diff(fused, start) > 1e-3, cat(label, ": the fused steps did not train"));
    CHECK(fused_sgd.steps == 3, cat(label, ": steps ", fused_sgd.steps));
    for (std::size_t l = 0; l < fused_sgd.velocity_w.size(); ++l) {
      const double diff = (fused_sgd.velocity_w[l] - separate_sgd.velocity_w[l]).cwiseAbs().maxCoeff() +
                          (fused_sgd.velocity_b[l] - separate_sgd.velocity_b[l]).cwiseAbs().maxCoeff();
      CHECK(diff < 1e-14, cat(label, ": velocity of layer ", l, " off by ", diff));
    }
    CHECK(fused_sgd.velocity_w.size() == separate_sgd.velocity_w.size(), label);
  }
  CHECK(!SGD<double>({0.1, 0.9, true, 0.0}).fuses_with_backward(), "Nesterov must not fuse");
  CHECK(!Adam<double>(AdamHyperparameters{}).fuses_with_backward(), "Adam must not fuse");
}

void test_workspace_reserve() {
  const Network<double> net({3, 4, 2}, {Activation::relu, Activation::identity}, Loss::mse);
  Workspace<double> ws(net, 10);
  const double* x_data = ws.x.data();
  const double* z_data = ws.z[1].data();
  const double* dw_data = ws.dw[0].data();
  const double* db_data = ws.db[1].data();
  auto unchanged = [&] {
    return ws.x.data() == x_data && ws.z[1].data() == z_data && ws.dw[0].data() == dw_data &&
           ws.db[1].data() == db_data && ws.capacity == 10;
  };
  ws.reserve(net, 10);
  CHECK(unchanged(), "reserve with the same batch reallocated");
  ws.reserve(net, 4);
  CHECK(unchanged(), "reserve with a smaller batch reallocated");
  ws.reserve(net, 1);
  CHECK(unchanged(), "reserve with batch 1 reallocated");

  ws.reserve(net, 25);
  CHECK(ws.capacity == 25 && ws.x.rows() == 25 && ws.a[0].rows() == 25 && ws.dz[1].rows() == 25,
        cat("growing: capacity ", ws.capacity, " x rows ", ws.x.rows()));

  const Network<double> wider({3, 6, 2}, {Activation::relu, Activation::identity}, Loss::mse);
  CHECK(!ws.fits(wider), "fits a network of another shape");
  ws.reserve(wider, 5);
  CHECK(ws.fits(wider) && ws.dw[0].cols() == 6 && ws.z[0].cols() == 6 && ws.capacity == 5,
        cat("after reserve for another shape: dw[0] ", ws.dw[0].rows(), "x", ws.dw[0].cols(),
            ", capacity ", ws.capacity));

  const Network<double> deeper(
      {3, 6, 2, 2}, {Activation::relu, Activation::identity, Activation::identity}, Loss::mse);
  ws.reserve(deeper, 5);
  CHECK(ws.fits(deeper) && ws.z.size() == 3 && ws.dw[2].rows() == 2,
        "reserve for a deeper network");

  const Workspace<double> empty_batch(net, 0);
  CHECK(empty_batch.capacity == 1, cat("capacity for batch 0: ", empty_batch.capacity));
}

void test_xor_learns() {
  std::mt19937_64 rng(42);
  Network<double> net({2, 8, 1}, {Activation::tanh, Activation::sigmoid}, Loss::cross_entropy);
  randomize(net, rng);
  Mat x(4, 2), y(4, 1);
  x << 0, 0, 0, 1, 1, 0, 1, 1;
  y << 0, 1, 1, 0;
  SGD<double> sgd({0.1, 0.9, false, 0.0});
  Workspace<double> ws;
  Index failed_batch = -1;
  for (int epoch = 0; epoch < 3000 && failed_batch == -1; ++epoch) {
    failed_batch = train_epoch<double>(net, sgd, ws, x, y, nullptr, 4).failed_batch;
  }
  CHECK(failed_batch == -1, "XOR training diverged");
  Mat out(4, 1);
  const ConstMatrixRef<double> y_ref(y);
  const double mean = predict<double>(out, net, x, &y_ref) / 4.0;
  CHECK(mean < 0.05, cat("XOR mean cross-entropy after 3000 epochs: ", mean));
  for (Index i = 0; i < 4; ++i) {
    CHECK((out(i, 0) > 0.5) == (y(i, 0) > 0.5), cat("sample ", i, " predicted ", out(i, 0)));
  }
}

// The engine's dense kernels (packing buffers from a GemmScratch, columns split over threads,
// or the small-product kernel) against the plain Eigen-product oracle, for vectors, odd sizes
// and blocks larger than a cache tile, with the scratch sized for a larger batch than the one used.
void test_gemm_kernels_match_oracle() {
  std::mt19937_64 rng(17);
  std::normal_distribution<double> normal;
  auto random = [&](Index rows, Index cols) {
    Mat m(rows, cols);
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
    return m;
  };
  // The second row goes to small_product_group (forward and dW), with widths around packets.
  const Index shapes[][3] = {{1, 10, 784}, {10, 30, 784}, {32, 128, 784}, {7, 1, 5},
                             {3, 300, 2},  {257, 1031, 129}, {2, 2, 2},
                             {10, 10, 30}, {5, 17, 9}, {3, 31, 40}, {7, 8, 20}, {2, 33, 30}, {6, 12, 5}};
  int small = 0;
  for (const auto& shape : shapes) small += small_product_fits<double>(shape[0], shape[1], shape[2]);
  CHECK(small >= 4, cat("only ", small, " shapes take the small-product kernel"));
  for (int threads : {1, 2}) {
    Eigen::setNbThreads(threads);
    for (const auto& shape : shapes) {
      const Index m = shape[0], n_out = shape[1], n_in = shape[2];
      const Mat x = random(m, n_in), w = random(n_in, n_out), dz = random(m, n_out);
      const Row b = random(1, n_out);
      GemmScratch<double> forward_scratch, dw_scratch, dx_scratch;
      forward_scratch.reserve(m + 5, n_out, n_in, threads);
      dw_scratch.reserve(n_in, n_out, m + 5, threads);
      dx_scratch.reserve(m + 5, n_in, n_out, threads);
      Mat z(m, n_out), z_oracle(m, n_out), dw(n_in, n_out), dw_oracle(n_in, n_out);
      Mat dx(m, n_in), dx_oracle(m, n_in);
      Row db(n_out), db_oracle(n_out);
      dense_forward<double>(z, x, w, b, forward_scratch);
      dense_forward<double>(z_oracle, x, w, b);
      dw.setZero();
      accumulate_xt_dz<double>(dw, 1.0, x, dz, dw_scratch);
      db = dz.colwise().sum();
      dense_backward_params<double>(dw_oracle, db_oracle, dz, x);
      dense_backward_input<double>(dx, dz, w, dx_scratch);
      dense_backward_input<double>(dx_oracle, dz, w);
      const double tolerance = 1e-12 * double(std::max(n_in, m));
      const std::string where = cat(threads, " thread(s), m=", m, " n_out=", n_out, " n_in=", n_in);
      CHECK(max_abs_diff(z, z_oracle) < tolerance, cat("forward ", where, ": ", max_abs_diff(z, z_oracle)));
      CHECK(max_abs_diff(dw, dw_oracle) < tolerance, cat("dW ", where, ": ", max_abs_diff(dw, dw_oracle)));
      CHECK(max_abs_diff(db, db_oracle) == 0.0, cat("db ", where));
      CHECK(max_abs_diff(dx, dx_oracle) < tolerance, cat("dX ", where, ": ", max_abs_diff(dx, dx_oracle)));
    }
  }
  // A product gives the same bits whatever its buffers were reserved for and used on before:
  // here a larger batch and two threads, each with a share of the columns.
  const Mat x = random(300, 200), w = random(200, 150), x_large = random(1000, 200);
  const Row b = random(1, 150);
  Mat z_fresh(300, 150), z_reused(300, 150), z_large(1000, 150);
  GemmScratch<double> fresh, reused;
  reused.reserve(1000, 150, 200, 2);
  Eigen::setNbThreads(2);
  dense_forward<double>(z_large, x_large, w, b, reused);
  Eigen::setNbThreads(1);
  fresh.reserve(300, 150, 200, 1);
  dense_forward<double>(z_fresh, x, w, b, fresh);
  dense_forward<double>(z_reused, x, w, b, reused);
  CHECK(z_reused == z_fresh, cat("reused buffers change the product by ", max_abs_diff(z_reused, z_fresh)));
}

// An x (m, n_in) with round(density · m · n_in) nonzeros at random places; one zero in ten is −0.0.
template <typename T>
Matrix<T> sparse_random(Index m, Index n_in, double density, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  std::vector<Index> places(std::size_t(m * n_in));
  std::iota(places.begin(), places.end(), Index(0));
  std::shuffle(places.begin(), places.end(), rng);
  const auto nonzeros = std::size_t(std::lround(density * double(m * n_in)));
  Matrix<T> x(m, n_in);
  for (std::size_t k = 0; k < places.size(); ++k) {
    x.data()[places[k]] = k < nonzeros ? T(normal(rng)) : (k % 10 == 0 ? T(-0.0) : T(0));
  }
  return x;
}

// The sparse kernels against Eigen's products in double, over column counts around every packet
// boundary (both gradient walks, the packed forward pass), 1 and 2 threads, and their rule
// for giving way to the dense product.
template <typename T>
void check_sparse_kernels(const char* type_name) {
  constexpr Index P = packet_groups::lanes<T>;
  constexpr Index G = packet_groups::max_packets * P;
  std::mt19937_64 rng(31);
  const double tolerance = std::is_same_v<T, float> ? 2e-5 : 1e-12;
  const std::vector<Index> widths = {P, P + 1, 2 * P - 1, 2 * P + 3, G - 1, G, G + 1, G + P - 1,
                                     2 * G + 5, 30, 127, 130, 300};
  for (int threads : {1, 2}) {
    Eigen::setNbThreads(threads);
    for (const Index n_out : widths) {
      for (const Index m : {Index(1), Index(5), Index(40), Index(200)}) {
        const Index n_in = 37;
        const double density = m == 200 ? 0.27 : 0.2;  // 200 rows reach the packed forward pass
        const Matrix<T> x = sparse_random<T>(m, n_in, density, rng);
        const Matrix<T> w = random_matrix(n_in, n_out, rng).cast<T>();
        const RowVector<T> b = random_matrix(1, n_out, rng).cast<T>();
        const Matrix<T> dz = random_matrix(m, n_out, rng).cast<T>();
        const Matrix<T> start = random_matrix(n_in, n_out, rng).cast<T>();
        const T alpha = T(-0.75);
        const std::string where = cat(type_name, " ", threads, " thread(s), m=", m, " n_out=", n_out);

        SparseRows<T> sparse;
        sparse.reserve(m, n_in, true);
        sparse.reserve_packing(std::max(m, n_in) * G, threads);
        CHECK(sparse.assign(x), where + ": not taken as sparse");
        Index nonzeros = 0;
        for (Index k = 0; k < x.size(); ++k) nonzeros += x.data()[k] != T(0);
        CHECK(sparse.nonzeros() == nonzeros, cat(where, ": ", sparse.nonzeros(), " nonzeros kept, ", nonzeros, " in x"));

        Matrix<T> z(m, n_out);
        sparse_dense_forward<T>(z, sparse, w, b, threads);
        const Mat z_oracle = (x.template cast<double>() * w.template cast<double>()).rowwise() + b.template cast<double>();
        CHECK(max_abs_diff(z.template cast<double>(), z_oracle) < tolerance,
              cat("forward ", where, ": ", max_abs_diff(z.template cast<double>(), z_oracle)));

        Matrix<T> target = start;
        sparse_accumulate_gradient<T>(target, alpha, sparse, dz, threads);
        const Mat target_oracle = start.template cast<double>() +
                                  double(alpha) * x.template cast<double>().transpose() * dz.template cast<double>();
        CHECK(max_abs_diff(target.template cast<double>(), target_oracle) < tolerance,
              cat("gradient ", where, ": ", max_abs_diff(target.template cast<double>(), target_oracle)));
        // Rows of W whose input column is all zeros are left exactly as they were.
        for (Index j = 0; j < n_in; ++j) {
          if (x.col(j).cwiseAbs().maxCoeff() == T(0)) {
            CHECK(target.row(j) == start.row(j), cat("gradient ", where, ": zero column ", j, " changed W"));
          }
        }
      }
    }
  }
  Eigen::setNbThreads(1);

  SparseRows<T> sparse;
  sparse.reserve(8, 50, true);
  CHECK(!sparse.assign(sparse_random<T>(8, 50, 0.6, rng)), cat(type_name, ": 60 % nonzeros taken as sparse"));
  const Matrix<T> zeros = Matrix<T>::Zero(8, 50);
  CHECK(sparse.assign(zeros) && sparse.nonzeros() == 0, cat(type_name, ": zeros not taken as sparse"));
  const Matrix<T> w = random_matrix(50, 2 * P + 1, rng).cast<T>();
  const RowVector<T> b = random_matrix(1, 2 * P + 1, rng).cast<T>();
  Matrix<T> z(8, 2 * P + 1);
  sparse_dense_forward<T>(z, sparse, w, b, 1);
  CHECK((z.rowwise() - b).cwiseAbs().maxCoeff() == T(0), cat(type_name, ": zero input's output is not b"));
  CHECK(!sparse_kernels_fit<T>(50, P - 1) && sparse_kernels_fit<T>(50, P),
        cat(type_name, ": layers narrower than a packet must go to the dense product"));
}

// The elementwise updates split over threads for large layers (160,000 weights here) give the
// same bits as on one thread.
void test_threaded_optimizer_steps_match_one_thread() {
  std::mt19937_64 rng(23);
  Network<double> start({400, 400, 10}, {Activation::relu, Activation::softmax}, Loss::cross_entropy);
  randomize(start, rng);
  const Mat x = random_matrix(8, 400, rng);
  const Mat y = one_hot_rows(8, 10, rng);
  // The gradients on one thread (the products' blocking varies with the thread count), the
  // steps on `threads`.
  auto run = [&](Optimizer<double>& optimizer, int threads) {
    Network<double> net = start;
    Workspace<double> ws(net, 8);
    for (int step = 0; step < 3; ++step) {
      forward<double>(ws, net, x);
      backward<double>(ws, net, x, y);
      Eigen::setNbThreads(threads);
      optimizer.step(net, ws);
      Eigen::setNbThreads(1);
    }
    return net;
  };
  const auto check = [&](const char* name, Optimizer<double>&& one, Optimizer<double>&& two) {
    const Network<double> a = run(one, 1), b = run(two, 2);
    CHECK(max_parameter_diff(a, b) == 0.0, cat(name, ": 2 threads differ by ", max_parameter_diff(a, b)));
    CHECK(max_parameter_diff(a, start) > 1e-6, cat(name, ": did not train"));
  };
  const AdamHyperparameters adam{1e-3, 0.9, 0.999, 1e-8, 1e-2, true};
  const RMSpropHyperparameters rmsprop{1e-2, 0.99, 1e-8, 0.9, 1e-4};
  const AdagradHyperparameters adagrad{1e-2, 1e-10, 1e-3};
  check("Adam", Adam<double>(adam), Adam<double>(adam));
  check("RMSprop", RMSprop<double>(rmsprop), RMSprop<double>(rmsprop));
  check("Adagrad", Adagrad<double>(adagrad), Adagrad<double>(adagrad));
  const SklearnSGDHyperparameters sklearn_sgd{1e-2, 0.9, true};
  const SklearnAdamHyperparameters sklearn_adam{1e-3, 0.9, 0.999, 1e-8};
  check("SklearnSGD", SklearnSGD<double>(sklearn_sgd), SklearnSGD<double>(sklearn_sgd));
  check("SklearnAdam", SklearnAdam<double>(sklearn_adam), SklearnAdam<double>(sklearn_adam));
}

// train_epoch keeps a sparse first layer's W on cache-line-aligned rows while SGD trains it in
// place: the epoch must give the same bits as its batches run by hand on the network's own W,
// and must hand the weights back however it ends.
template <typename T>
void check_epoch_on_line_aligned_weights(const char* type_name) {
  constexpr Index P = packet_groups::lanes<T>;
  std::mt19937_64 rng(41);
  const Index n = 23, batch = 4, n_in = 50;
  const Matrix<T> x = sparse_random<T>(n, n_in, 0.15, rng);
  const Matrix<T> y = random_matrix(n, 3, rng).template cast<T>();
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), std::int64_t(0));
  std::shuffle(order.begin(), order.end(), rng);
  const auto same_bits = [](const Network<T>& a, const Network<T>& b) {
    for (std::size_t l = 0; l < a.layers.size(); ++l) {
      if ((a.layers[l].w.array() != b.layers[l].w.array()).any()) return false;
      if ((a.layers[l].b.array() != b.layers[l].b.array()).any()) return false;
    }
    return true;
  };
  // Runs the first `batches` batches of the epoch by hand, without train_epoch's copy of W.
  const auto by_hand = [&](Network<T> net, const SGDHyperparameters& hyper, Index batches) {
    SGD<T> sgd(hyper);
    Workspace<T> ws(net, batch);
    for (Index start = 0; start < batches * batch; start += batch) {
      const Index m = std::min(batch, n - start);
      Matrix<T> xb(m, n_in), yb(m, y.cols());
      for (Index i = 0; i < m; ++i) {
        xb.row(i) = x.row(order[std::size_t(start + i)]);
        yb.row(i) = y.row(order[std::size_t(start + i)]);
      }
      forward<T>(ws, net, xb);
      backward_and_step<T>(ws, net, sgd, xb, yb);
    }
    return net;
  };
  for (const Index width : {P, Index(30), 2 * P + 1, Index(67)}) {
    Network<T> start({n_in, width, 3}, {Activation::sigmoid, Activation::identity}, Loss::mse);
    for (auto& layer : start.layers) {
      layer.w = random_matrix(layer.w.rows(), layer.w.cols(), rng).template cast<T>();
    }
    for (const SGDHyperparameters hyper : {SGDHyperparameters{0.5, 0.0, false, 0.0},
                                           SGDHyperparameters{0.2, 0.9, false, 1e-2}}) {
      const std::string label = cat(type_name, " width ", width, " momentum ", hyper.momentum);
      Network<T> net = start;
      SGD<T> sgd(hyper);
      Workspace<T> ws;
      TrainOptions options;
      options.batch_size = batch;
      const EpochResult result = train_epoch<T>(net, sgd, ws, x, y, order.data(), options);
      CHECK(result.batches == 6 && result.failed_batch == -1, cat(label, ": ", result.batches, " batches"));
      CHECK(same_bits(net, by_hand(start, hyper, 6)), cat(label, ": differs from the batches by hand"));
      CHECK(!same_bits(net, start), cat(label, ": did not train"));
      CHECK(ws.first_w.size() == n_in * width && !ws.first_w_holds_weights,
            cat(label, ": the aligned copy was not made, or still holds the weights"));
      const auto view = ws.first_w.view();
      CHECK(reinterpret_cast<std::uintptr_t>(view.data()) % cache_line_bytes == 0 &&
                view.outerStride() * Index(sizeof(T)) % cache_line_bytes == 0,
            cat(label, ": rows not on cache lines, stride ", view.outerStride()));

      Matrix<T> poisoned_y = y;
      poisoned_y(order[9], 0) = std::numeric_limits<T>::quiet_NaN();
      Network<T> failed = start;
      SGD<T> failed_sgd(hyper);
      const EpochResult stopped = train_epoch<T>(failed, failed_sgd, ws, x, poisoned_y, order.data(), options);
      CHECK(stopped.failed_batch == 2, cat(label, ": failed_batch ", stopped.failed_batch));
      CHECK(same_bits(failed, by_hand(start, hyper, 2)),
            cat(label, ": a failed batch did not leave the first two batches' weights"));

      Matrix<T> poisoned_x = x;
      poisoned_x(order[5], 7) = std::numeric_limits<T>::infinity();
      options.check_rows = true;
      Network<T> checked = start;
      SGD<T> checked_sgd(hyper);
      const EpochResult refused = train_epoch<T>(checked, checked_sgd, ws, poisoned_x, y, order.data(), options);
      CHECK(refused.nonfinite_row == order[5], cat(label, ": nonfinite_row ", refused.nonfinite_row));
      CHECK(same_bits(checked, by_hand(start, hyper, 1)),
            cat(label, ": a refused row did not leave the first batch's weights"));

      const std::atomic<bool> stop{true};
      options.stop = &stop;
      Network<T> interrupted = start;
      SGD<T> interrupted_sgd(hyper);
      CHECK(train_epoch<T>(interrupted, interrupted_sgd, ws, x, y, order.data(), options).interrupted &&
                same_bits(interrupted, start) && !ws.first_w_holds_weights,
            cat(label, ": an interrupted epoch changed the weights"));
    }
  }
  const Index row_bytes = LineAlignedMatrix<T>::bytes(1, 30);
  const Index rows_that_fit = first_layer_copy_max_bytes / row_bytes;
  for (const Index rows : {rows_that_fit, rows_that_fit + 1}) {
    const Network<T> net({rows, 30, 3}, {Activation::sigmoid, Activation::identity}, Loss::mse);
    const Workspace<T> ws(net, batch);
    const bool copied = ws.first_w.size() == rows * 30;
    CHECK(ws.sparse_capable && copied == (rows == rows_that_fit) && (copied || ws.first_w.size() == 0),
          cat(type_name, ": a first layer of ", rows, " rows, copy of ", ws.first_w.size(), " entries"));
  }
}

void test_epoch_on_line_aligned_weights() {
  check_epoch_on_line_aligned_weights<float>("float");
  check_epoch_on_line_aligned_weights<double>("double");
}

void test_sparse_kernels_match_dense() {
  check_sparse_kernels<float>("float");
  check_sparse_kernels<double>("double");
}

// scikit-learn's SGDOptimizer (sklearn/neural_network/_stochastic_optimizers.py) on one weight and
// one bias, two steps worked by hand: w₀ = 1 with gradients 0.5 then −0.25, b₀ = −2 with 1 then
// 0.5; γ = 0.1 at the first step and lr2 at the second.
//   u₁ = −γ g₁,  u₂ = μ u₁ − γ₂ g₂
//   with Nesterov θₜ = θₜ₋₁ + μ uₜ − γₜ gₜ, else θₜ = θₜ₋₁ + uₜ
void test_sklearn_sgd() {
  struct Case {
    double momentum;
    bool nesterov;
    double lr2;
    double w1, w2, b1, b2, velocity_w, velocity_b;
  };
  const Case cases[] = {
      // w: u₁ = −0.05, θ₁ = 1 − 0.045 − 0.05
      //    u₂ = −0.045 + 0.025 = −0.02, θ₂ = 0.905 − 0.018 + 0.025
      // b: u₁ = −0.1, θ₁ = −2 − 0.09 − 0.1
      //    u₂ = −0.09 − 0.05 = −0.14, θ₂ = −2.19 − 0.126 − 0.05
      {0.9, true, 0.1, 0.905, 0.912, -2.19, -2.366, -0.02, -0.14},
      // w: θ₁ = 1 − 0.05, θ₂ = 0.95 − 0.02;  b: θ₁ = −2 − 0.1, θ₂ = −2.1 − 0.14
      {0.9, false, 0.1, 0.95, 0.93, -2.1, -2.24, -0.02, -0.14},
      // γ₂ = 0.2, as scikit-learn's invscaling and adaptive schedules change it between epochs:
      // w: u₂ = −0.045 + 0.05 = 0.005, θ₂ = 0.905 + 0.0045 + 0.05
      // b: u₂ = −0.09 − 0.1 = −0.19, θ₂ = −2.19 − 0.171 − 0.1
      {0.9, true, 0.2, 0.905, 0.9595, -2.19, -2.461, 0.005, -0.19},
      // μ = 0, with or without Nesterov: θₜ = θₜ₋₁ − γ gₜ
      {0.0, true, 0.1, 0.95, 0.975, -2.1, -2.15, 0.025, -0.05},
      {0.0, false, 0.1, 0.95, 0.975, -2.1, -2.15, 0.025, -0.05},
  };
  for (const Case& c : cases) {
    const std::string name = cat("momentum ", c.momentum, " nesterov ", c.nesterov, " lr2 ", c.lr2);
    Network<double> net({1, 1}, {Activation::identity}, Loss::mse);
    net.layers[0].w(0, 0) = 1.0;
    net.layers[0].b(0) = -2.0;
    Workspace<double> ws(net, 1);
    SklearnSGD<double> sgd({0.1, c.momentum, c.nesterov});
    CHECK(!sgd.fuses_with_backward(), name + ": fuses with backward");
    ws.dw[0](0, 0) = 0.5;
    ws.db[0](0) = 1.0;
    sgd.step(net, ws);
    CHECK(near(net.layers[0].w(0, 0), c.w1, 0.0, 1e-15) && near(net.layers[0].b(0), c.b1, 0.0, 1e-15),
          cat(name, ": step 1 gave w ", net.layers[0].w(0, 0), " b ", net.layers[0].b(0)));
    sgd.hyper.lr = c.lr2;
    ws.dw[0](0, 0) = -0.25;
    ws.db[0](0) = 0.5;
    sgd.step(net, ws);
    CHECK(near(net.layers[0].w(0, 0), c.w2, 0.0, 1e-15) && near(net.layers[0].b(0), c.b2, 0.0, 1e-15),
          cat(name, ": step 2 gave w ", net.layers[0].w(0, 0), " b ", net.layers[0].b(0)));
    CHECK(near(sgd.velocity_w[0](0, 0), c.velocity_w, 0.0, 1e-15) &&
              near(sgd.velocity_b[0](0), c.velocity_b, 0.0, 1e-15),
          cat(name, ": velocity ", sgd.velocity_w[0](0, 0), " ", sgd.velocity_b[0](0)));
    CHECK(sgd.steps == 2, cat(name, ": steps ", sgd.steps));
  }
}

// scikit-learn's AdamOptimizer, two steps by hand with β1 = 0.5, β2 = 0.75, ε = 0.25, γ = 0.1:
// w₀ = 1 with gradients 2 then −2, b₀ = 0 with −4 then 0.
//   γ₁ = 0.1 √(1 − 0.75) / (1 − 0.5) = 0.1,  γ₂ = 0.1 √(1 − 0.5625) / (1 − 0.25)
//   w: m₁ = 1, v₁ = 1, θ₁ = 1 − 0.1 · 1 / (1 + 0.25) = 0.92;
//      m₂ = 0.5 − 1 = −0.5, v₂ = 0.75 + 1 = 1.75, θ₂ = 0.92 + γ₂ 0.5 / (√1.75 + 0.25)
//   b: m₁ = −2, v₁ = 4, θ₁ = 0.1 · 2 / (2 + 0.25)
//      m₂ = −1, v₂ = 3, θ₂ = θ₁ + γ₂ / (√3 + 0.25)
// ε added to √v before the bias correction is what sets it apart from torch.optim.Adam.
void test_sklearn_adam() {
  Network<double> net({1, 1}, {Activation::identity}, Loss::mse);
  net.layers[0].w(0, 0) = 1.0;
  net.layers[0].b(0) = 0.0;
  Workspace<double> ws(net, 1);
  SklearnAdam<double> adam({0.1, 0.5, 0.75, 0.25});
  CHECK(!adam.fuses_with_backward(), "SklearnAdam fuses with backward");
  ws.dw[0](0, 0) = 2.0;
  ws.db[0](0) = -4.0;
  adam.step(net, ws);
  const double b1 = 0.1 * 2.0 / (2.0 + 0.25);
  CHECK(near(net.layers[0].w(0, 0), 0.92, 0.0, 1e-15) && near(net.layers[0].b(0), b1, 1e-15, 0.0),
        cat("step 1 gave w ", net.layers[0].w(0, 0), " b ", net.layers[0].b(0)));
  ws.dw[0](0, 0) = -2.0;
  ws.db[0](0) = 0.0;
  adam.step(net, ws);
  const double lr2 = 0.1 * std::sqrt(0.4375) / 0.75;
  const double w2 = 0.92 + lr2 * 0.5 / (std::sqrt(1.75) + 0.25);
  const double b2 = b1 + lr2 * 1.0 / (std::sqrt(3.0) + 0.25);
  CHECK(near(net.layers[0].w(0, 0), w2, 1e-15, 0.0) && near(net.layers[0].b(0), b2, 1e-15, 0.0),
        cat("step 2 gave w ", net.layers[0].w(0, 0), " b ", net.layers[0].b(0), ", want ", w2, " ", b2));
  CHECK(adam.exp_avg_w[0](0, 0) == -0.5 && adam.exp_avg_sq_w[0](0, 0) == 1.75 &&
            adam.exp_avg_b[0](0) == -1.0 && adam.exp_avg_sq_b[0](0) == 3.0,
        cat("moments ", adam.exp_avg_w[0](0, 0), " ", adam.exp_avg_sq_w[0](0, 0), " ",
            adam.exp_avg_b[0](0), " ", adam.exp_avg_sq_b[0](0)));
  CHECK(adam.steps == 2, cat("steps ", adam.steps));

  // A changed learning rate takes effect at the next step: γ = 0.01 at step 3, g = 0 for both.
  ws.dw[0].setZero();
  ws.db[0].setZero();
  adam.hyper.lr = 0.01;
  adam.step(net, ws);
  const double lr3 = 0.01 * std::sqrt(1.0 - std::pow(0.75, 3)) / (1.0 - std::pow(0.5, 3));
  const double w3 = w2 + lr3 * 0.25 / (std::sqrt(1.75 * 0.75) + 0.25);
  CHECK(near(net.layers[0].w(0, 0), w3, 1e-15, 0.0), cat("step 3 gave w ", net.layers[0].w(0, 0), ", want ", w3));
}

// train_epoch on a dense x through the overload the bindings use.
EpochResult dense_epoch(Network<double>& net, Optimizer<double>& optimizer, Workspace<double>& ws,
                        const Mat& x, const Mat& y, const std::int64_t* order, const TrainOptions& options) {
  return train_epoch<double>(net, optimizer, ws, ConstMatrixRef<double>(x),
                                                     ConstMatrixRef<double>(y), order, options);
}

Mat take_rows(const Mat& x, const std::vector<Index>& rows) {
  Mat out(Index(rows.size()), x.cols());
  for (std::size_t i = 0; i < rows.size(); ++i) out.row(Index(i)) = x.row(rows[i]);
  return out;
}

double squared_weights_of(const Network<double>& net) {
  double total = 0.0;
  for (const auto& layer : net.layers) total += layer.w.squaredNorm();
  return total;
}

// Sample weights in the epoch: within a batch a weight of 2 is the row given twice and 0 the row
// left out, whatever the optimizer (torch's SGD fused with the backward pass included); the L2
// penalty is λ/2 Σ‖W‖² / Σw before the step; a batch whose weights are all 0 is skipped.
void test_sample_weights_in_the_epoch() {
  std::mt19937_64 rng(51);
  Network<double> start({4, 5, 3}, {Activation::tanh, Activation::softmax}, Loss::cross_entropy);
  randomize(start, rng);
  const Mat x = random_matrix(6, 4, rng);
  const Mat y = one_hot_rows(6, 3, rng);
  const std::vector<double> weight = {1, 2, 0, 1, 3, 1};
  const std::vector<Index> copies = {0, 1, 1, 3, 4, 4, 4, 5};
  const Mat x_copies = take_rows(x, copies), y_copies = take_rows(y, copies);
  const auto make = [](int kind) -> std::unique_ptr<Optimizer<double>> {
    if (kind == 0) return std::make_unique<SGD<double>>(SGDHyperparameters{0.3, 0.9, false, 0.0});
    if (kind == 1) return std::make_unique<SklearnSGD<double>>(SklearnSGDHyperparameters{0.3, 0.9, true});
    return std::make_unique<SklearnAdam<double>>(SklearnAdamHyperparameters{0.05, 0.9, 0.999, 1e-8});
  };
  const char* names[] = {"SGD", "SklearnSGD", "SklearnAdam"};
  for (int kind = 0; kind < 3; ++kind) {
    for (const double l2 : {0.0, 0.2}) {
      const std::string name = cat(names[kind], " l2 ", l2);
      Network<double> weighted = start, repeated = start;
      const auto weighted_opt = make(kind), repeated_opt = make(kind);
      Workspace<double> weighted_ws, repeated_ws;
      TrainOptions weighted_options, repeated_options;
      weighted_options.batch_size = 6;
      weighted_options.sample_weight = weight.data();
      weighted_options.l2 = repeated_options.l2 = l2;
      repeated_options.batch_size = 8;
      for (int epoch = 0; epoch < 3; ++epoch) {
        const double penalty = 6 * 0.5 * l2 * squared_weights_of(weighted) / 8.0;
        const EpochResult a = dense_epoch(weighted, *weighted_opt, weighted_ws, x, y, nullptr, weighted_options);
        const EpochResult b = dense_epoch(repeated, *repeated_opt, repeated_ws, x_copies, y_copies, nullptr,
                                          repeated_options);
        CHECK(a.failed_batch == -1 && a.samples == 6 && a.batches == 1, cat(name, ": ", a.samples, " samples"));
        // each sum counts its batch's (weighted) mean m times
        CHECK(near(a.loss_sum / 6, b.loss_sum / 8, 1e-14, 0.0),
              cat(name, ": loss ", a.loss_sum / 6, " vs ", b.loss_sum / 8));
        CHECK(near(a.penalty_sum, penalty, 1e-14, 0.0) && near(a.penalty_sum / 6, b.penalty_sum / 8, 1e-14, 0.0),
              cat(name, ": penalty_sum ", a.penalty_sum, ", by hand ", penalty, ", repeated rows ", b.penalty_sum));
      }
      CHECK(max_parameter_diff(weighted, repeated) < 1e-14,
            cat(name, ": weights off by ", max_parameter_diff(weighted, repeated)));
      CHECK(max_parameter_diff(weighted, start) > 1e-3, cat(name, ": did not train"));
    }
  }

  // Batches [0, 3) and [6, 9) trained, [3, 6) of weight 0 skipped: no step, momentum untouched.
  const Mat x9 = random_matrix(9, 4, rng), y9 = one_hot_rows(9, 3, rng);
  const std::vector<double> weight9 = {1, 1, 1, 0, 0, 0, 1, 1, 1};
  const std::vector<Index> kept = {0, 1, 2, 6, 7, 8};
  for (int kind = 0; kind < 3; ++kind) {
    Network<double> skipping = start, kept_only = start;
    const auto skipping_opt = make(kind), kept_opt = make(kind);
    Workspace<double> ws_a, ws_b;
    TrainOptions options;
    options.batch_size = 3;
    options.l2 = 0.1;
    const EpochResult b =
        dense_epoch(kept_only, *kept_opt, ws_b, take_rows(x9, kept), take_rows(y9, kept), nullptr, options);
    options.sample_weight = weight9.data();
    const EpochResult a = dense_epoch(skipping, *skipping_opt, ws_a, x9, y9, nullptr, options);
    CHECK(a.samples == 9 && a.batches == 3 && a.failed_batch == -1 && skipping_opt->steps == 2,
          cat(names[kind], ": samples ", a.samples, " batches ", a.batches, " steps ", skipping_opt->steps));
    CHECK(near(a.loss_sum, b.loss_sum, 1e-14, 0.0) && near(a.penalty_sum, b.penalty_sum, 1e-14, 0.0),
          cat(names[kind], ": loss ", a.loss_sum, " vs ", b.loss_sum));
    CHECK(max_parameter_diff(skipping, kept_only) < 1e-15,
          cat(names[kind], ": a batch of weight 0 moved the weights by ", max_parameter_diff(skipping, kept_only)));
  }
}

// A scipy.sparse CSR matrix's arrays.
struct CsrArrays {
  std::vector<std::int64_t> indptr{0};
  std::vector<std::int32_t> indices;
  std::vector<double> data;
  Index cols = 0;

  CsrMatrix<double> matrix() const {
    return {indptr.data(), indices.data(), data.data(), Index(indptr.size()) - 1, cols};
  }
};

// x's nonzeros by row. With `split`, every third is stored as two halves, the second at the end of
// its row: a non-canonical CSR (columns repeated and out of order) that still adds up to x exactly.
CsrArrays csr_of(const Mat& x, bool split) {
  CsrArrays csr;
  csr.cols = x.cols();
  for (Index i = 0; i < x.rows(); ++i) {
    std::vector<std::pair<std::int32_t, double>> later;
    int seen = 0;
    for (Index j = 0; j < x.cols(); ++j) {
      if (x(i, j) == 0.0) continue;
      const bool halve = split && seen++ % 3 == 0;
      csr.indices.push_back(std::int32_t(j));
      csr.data.push_back(halve ? x(i, j) / 2 : x(i, j));
      if (halve) later.emplace_back(std::int32_t(j), x(i, j) / 2);
    }
    for (const auto& [j, v] : later) csr.indices.push_back(j), csr.data.push_back(v);
    csr.indptr.push_back(std::int64_t(csr.indices.size()));
  }
  return csr;
}

// train_epoch on a CSR x gives the weights of the dense x, whether each batch's nonzeros go to the
// sparse first layer or the batch is made dense (too many nonzeros, or a first layer narrower
// than a packet), with repeated and unordered columns, sample weights and L2.
void test_csr_epochs_match_dense() {
  struct Case {
    Index width;
    double density;
    bool sparse;  // whether the batches go through the sparse kernels
  };
  const Case cases[] = {{30, 0.05, true}, {30, 0.5, false}, {1, 0.05, false}};
  std::mt19937_64 rng(61);
  const Index n = 37, n_in = 60;
  for (const Case& c : cases) {
    for (const bool split : {false, true}) {
      for (const bool sklearn : {false, true}) {
        const std::string name = cat("width ", c.width, " density ", c.density, split ? " split" : "",
                                     sklearn ? " SklearnAdam, weights, l2" : " SGD");
        Network<double> start({n_in, c.width, 3}, {Activation::relu, Activation::softmax}, Loss::cross_entropy);
        randomize(start, rng);
        const Mat x = sparse_random<double>(n, n_in, c.density, rng);
        const Mat y = one_hot_rows(n, 3, rng);
        const CsrArrays csr = csr_of(x, split);
        std::vector<double> weight(static_cast<std::size_t>(n));
        for (auto& w : weight) w = std::uniform_real_distribution<double>(0.0, 2.0)(rng);
        TrainOptions options;
        options.batch_size = 8;
        if (sklearn) options.sample_weight = weight.data(), options.l2 = 0.1;
        const auto make = [&]() -> std::unique_ptr<Optimizer<double>> {
          const SklearnAdamHyperparameters adam{0.01, 0.9, 0.999, 1e-8};
          if (sklearn) return std::make_unique<SklearnAdam<double>>(adam);
          return std::make_unique<SGD<double>>(SGDHyperparameters{0.1, 0.9, false, 0.0});
        };
        Network<double> dense = start, sparse = start;
        const auto dense_opt = make(), sparse_opt = make();
        Workspace<double> dense_ws, sparse_ws;
        std::vector<std::int64_t> order(static_cast<std::size_t>(n));
        std::iota(order.begin(), order.end(), std::int64_t(0));
        for (int epoch = 0; epoch < 3; ++epoch) {
          std::shuffle(order.begin(), order.end(), rng);
          const EpochResult a = dense_epoch(dense, *dense_opt, dense_ws, x, y, order.data(), options);
          const EpochResult b = train_epoch<double>(
              sparse, *sparse_opt, sparse_ws, csr.matrix(), ConstMatrixRef<double>(y), order.data(), options);
          CHECK(b.failed_batch == -1 && b.samples == n, cat(name, ": failed_batch ", b.failed_batch));
          CHECK(near(a.loss_sum, b.loss_sum, 1e-12, 0.0) && near(a.penalty_sum, b.penalty_sum, 1e-12, 0.0),
                cat(name, ": loss ", b.loss_sum, " vs dense ", a.loss_sum));
          CHECK(sparse_ws.input_sparse == c.sparse,
                cat(name, ": the last batch was ", sparse_ws.input_sparse ? "" : "not ", "taken as sparse"));
        }
        CHECK(max_parameter_diff(dense, sparse) < 1e-12, cat(name, ": off by ", max_parameter_diff(dense, sparse)));
        CHECK(max_parameter_diff(dense, start) > 1e-3, cat(name, ": did not train"));
      }
    }
  }
}

FullGradient dense_full_gradient(LayerBuffers<double>& grads, Network<double>& net, const Mat& x, const Mat& y,
                                 const double* weight, double l2) {
  Workspace<double> ws;
  grads.w.resize(net.layers.size());
  grads.b.resize(net.layers.size());
  return full_gradient<double>(grads, net, ws, ConstMatrixRef<double>(x),
                                                       ConstMatrixRef<double>(y), weight, l2);
}

double max_gradient_diff(const LayerBuffers<double>& a, const LayerBuffers<double>& b) {
  double worst = 0.0;
  for (std::size_t l = 0; l < a.w.size(); ++l) {
    worst = std::max({worst, max_abs_diff(a.w[l], b.w[l]), max_abs_diff(a.b[l], b.b[l])});
  }
  return worst;
}

// full_gradient, scikit-learn's objective for lbfgs: the gradient of Σ w_i C_i / Σw + λ/2 Σ‖W‖² /
// Σw, by central finite differences; in chunks of full_gradient_chunk_rows the same as one pass
// over all rows; from a CSR x the same as from the dense x; a weight of 2 is a repeated row.
void test_full_gradient() {
  using A = Activation;
  struct Case {
    std::vector<Index> sizes;
    std::vector<Activation> activations;
    Loss loss;
  };
  const std::vector<Case> cases = {
      {{3, 4, 3}, {A::sigmoid, A::softmax}, Loss::cross_entropy},
      {{3, 5, 2}, {A::tanh, A::sigmoid}, Loss::cross_entropy},
      {{3, 4, 4, 2}, {A::relu, A::tanh, A::identity}, Loss::mse},
  };
  std::mt19937_64 rng(71);
  const std::vector<double> weight = {1, 0.5, 0, 2, 1.5, 1, 3};
  const double weight_sum = 9.0, l2 = 0.3;
  const Index m = 7;
  for (std::size_t k = 0; k < cases.size(); ++k) {
    Network<double> net(cases[k].sizes, cases[k].activations, cases[k].loss);
    randomize(net, rng);
    Mat x = random_matrix(m, net.n_in(), rng);
    for (int tries = 0; tries < 100 && distance_to_kink(net, x) < 1e-3; ++tries) x = random_matrix(m, net.n_in(), rng);
    const Mat y = targets_for(net, m, rng);
    const auto objective = [&](double* penalty_out) {
      Workspace<double> probe(net, m);
      forward<double>(probe, net, x);
      const std::size_t L = net.layers.size();
      double loss = 0.0;
      for (Index i = 0; i < m; ++i) {
        loss += weight[std::size_t(i)] * loss_sum<double>(net.loss, net.layers[L - 1].activation,
                                                          probe.z[L - 1].row(i), probe.a[L - 1].row(i), y.row(i));
      }
      const double penalty = 0.5 * l2 * squared_weights_of(net) / weight_sum;
      if (penalty_out) *penalty_out = penalty;
      return loss / weight_sum + penalty;
    };
    LayerBuffers<double> grads;
    const FullGradient result = dense_full_gradient(grads, net, x, y, weight.data(), l2);
    double penalty = 0.0;
    const double total = objective(&penalty);
    CHECK(near(result.loss, total - penalty, 1e-14, 0.0) && near(result.penalty, penalty, 1e-14, 0.0),
          cat("case ", k, ": loss ", result.loss, " penalty ", result.penalty, ", want ", total - penalty, " ",
              penalty));
    Workspace<double> holder(net, 1);
    for (std::size_t l = 0; l < net.layers.size(); ++l) holder.dw[l] = grads.w[l], holder.db[l] = grads.b[l];
    const std::string mismatch = compare_with_finite_differences(net, holder, [&] { return objective(nullptr); });
    CHECK(mismatch.empty(), cat("case ", k, ": ", mismatch));
  }

  // Three chunks against one pass, weighted, dense and CSR
  Network<double> net({40, 30, 3}, {Activation::relu, Activation::softmax}, Loss::cross_entropy);
  randomize(net, rng);
  const Index n = 2 * full_gradient_chunk_rows + 77;
  const Mat x = sparse_random<double>(n, 40, 0.1, rng);
  const Mat y = one_hot_rows(n, 3, rng);
  std::vector<double> weights(static_cast<std::size_t>(n));
  for (auto& w : weights) w = rng() % 5 == 0 ? 0.0 : std::uniform_real_distribution<double>(0.1, 2.0)(rng);
  const double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
  Workspace<double> whole(net, n);
  whole.rows_scaled = true;
  for (Index i = 0; i < n; ++i) whole.row_scale[std::size_t(i)] = weights[std::size_t(i)] / sum;
  forward<double>(whole, net, x);
  const double whole_loss = batch_loss_sum<double>(whole, net, y);
  backward<double>(whole, net, x, y);
  LayerBuffers<double> one_pass;
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    one_pass.w.push_back(whole.dw[l] + (0.2 / sum) * net.layers[l].w);
    one_pass.b.push_back(whole.db[l]);
  }
  LayerBuffers<double> chunked, from_csr;
  const FullGradient chunked_result = dense_full_gradient(chunked, net, x, y, weights.data(), 0.2);
  CHECK(near(chunked_result.loss, whole_loss, 1e-12, 0.0),
        cat("chunks: loss ", chunked_result.loss, " vs ", whole_loss));
  CHECK(max_gradient_diff(chunked, one_pass) < 1e-12, cat("chunks: off by ", max_gradient_diff(chunked, one_pass)));
  const CsrArrays csr = csr_of(x, true);
  Workspace<double> csr_ws;
  from_csr.w.resize(2), from_csr.b.resize(2);
  const FullGradient csr_result = full_gradient<double>(
      from_csr, net, csr_ws, csr.matrix(), ConstMatrixRef<double>(y), weights.data(), 0.2);
  CHECK(csr_ws.input_sparse, "the CSR chunks were not taken as sparse");
  CHECK(near(csr_result.loss, chunked_result.loss, 1e-12, 0.0) &&
            near(csr_result.penalty, chunked_result.penalty, 1e-14, 0.0),
        cat("CSR: loss ", csr_result.loss, " vs ", chunked_result.loss));
  CHECK(max_gradient_diff(from_csr, chunked) < 1e-12, cat("CSR: off by ", max_gradient_diff(from_csr, chunked)));

  // A weight of 2 is a repeated row, 0 a row left out
  const Mat x6 = x.topRows(6), y6 = y.topRows(6);
  const std::vector<double> weight6 = {1, 2, 0, 1, 1, 1};
  const std::vector<Index> rows = {0, 1, 1, 3, 4, 5};
  LayerBuffers<double> weighted, repeated;
  const FullGradient a = dense_full_gradient(weighted, net, x6, y6, weight6.data(), 0.2);
  const FullGradient b = dense_full_gradient(repeated, net, take_rows(x6, rows), take_rows(y6, rows), nullptr, 0.2);
  CHECK(near(a.loss, b.loss, 1e-14, 0.0) && near(a.penalty, b.penalty, 1e-14, 0.0),
        cat("repeated row: loss ", a.loss, " vs ", b.loss, ", penalty ", a.penalty, " vs ", b.penalty));
  CHECK(max_gradient_diff(weighted, repeated) < 1e-14,
        cat("repeated row: off by ", max_gradient_diff(weighted, repeated)));
}

struct Test {
  const char* name;
  void (*run)();
};

const Test tests[] = {
    {"activations", test_activations},
    {"losses", test_losses},
    {"backward_matches_finite_differences", test_backward_matches_finite_differences},
    {"network_validation", test_network_validation},
    {"predict_in_chunks", test_predict_in_chunks},
    {"predict_on_threads_matches_one_thread", test_predict_on_threads_matches_one_thread},
    {"sgd", test_sgd},
    {"train_epoch", test_train_epoch},
    {"fused_sgd_matches_separate_step", test_fused_sgd_matches_separate_step},
    {"workspace_reserve", test_workspace_reserve},
    {"xor_learns", test_xor_learns},
    {"gemm_kernels_match_oracle", test_gemm_kernels_match_oracle},
    {"sparse_kernels_match_dense", test_sparse_kernels_match_dense},
    {"epoch_on_line_aligned_weights", test_epoch_on_line_aligned_weights},
    {"threaded_optimizer_steps_match_one_thread", test_threaded_optimizer_steps_match_one_thread},
    {"dropout", test_dropout},
    {"sklearn_sgd", test_sklearn_sgd},
    {"sklearn_adam", test_sklearn_adam},
    {"sample_weights_in_the_epoch", test_sample_weights_in_the_epoch},
    {"csr_epochs_match_dense", test_csr_epochs_match_dense},
    {"full_gradient", test_full_gradient},
};

}  // namespace

int main() {
#if defined(FASTGD_TESTS_NEED_AVX2)
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::printf("skipped: this CPU lacks AVX2 or FMA\n");
    return 77;
  }
#endif
  int passed = 0, failed = 0;
  for (const Test& test : tests) {
    failed_checks_in_test = 0;
    try {
      test.run();
    } catch (const std::exception& error) {
      ++failed_checks_in_test;
      std::printf("%s threw %s\n", test.name, error.what());
    } catch (...) {
      ++failed_checks_in_test;
      std::printf("%s threw an exception not derived from std::exception\n", test.name);
    }
    if (failed_checks_in_test == 0) {
      ++passed;
      std::printf("ok   %s\n", test.name);
    } else {
      ++failed;
      std::printf("FAIL %s (%d failed checks)\n", test.name, failed_checks_in_test);
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
