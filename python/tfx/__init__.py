"""tfx — run models compiled by tfxc from Python (a ctypes binding of the
runtime API, include/tfx/tfx.h and include/tfx/tokenizer.h).

A model compiled with ``tfxc model.tfx -o model.so`` carries the runtime, so
the binding needs no other library: the functions are the model's own.

    import tfx
    with tfx.Model("model.so") as m:
        print(m.name, m.info.vocab, m.info.max_seq, m.cpu_features)
        ids = m.generate([1], 16, temperature=0)       # greedy, from BOS
        s = m.session()
        logits = s.forward([1, 5, 9])                   # numpy float32 [vocab]
        tok = m.tokenizer("tokenizer.bin")   # or m.tokenizer(): the one it embeds
        print(tok.decode(ids))

Errors are tfx.Error (with .code, a tfx_status, and the runtime's message).
Each object keeps the library it came from: sessions and tokenizers of one
model are not mixed with another's.
"""

import ctypes
import os

import numpy as np

__all__ = ["Error", "Model", "ModelInfo", "Session", "Sampler", "Tokenizer", "OPEN_VERIFY", "OPEN_MAP_WEIGHTS"]

OPEN_VERIFY = 1
OPEN_MAP_WEIGHTS = 2  # keep the weights in the file's mapping (tfx.h TFX_OPEN_MAP_WEIGHTS)
INPUT_TOKENS, INPUT_F32, INPUT_I32 = 0, 1, 2

_p = ctypes.c_void_p
_i32 = ctypes.c_int32
_sz = ctypes.c_size_t


class Error(RuntimeError):
    """A failed runtime call: .code is the tfx_status (negative)."""

    def __init__(self, code, message):
        super().__init__("%s (%d)" % (message, code))
        self.code = code


