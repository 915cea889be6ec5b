// phototag's libtorch shim: what tch 0.26 has no binding for.
//
// Loads a TorchScript module from memory, freezes it and applies
// torch::jit::optimize_for_inference (conv/BN folding, conv+add+relu fusion, oneDNN layouts),
// and runs its forward under InferenceMode. The module pointer is the same type tch's
// `CModule_` wraps (torch::jit::script::Module*), freed with phototag_module_free.
// No C++ exception crosses this boundary: each call reports failure through `err`.

#include <torch/script.h>
#include <torch/csrc/jit/api/module.h>

#include <cstdio>
#include <sstream>
#include <string>

namespace {
void set_error(char *err, size_t err_len, const char *what) {
  if (err != nullptr && err_len > 0) {
    std::snprintf(err, err_len, "%s", what);
  }
}
} // namespace

extern "C" {

// Loads the module held in data[0..len) on the CPU, in eval mode; when `optimize` is not 0
// it is frozen and optimised for inference. Null on failure, with the reason in err.
void *phototag_module_load(const char *data, size_t len, int optimize, char *err,
                           size_t err_len) {
  try {
    std::istringstream stream(std::string(data, len));
    torch::jit::Module module = torch::jit::load(stream, torch::kCPU);
    module.eval();
    if (optimize != 0) {
      torch::jit::Module frozen = torch::jit::freeze(module);
      module = torch::jit::optimize_for_inference(frozen);
    }
    return new torch::jit::Module(std::move(module));
  } catch (const std::exception &e) {
    set_error(err, err_len, e.what());
  } catch (...) {
    set_error(err, err_len, "unknown C++ exception");
  }
  return nullptr;
}

// forward(input) -> a new tensor (tch's C_tensor), or null with the reason in err.
void *phototag_module_forward(void *module, void *input, char *err, size_t err_len) {
  try {
    auto *m = static_cast<torch::jit::Module *>(module);
    auto *x = static_cast<at::Tensor *>(input);
    at::Tensor t;
    {
      c10::InferenceMode guard;
      std::vector<torch::jit::IValue> args{*x};
      torch::jit::IValue out = m->forward(args);
      if (!out.isTensor()) {
        set_error(err, err_len, "forward did not return a tensor");
        return nullptr;
      }
      t = out.toTensor();
      if (t.is_mkldnn()) {
        t = t.to_dense();
      }
    }
    // Copied outside InferenceMode, so callers may use the result like any other tensor
    // (the logits of a batch: a few kilobytes).
    return new at::Tensor(t.clone());
  } catch (const std::exception &e) {
    set_error(err, err_len, e.what());
  } catch (...) {
    set_error(err, err_len, "unknown C++ exception");
  }
  return nullptr;
}

void phototag_module_free(void *module) { delete static_cast<torch::jit::Module *>(module); }

} // extern "C"
