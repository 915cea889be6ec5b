// phototag's libtorch shim: what tch 0.26 has no binding for.
//
// Loads a TorchScript module from memory (without copying the caller's bytes), freezes it
// and applies torch::jit::optimize_for_inference when asked (conv/BN folding, conv+add+relu
// fusion, oneDNN layouts), and runs its forward under InferenceMode. The module pointer is the same type tch's
// `CModule_` wraps (torch::jit::script::Module*), freed with phototag_module_free.
// No C++ exception crosses this boundary: each call reports failure through `err`.

#include <torch/script.h>
#include <torch/csrc/jit/api/module.h>

#include <cstdio>
#include <istream>
#include <streambuf>
#include <string>

namespace {
void set_error(char *err, size_t err_len, const char *what) {
  if (err != nullptr && err_len > 0) {
    std::snprintf(err, err_len, "%s", what);
  }
}

// A read-only stream buffer over memory the caller keeps alive: the module is read from
// the caller's bytes without copying them (an istringstream holds two more copies of a
// 45 MB model at the peak of loading).
class MemoryBuf : public std::streambuf {
public:
  MemoryBuf(const char *data, size_t len) {
    char *p = const_cast<char *>(data);
    setg(p, p, p + len);
  }

protected:
  pos_type seekoff(off_type off, std::ios_base::seekdir dir,
                   std::ios_base::openmode which) override {
    if ((which & std::ios_base::in) == 0) {
      return pos_type(off_type(-1));
    }
    char *base = eback();
    char *target = dir == std::ios_base::beg   ? base + off
                   : dir == std::ios_base::cur ? gptr() + off
                                               : egptr() + off;
    if (target < base || target > egptr()) {
      return pos_type(off_type(-1));
    }
    setg(base, target, egptr());
    return pos_type(target - base);
  }
  pos_type seekpos(pos_type pos, std::ios_base::openmode which) override {
    return seekoff(off_type(pos), std::ios_base::beg, which);
  }
};
} // namespace

extern "C" {

// Loads the module held in data[0..len) on the CPU, in eval mode, as saved. Null on
// failure, with the reason in err. The caller may free data as soon as this returns.
void *phototag_module_load(const char *data, size_t len, char *err, size_t err_len) {
  try {
    MemoryBuf buf(data, len);
    std::istream stream(&buf);
    torch::jit::Module module = torch::jit::load(stream, torch::kCPU);
    module.eval();
    return new torch::jit::Module(std::move(module));
  } catch (const std::exception &e) {
    set_error(err, err_len, e.what());
  } catch (...) {
    set_error(err, err_len, "unknown C++ exception");
  }
  return nullptr;
}

// Replaces a loaded module by its frozen form (constants inlined, batch norms folded into
// the convolutions) passed through optimize_for_inference (conv+add+relu fusion, weights
// prepacked in oneDNN's layouts). Returns 0, or -1 with the reason in err and the module
// as it was or frozen (either runs, with the same outputs).
int phototag_module_optimize(void *module, char *err, size_t err_len) {
  try {
    auto *m = static_cast<torch::jit::Module *>(module);
    // Each step replaces the one before, so that at most two copies of the weights are
    // alive at once.
    torch::jit::Module frozen = torch::jit::freeze(*m);
    *m = frozen;
    frozen = torch::jit::Module();
    torch::jit::Module optimized = torch::jit::optimize_for_inference(*m);
    *m = optimized;
    return 0;
  } catch (const std::exception &e) {
    set_error(err, err_len, e.what());
  } catch (...) {
    set_error(err, err_len, "unknown C++ exception");
  }
  return -1;
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
