"""nnc_model -- run a model compiled by `nnc build --shared` from Python.

    nnc build examples/mlp.nn --shared -o libmlp.so -D N=64

    import numpy as np, nnc_model
    m = nnc_model.Model("./libmlp.so")
    m.init(seed=1)                          # or m.load("w.safetensors")
    out = m.forward(x=np.zeros((100, 784), np.float32))   # {"logits": array [100, 10]}
    loss = m.train_step(x=xb, label=yb)     # one optimizer step on one batch of m.batch
    m.save("w2.safetensors")

The library exports the runtime's embedding API (rt_ctx_*, docs/cli.md "Embedding") and the
model's descriptor `nnc_model_<NAME>`; this module reads the descriptor with ctypes, so it
knows every input and output by name, dtype and shape, and needs nothing but NumPy.
"""
import ctypes
import os

import numpy as np

__all__ = ["Model", "NncError"]

RT_MODEL_ABI = 11
KIND_PARAM, KIND_BUFFER, KIND_OPTSTATE, KIND_INPUT, KIND_OUTPUT, KIND_LOSS = range(6)
_DTYPES = {0: np.float32, 3: np.int32}  # nn_dtype.h: DT_F32 = 0, DT_I32 = 3


class NncError(RuntimeError):
    """An error reported by the nnc runtime (bad file, wrong shape, ...)."""


class _TensorInfo(ctypes.Structure):  # runtime/rt_model.h RtTensorInfo
    _fields_ = [("name", ctypes.c_char_p), ("kind", ctypes.c_int32), ("dtype", ctypes.c_int32),
                ("rank", ctypes.c_int32), ("init", ctypes.c_int32), ("shape", ctypes.c_int64 * 8),
                ("offset", ctypes.c_int64), ("nbytes", ctypes.c_int64),
                ("init_a", ctypes.c_double), ("init_b", ctypes.c_double),
                ("index_bound", ctypes.c_int64), ("index_kind", ctypes.c_int32)]


class _ModelDesc(ctypes.Structure):  # runtime/rt_model.h RtModelDesc (leading fields)
    _fields_ = [("abi", ctypes.c_int32), ("ntensors", ctypes.c_int32), ("name", ctypes.c_char_p),
                ("tensors", ctypes.POINTER(_TensorInfo)), ("params_bytes", ctypes.c_int64),
                ("io_bytes", ctypes.c_int64), ("arena_bytes_forward", ctypes.c_int64),
                ("arena_bytes_train", ctypes.c_int64), ("batch", ctypes.c_int64),
                ("forward", ctypes.c_void_p), ("train_step", ctypes.c_void_p)]


class _Tensor:
    def __init__(self, info):
        self.name = info.name.decode()
        self.kind = info.kind
        if info.dtype not in _DTYPES:
            raise NncError(f"tensor '{self.name}': unsupported dtype {info.dtype}")
        self.dtype = np.dtype(_DTYPES[info.dtype])
        self.shape = tuple(info.shape[k] for k in range(info.rank))


def _declare(lib):
    p, i64, c = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    sig = {"rt_ctx_create": (p, [p, c, ctypes.c_char_p, ctypes.c_size_t]),
           "rt_ctx_destroy": (None, [p]), "rt_ctx_error": (ctypes.c_char_p, [p]),
           "rt_ctx_init": (c, [p, ctypes.c_uint64]),
           "rt_ctx_load": (c, [p, ctypes.c_char_p, ctypes.POINTER(c)]),
           "rt_ctx_save": (c, [p, ctypes.c_char_p, ctypes.c_char_p]),
           "rt_ctx_infer": (c, [p, i64, ctypes.POINTER(p), ctypes.POINTER(p)]),
           "rt_ctx_train_step": (c, [p, ctypes.POINTER(p), ctypes.POINTER(ctypes.c_float)])}
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args