class ModelInfo(ctypes.Structure):
    """struct tfx_model_info (tfx.h), read through tfx_model_info()."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("abi_version", ctypes.c_uint32),
        ("input_kind", _i32),
        ("input_width", _i32),
        ("output_width", _i32),
        ("vocab", _i32),
        ("max_seq", _i32),
        ("has_kv_cache", _i32),
        ("threads", _i32),
        ("has_batch", _i32),
        ("arena_bytes", ctypes.c_uint64),
        ("kv_bytes", ctypes.c_uint64),
        ("weights_bytes", ctypes.c_uint64),
        ("cpu_arch", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("cpu_features", ctypes.c_uint64),
        ("bos_id", _i32),
        ("eos_id", _i32),
        ("pad_id", _i32),
        ("reserved2", ctypes.c_uint32),
        ("tokenizer_bytes", ctypes.c_uint64),
        ("n_inputs", _i32),
        ("reserved3", ctypes.c_uint32),
        ("weights_pages", _i32),
        ("reserved4", ctypes.c_uint32),
    ]

    def as_dict(self):
        skip = ("struct_size", "reserved", "reserved2", "reserved3", "reserved4")
        return {k: getattr(self, k) for k, _ in self._fields_ if k not in skip}

    def __repr__(self):
        return "ModelInfo(%s)" % ", ".join("%s=%r" % kv for kv in self.as_dict().items())


class _InputInfo(ctypes.Structure):
    """tfx_input_info (tfx.h), read through tfx_model_input()."""

    _fields_ = [("name", ctypes.c_char_p), ("kind", _i32), ("width", _i32), ("vocab", _i32), ("rows", _i32)]


class _Input(ctypes.Structure):
    """tfx_input (tfx.h): one input of tfx_forward_inputs."""

    _fields_ = [("name", ctypes.c_char_p), ("data", _p), ("rows", _i32)]


class _SamplerStruct(ctypes.Structure):
    _fields_ = [("temperature", ctypes.c_float), ("top_p", ctypes.c_float), ("rng_state", ctypes.c_uint64)]


def _declare(lib):
    """The prototypes of the functions the binding calls."""
    sigs = {
        "tfx_error_message": (ctypes.c_char_p, [ctypes.c_int]),
        "tfx_model_open_flags": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_uint, ctypes.POINTER(_p), ctypes.c_char_p, _sz]),
        "tfx_model_close": (None, [_p]),
        "tfx_model_name": (ctypes.c_char_p, [_p]),
        "tfx_model_info": (ctypes.c_int, [_p, ctypes.POINTER(ModelInfo)]),
        "tfx_model_cpu_features": (ctypes.c_int, [_p, ctypes.c_char_p, _sz]),
        "tfx_session_create": (ctypes.c_int, [_p, ctypes.POINTER(_i32), ctypes.POINTER(_p)]),
        "tfx_session_free": (None, [_p]),
        "tfx_session_reset": (None, [_p]),
        "tfx_session_position": (_i32, [_p]),
        "tfx_session_threads": (_i32, [_p]),
        "tfx_session_last_error": (ctypes.c_char_p, [_p]),
        "tfx_forward_ex": (ctypes.c_int, [_p, _p, _i32, _p, ctypes.c_int]),
        "tfx_forward_f32_ex": (ctypes.c_int, [_p, _p, _i32, _p, ctypes.c_int]),
        "tfx_model_input": (ctypes.c_int, [_p, _i32, ctypes.POINTER(_InputInfo)]),
        "tfx_forward_inputs": (ctypes.c_int, [_p, ctypes.POINTER(_Input), _i32, _i32, _p, ctypes.c_int]),
        "tfx_sampler_init": (None, [ctypes.POINTER(_SamplerStruct), ctypes.c_float, ctypes.c_float, ctypes.c_uint64]),
        "tfx_sample": (_i32, [ctypes.POINTER(_SamplerStruct), _p, _i32]),
        "tfx_tokenizer_open": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(_p), ctypes.c_char_p, _sz]),
        "tfx_tokenizer_close": (None, [_p]),
        "tfx_model_tokenizer": (ctypes.c_int, [_p, ctypes.POINTER(_p), ctypes.c_char_p, _sz]),
        "tfx_tokenizer_vocab_size": (ctypes.c_int, [_p]),
        "tfx_tokenizer_bos": (ctypes.c_int, [_p]),
        "tfx_tokenizer_eos": (ctypes.c_int, [_p]),
        "tfx_tokenizer_encode": (ctypes.c_int, [_p, ctypes.c_char_p, _sz, ctypes.c_int, _p, ctypes.c_int]),
        "tfx_tokenizer_decode": (ctypes.c_int, [_p, _p, ctypes.c_int, ctypes.c_char_p, _sz]),
    }
    for name, (res, args) in sigs.items():
        try:
            f = getattr(lib, name)
        except AttributeError:
            continue  # an older runtime: the feature is missing, found when used
        f.restype = res
        f.argtypes = args


def _check(lib, rc, detail=b""):
    if rc < 0:
        msg = detail.decode("utf-8", "replace") if detail else lib.tfx_error_message(rc).decode()
        raise Error(rc, msg)
    return rc


class Model:
    """A model compiled to a shared library (tfxc -o model.so)."""

    def __init__(self, path, verify=False, map_weights=False):
        path = os.path.abspath(os.fspath(path))
        self._lib = None
        self._handle = None
        try:
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
        except OSError as e:
            raise Error(-3, "cannot load %s: %s" % (path, e)) from None
        _declare(lib)
        if not hasattr(lib, "tfx_model_info"):
            raise Error(-5, "%s: its runtime has no tfx_model_info (compiled by an older tfxc)" % path)
        self._lib = lib
        self.path = path
        h = _p()
        err = ctypes.create_string_buffer(1024)
        flags = (OPEN_VERIFY if verify else 0) | (OPEN_MAP_WEIGHTS if map_weights else 0)
        rc = lib.tfx_model_open_flags(path.encode(), flags, ctypes.byref(h), err, 1024)
        _check(lib, rc, err.value)
        self._handle = h
        info = ModelInfo()
        info.struct_size = ctypes.sizeof(ModelInfo)
        _check(lib, lib.tfx_model_info(h, ctypes.byref(info)))
        self.info = info

    @property
    def name(self):
        return self._lib.tfx_model_name(self._handle).decode()

    @property
    def inputs(self):
        """The forward's inputs: [{"name", "kind", "width", "vocab", "rows"}] (one for most models;
        rows > 0: a source of up to rows rows given per call)."""
        res = []
        for i in range(max(getattr(self.info, "n_inputs", 1), 1)):
            ii = _InputInfo()
            _check(self._lib, self._lib.tfx_model_input(self._handle, i, ctypes.byref(ii)))
            res.append({"name": ii.name.decode(), "kind": ii.kind, "width": ii.width, "vocab": ii.vocab, "rows": ii.rows})
        return res

    @property
    def cpu_features(self):
        """The CPU features the model's code needs (LLVM names)."""
        n = self._lib.tfx_model_cpu_features(self._handle, None, 0)
        buf = ctypes.create_string_buffer(n + 1)
        self._lib.tfx_model_cpu_features(self._handle, buf, n + 1)
        return buf.value.decode().split()

    def session(self, threads=0):
        return Session(self, threads)

    def tokenizer(self, path=None):
        """A tokenizer file; with no path, the one the model embeds (tfxc --tokenizer), or None."""
        if path is None and not self.info.tokenizer_bytes:
            return None
        return Tokenizer(self, path)

    def generate(self, prompt, n, temperature=0.0, top_p=0.9, seed=42, threads=0, stop=(1,)):
        """Feeds prompt (ids, BOS included) and generates up to n ids,
        sampling as tfxc run does; stops at an id of stop. Returns the new ids."""
        s = self.session(threads)
        try:
            sampler = Sampler(self, temperature, top_p, seed)
            logits = s.forward(prompt)
            out = []
            while len(out) < n:
                nxt = sampler.sample(logits)
                if nxt in stop:
                    break
                out.append(nxt)
                if len(out) == n or s.position >= self.info.max_seq:
                    break
                logits = s.forward([nxt])
            return out
        finally:
            s.close()

    def close(self):
        if self._handle:
            self._lib.tfx_model_close(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Session:
    """A session: its position, KV cache and threads (tfx_session)."""

    def __init__(self, model, threads=0):
        if not model._handle:
            raise Error(-1, "the model is closed")
        self.model = model
        self._lib = model._lib
        self._handle = None
        opts = (_i32 * 1)(threads)
        h = _p()
        _check(self._lib, self._lib.tfx_session_create(model._handle, opts, ctypes.byref(h)))
        self._handle = h

    def _fail(self, rc):
        _check(self._lib, rc, self._lib.tfx_session_last_error(self._handle))

    def forward(self, tokens, last_only=True):
        """Runs the ids (a sequence or an int32 array) at the session's position;
        returns the last row's logits [output_width], or every row's [n, output_width]."""
        t = np.ascontiguousarray(np.asarray(tokens, dtype=np.int32).reshape(-1))
        if t.size == 0:
            raise Error(-1, "forward needs at least one token")
        w = self.model.info.output_width
        out = np.empty((w,) if last_only else (t.size, w), dtype=np.float32)
        rc = self._lib.tfx_forward_ex(self._handle, t.ctypes.data, t.size, out.ctypes.data, 1 if last_only else 0)
        if rc:
            self._fail(rc)
        return out

    def forward_f32(self, x, last_only=False):
        """For a model taking f32[T, D]: x is [n, input_width]."""
        a = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        d = self.model.info.input_width
        a = a.reshape(-1, d)
        w = self.model.info.output_width
        out = np.empty((w,) if last_only else (a.shape[0], w), dtype=np.float32)
        rc = self._lib.tfx_forward_f32_ex(self._handle, a.ctypes.data, a.shape[0], out.ctypes.data, 1 if last_only else 0)
        if rc:
            self._fail(rc)
        return out

    def forward_inputs(self, inputs, last_only=False):
        """For a model of several inputs (Model.inputs): inputs maps each
        input's name to its n values (int32 ids or a mask, or float rows;
        a source, rows > 0 in Model.inputs, its own 1..rows values, given
        again with every call); returns every row's outputs [n,
        output_width], or the last row's."""
        if not hasattr(self._lib, "tfx_forward_inputs"):
            raise Error(-5, "this model's runtime has no tfx_forward_inputs (compiled by an older tfxc)")
        kinds = {i["name"]: i for i in self.model.inputs}
        arrays, entries = [], []
        for name, values in inputs.items():
            info = kinds.get(name)
            dtype = np.float32 if info is not None and info["kind"] == INPUT_F32 else np.int32
            a = np.ascontiguousarray(np.asarray(values, dtype=dtype))
            if info is not None and info["width"] > 1:
                a = a.reshape(-1, info["width"])
            arrays.append(a)
            src = info is not None and info.get("rows", 0) > 0
            entries.append(_Input(name.encode(), a.ctypes.data, a.shape[0] if src else 0))
        if not arrays:
            raise Error(-1, "forward_inputs needs the model's inputs")
        rowed = [(nm, a) for nm, a, e in zip(inputs, arrays, entries) if e.rows == 0]
        n = rowed[0][1].shape[0] if rowed else arrays[0].shape[0]
        for name, a in rowed:
            if a.shape[0] != n:
                raise Error(-1, "input '%s' has %d rows, the first input %d" % (name, a.shape[0], n))
        w = self.model.info.output_width
        out = np.empty((w,) if last_only else (n, w), dtype=np.float32)
        table = (_Input * len(entries))(*entries)
        rc = self._lib.tfx_forward_inputs(self._handle, table, len(entries), n, out.ctypes.data, 1 if last_only else 0)
        if rc:
            self._fail(rc)
        return out

    @property
    def position(self):
        return self._lib.tfx_session_position(self._handle)

    @property
    def threads(self):
        return self._lib.tfx_session_threads(self._handle)

    def reset(self):
        self._lib.tfx_session_reset(self._handle)

    def close(self):
        if self._handle:
            self._lib.tfx_session_free(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Sampler:
    """tfx_sampler: greedy at temperature 0, else temperature and top-p with a seeded generator."""

    def __init__(self, model, temperature=0.0, top_p=0.9, seed=42):
        self._lib = model._lib
        self._s = _SamplerStruct()
        self._lib.tfx_sampler_init(ctypes.byref(self._s), temperature, top_p, seed)

    def sample(self, logits):
        a = np.array(logits, dtype=np.float32, copy=True).reshape(-1)  # the runtime modifies it
        return _check(self._lib, self._lib.tfx_sample(ctypes.byref(self._s), a.ctypes.data, a.size))


class Tokenizer:
    """A tokenizer file (llama2.c tokenizer.bin, SentencePiece .model, tokenizer.json, GGUF)."""

    def __init__(self, model, path):
        self._lib = model._lib
        self._handle = None
        h = _p()
        err = ctypes.create_string_buffer(1024)
        if path is None:  # the model's own (Model.tokenizer checked that it has one)
            rc = self._lib.tfx_model_tokenizer(model._handle, ctypes.byref(h), err, 1024)
        else:
            rc = self._lib.tfx_tokenizer_open(os.fspath(path).encode(), ctypes.byref(h), err, 1024)
        _check(self._lib, rc, err.value)
        self._handle = h

    @property
    def vocab_size(self):
        return self._lib.tfx_tokenizer_vocab_size(self._handle)

    @property
    def bos(self):
        return self._lib.tfx_tokenizer_bos(self._handle)

    @property
    def eos(self):
        return self._lib.tfx_tokenizer_eos(self._handle)

    def encode(self, text, bos=True):
        b = text.encode("utf-8")
        flags = 1 if bos else 0
        n = _check(self._lib, self._lib.tfx_tokenizer_encode(self._handle, b, len(b), flags, None, 0))
        ids = np.zeros(max(n, 1), dtype=np.int32)
        _check(self._lib, self._lib.tfx_tokenizer_encode(self._handle, b, len(b), flags, ids.ctypes.data, n))
        return ids[:n].tolist()

    def decode(self, ids):
        a = np.ascontiguousarray(np.asarray(ids, dtype=np.int32).reshape(-1))
        n = _check(self._lib, self._lib.tfx_tokenizer_decode(self._handle, a.ctypes.data, a.size, None, 0))
        buf = ctypes.create_string_buffer(n + 1)
        _check(self._lib, self._lib.tfx_tokenizer_decode(self._handle, a.ctypes.data, a.size, buf, n + 1))
        return buf.raw[:n].decode("utf-8", "replace")

    def close(self):
        if self._handle:
            self._lib.tfx_tokenizer_close(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
