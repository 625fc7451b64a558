// libtorch helpers of src/runtime.rs (C entry points, tensors as tch's `at::Tensor*`):
//
// * the op census of `nequip benchmark --op-census`: counts the ATen operators (and autograd
//   backward nodes) dispatched between start and stop through libtorch's RecordFunction
//   callbacks, the same hook torch.profiler uses. Nested calls are counted too (an
//   aten::linear also counts its aten::matmul), so the table shows where dispatch goes;
// * `backward(loss, inputs=...)`: gradients accumulated into the given leaves only.
#include <ATen/record_function.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cstdio>
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace {
std::mutex mu;
std::unordered_map<std::string, long> counts;
at::CallbackHandle handle = 0;

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  std::lock_guard<std::mutex> g(mu);
  const char* scope = fn.scope() == at::RecordScope::BACKWARD_FUNCTION ? "[bwd] " : "";
  counts[std::string(scope) + fn.name()] += 1;
  return nullptr;
}
}  // namespace

extern "C" void nequip_op_census_start() {
  std::lock_guard<std::mutex> g(mu);
  counts.clear();
  if (handle == 0) {
    handle = at::addGlobalCallback(
        at::RecordFunctionCallback(on_start)
            .needsInputs(false)
            .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION}));
  }
}

// Stops counting and writes "count\tname\n" lines, most frequent first, into buf (truncated
// to cap - 1 bytes, NUL-terminated). Returns the full length of the table.
extern "C" size_t nequip_op_census_stop(char* buf, size_t cap) {
  std::lock_guard<std::mutex> g(mu);
  if (handle != 0) {
    at::removeCallback(handle);
    handle = 0;
  }
  std::vector<std::pair<std::string, long>> rows(counts.begin(), counts.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::string out;
  for (const auto& r : rows) out += std::to_string(r.second) + "\t" + r.first + "\n";
  if (cap > 0) {
    size_t n = std::min(out.size(), cap - 1);
    std::memcpy(buf, out.data(), n);
    buf[n] = 0;
  }
  return out.size();
}

// torch.autograd.backward([loss], inputs=inputs): accumulates d loss / d input into each
// input's .grad and runs only the part of the graph that leads to them (a force loss then
// skips every path back to the positions). Returns 0, or 1 with the message in err.
extern "C" int nequip_backward_to(const at::Tensor* loss, const at::Tensor* const* inputs,
                                  size_t n_inputs, char* err, size_t err_len) {
  try {
    torch::autograd::variable_list in;
    in.reserve(n_inputs);
    for (size_t i = 0; i < n_inputs; ++i) in.push_back(*inputs[i]);
    torch::autograd::backward({*loss}, {}, /*retain_graph=*/false, /*create_graph=*/false, in);
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(err, err_len, "%s", e.what());
    return 1;
  }
}