class Model:
    """A compiled model: `Model("./libNAME.so")`, or `Model(path, name="NAME")` when the
    library file is named differently."""

    def __init__(self, path, name=None, threads=0):
        self._lib = ctypes.CDLL(os.path.abspath(path))
        _declare(self._lib)
        if name is None:
            base = os.path.basename(path)
            name = base[3:] if base.startswith("lib") else base
            name = name.split(".")[0]
        # a library built with --target cuda|cuda-emu holds the CPU descriptor and the CUDA
        # one, nnc_model_<NAME>_cuda: the build's backend is the CUDA one
        for sym in ("nnc_model_" + name + "_cuda", "nnc_model_" + name):
            try:
                self._desc = _ModelDesc.in_dll(self._lib, sym)
                break
            except ValueError:
                pass
        else:
            raise NncError(f"{path}: no model '{name}' in it (pass name=...)")
        if self._desc.abi != RT_MODEL_ABI:
            raise NncError(f"{path}: descriptor ABI {self._desc.abi}, expected {RT_MODEL_ABI}")
        tensors = [_Tensor(self._desc.tensors[k]) for k in range(self._desc.ntensors)]
        self.name = self._desc.name.decode()
        self.batch = self._desc.batch
        self.inputs = [t for t in tensors if t.kind == KIND_INPUT]
        self.outputs = [t for t in tensors if t.kind == KIND_OUTPUT]
        self.params = [t for t in tensors if t.kind == KIND_PARAM]
        err = ctypes.create_string_buffer(512)
        self._ctx = self._lib.rt_ctx_create(ctypes.byref(self._desc), threads, err, 512)
        if not self._ctx:
            raise NncError(err.value.decode() or "cannot create the model context")

    def __del__(self):
        if getattr(self, "_ctx", None):
            self._lib.rt_ctx_destroy(self._ctx)
            self._ctx = None

    def _check(self, rc):
        if rc:
            raise NncError((self._lib.rt_ctx_error(self._ctx) or b"error").decode())

    def init(self, seed=0):
        """Parameters from their initializers, seeded (as `NAME init --seed S`)."""
        self._check(self._lib.rt_ctx_init(self._ctx, seed))

    def load(self, path):
        """Parameters (and optimizer state, when present) from a safetensors file."""
        self._check(self._lib.rt_ctx_load(self._ctx, os.fsencode(path), None))

    def save(self, path):
        """Parameters, buffers and optimizer state as safetensors (written atomically)."""
        self._check(self._lib.rt_ctx_save(self._ctx, os.fsencode(path), None))

    def _arrays(self, tensors, given, n):
        """One C-contiguous array per tensor, rows = n samples (None for absent inputs)."""
        out = []
        for t in tensors:
            a = given.get(t.name)
            if a is None:
                out.append(None)
                continue
            a = np.ascontiguousarray(a, dtype=t.dtype)
            if a.shape[1:] != t.shape[1:] or (n is not None and a.shape[0] != n):
                raise NncError(f"input '{t.name}': shape {a.shape}, expected "
                               f"({n if n is not None else 'n'}, {', '.join(map(str, t.shape[1:]))})")
            out.append(a)
        return out

    def forward(self, **inputs):
        """The forward pass over any number of samples (rows); returns {output: array}.
        Only the inputs the outputs depend on are needed."""
        unknown = set(inputs) - {t.name for t in self.inputs}
        if unknown:
            raise NncError(f"unknown inputs {sorted(unknown)}; the model's are "
                           f"{[t.name for t in self.inputs]}")
        n = next(iter(inputs.values())).shape[0] if inputs else self.batch
        ins = self._arrays(self.inputs, inputs, n)
        outs = [np.empty((n,) + t.shape[1:], t.dtype) for t in self.outputs]
        pin = (ctypes.c_void_p * max(1, len(ins)))(*[a.ctypes.data if a is not None else None for a in ins])
        pout = (ctypes.c_void_p * max(1, len(outs)))(*[a.ctypes.data for a in outs])
        self._check(self._lib.rt_ctx_infer(self._ctx, n, pin, pout))
        return {t.name: a for t, a in zip(self.outputs, outs)}

    def train_step(self, **inputs):
        """One step of the model's optimizer on one batch (every input, `batch` rows);
        returns the loss."""
        if not self._desc.train_step:
            raise NncError(f"model '{self.name}' has no train section")
        missing = [t.name for t in self.inputs if t.name not in inputs]
        if missing:
            raise NncError(f"train_step needs every input; missing {missing}")
        ins = self._arrays(self.inputs, inputs, self.batch)
        pin = (ctypes.c_void_p * len(ins))(*[a.ctypes.data for a in ins])
        loss = ctypes.c_float()
        self._check(self._lib.rt_ctx_train_step(self._ctx, pin, ctypes.byref(loss)))
        return float(loss.value)
