"""Numba threading-layer policy: thread- and fork-safe by default, the user's choice otherwise.

Numba runs parallel kernels on one process-wide *threading layer*, started once, when the first
parallel kernel is compiled or loaded from the cache. Of its three layers:

- ``omp`` (GNU OpenMP on Linux, numba's pick when TBB is missing) is thread-safe but not fork-safe:
  a child forked after a parallel call (a ``fork`` multiprocessing pool, a PyTorch data loader)
  aborts ("fork() called from a process already using GNU OpenMP") when it runs a parallel kernel;
- ``workqueue`` is fork-safe but not thread-safe: two threads launching kernels at once abort;
- ``tbb`` is both. But the ``tbb`` wheel from PyPI installs ``libtbb.so.12`` into ``<venv>/lib``,
  which is not on the dynamic loader's path, so numba alone does not find it there.

Policy (:func:`configure`, run once before any fastquant kernel is compiled or loaded):

1. A layer the user has configured is never overridden: ``NUMBA_THREADING_LAYER`` or
   ``NUMBA_THREADING_LAYER_PRIORITY`` in the environment, ``numba.config.THREADING_LAYER`` or
   ``THREADING_LAYER_PRIORITY`` set in code (or in numba's ``.numba_config.yaml``), or a layer
   already started by parallel numba code that ran earlier in the process.
2. Otherwise (and also when the user asked for a layer that may be TBB), the ``libtbb`` of the
   installed ``tbb`` distribution is loaded by its path, so that numba's own lookup by soname finds
   it; numba's default priority (tbb, omp, workqueue) then starts ``tbb``. No numba setting changes.
3. If TBB is not usable (not installed, too old, no wheel for the platform) and the user configured
   nothing, ``numba.config.THREADING_LAYER`` is set to ``"workqueue"`` on Linux (``"forksafe"``
   elsewhere: numba then picks a fork-safe layer itself), and :func:`kernel_lock` serialises
   fastquant's kernel calls so that concurrent calls take turns instead of aborting.

:func:`kernel_lock` looks at the layer numba actually started, not at what was requested, so it
stays correct whoever chose the layer; before any layer is started it locks, because the first
kernel call is the one that starts it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading

# numba's minimum TBB (2021.6). numba checks it too, at launch; checking first means a too-old
# libtbb leads to our fallback rather than to numba's warning and its silent fall back to omp.
_TBB_MIN_INTERFACE = 12060
_DEFAULT_PRIORITY = ["tbb", "omp", "workqueue"]
# Layers several threads may enter at once (numba docs, "Selecting a threading layer for safe
# parallel execution"): omp is thread-safe everywhere, tbb is thread- and fork-safe.
_THREADSAFE_LAYERS = frozenset({"tbb", "omp"})
# User requests for which numba may start tbb: making libtbb findable helps them, changes nothing.
_TBB_REQUESTS = frozenset({"default", "tbb", "safe", "threadsafe", "forksafe"})

if sys.platform.startswith("win"):
    _TBB_SONAME = "tbb12.dll"
elif sys.platform == "darwin":
    _TBB_SONAME = "libtbb.12.dylib"
else:
    _TBB_SONAME = "libtbb.so.12"

_configure_lock = threading.Lock()
_configured = False
_state: dict[str, str | None] = {"policy": "not configured yet", "requested": None, "tbb": None}

# Serialises kernel calls on layers that are not thread-safe. Re-entrant, so that a kernel call
# nested inside another locked region of the same thread cannot deadlock.
_kernel_lock = threading.RLock()
_NO_LOCK = contextlib.nullcontext()
_layer_is_threadsafe = False  # cached once the started layer is known to be thread-safe


def _reset_lock_in_child() -> None:
    # A fork while another thread held the lock would leave the child's copy locked forever.
    global _kernel_lock
    _kernel_lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_in_child)


def _started_layer() -> str | None:
    """The layer numba has started, or None before the first parallel kernel is loaded."""
    from numba.np.ufunc import parallel

    if not parallel._is_initialized:
        return None
    return parallel._threading_layer


def _user_configuration() -> str | None:
    """Describe the threading-layer configuration the user made, or None if they made none."""
    from numba.core import config

    for name in ("NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY"):
        if name in os.environ:
            return f"{name}={os.environ[name]!r} in the environment"
    layer = str(config.THREADING_LAYER).lower()
    if layer != "default":
        return f"numba.config.THREADING_LAYER = {layer!r}"
    if list(config.THREADING_LAYER_PRIORITY) != _DEFAULT_PRIORITY:
        return f"numba.config.THREADING_LAYER_PRIORITY = {config.THREADING_LAYER_PRIORITY!r}"
    return None


def _tbb_interface_version(lib: ctypes.CDLL) -> int:
    fn = lib.TBB_runtime_interface_version
    fn.argtypes = []
    fn.restype = ctypes.c_int
    return int(fn())


def _installed_tbb_paths() -> list[str]:
    """Paths of the TBB runtime shipped by the installed ``tbb`` distribution (the PyPI wheel)."""
    import importlib.metadata  # numba imports it already: no extra import cost

    try:
        dist = importlib.metadata.distribution("tbb")
    except importlib.metadata.PackageNotFoundError:
        return []
    found = []
    for entry in dist.files or ():
        if entry.name == _TBB_SONAME:
            path = os.path.realpath(dist.locate_file(entry))
            if os.path.isfile(path):
                found.append(path)
    return found


def _make_tbb_loadable() -> tuple[str | None, str]:
    """Load a usable libtbb where numba will find it; return (where, "") or (None, problem)."""
    # 1. Whatever the loader finds already (conda, a system package, loaded earlier): numba would
    #    use it too, and loading a second copy from elsewhere would put two TBB runtimes in the
    #    process under one soname.
    try:
        lib = ctypes.CDLL(_TBB_SONAME)
        where = _TBB_SONAME
    except OSError:
        lib = None
    # 2. The pip-installed wheel, by path. Once loaded, the loader resolves the soname to it, both
    #    for numba's CDLL(soname) check and for tbbpool's DT_NEEDED entry.
    if lib is None:
        paths = _installed_tbb_paths()
        if not paths:
            return None, "the tbb package is not installed"
        try:
            lib = ctypes.CDLL(paths[0], mode=ctypes.RTLD_GLOBAL)
            where = paths[0]
        except OSError as exc:
            return None, f"cannot load {paths[0]}: {exc}"
    try:
        version = _tbb_interface_version(lib)
    except (AttributeError, OSError) as exc:
        return None, f"{where} has no TBB_runtime_interface_version: {exc}"
    if version < _TBB_MIN_INTERFACE:
        return None, f"{where} is too old for numba ({version} < {_TBB_MIN_INTERFACE})"
    # numba's TBB layer is an extension module linked against the soname: prove it loads now, so
    # that numba's own choice at launch cannot silently differ from ours.
    try:
        import numba.np.ufunc.tbbpool  # noqa: F401
    except ImportError as exc:
        return None, f"numba's TBB layer does not load: {exc}"
    return where, ""


def configure() -> None:
    """Choose a thread- and fork-safe numba threading layer unless the user configured one.

    Idempotent and cheap: no compilation, a few milliseconds to locate and load ``libtbb``. Runs
    before the first parallel kernel is compiled or loaded, which starts numba's threading layer.
    """
    global _configured
    with _configure_lock:
        if _configured:
            return
        _configured = True
        started = _started_layer()
        if started is not None:
            _state["policy"] = f"kept {started!r}, started by earlier parallel numba use"
            return
        from numba.core import config

        # numba re-reads NUMBA_* variables whenever one has changed since the last read (at import,
        # at each compilation), resetting values set in code. Reading now means that the setting
        # below survives unless the environment changes again, and that the user's current
        # environment is what is checked.
        config.reload_config()
        user = _user_configuration()
        requested = str(config.THREADING_LAYER).lower()
        _state["requested"] = requested
        if user is not None:
            if requested in _TBB_REQUESTS:
                # Lets "tbb"/"safe"/... work in a virtual environment, where numba alone would
                # not find the pip-installed library; what the user asked for is unchanged.
                _state["tbb"], _ = _make_tbb_loadable()
            _state["policy"] = f"kept the user's configuration ({user})"
            return
        where, problem = _make_tbb_loadable()
        _state["tbb"] = where
        if where is not None:
            _state["policy"] = f"tbb from {where}: thread- and fork-safe"
            return
        fallback = "workqueue" if sys.platform.startswith("linux") else "forksafe"
        config.THREADING_LAYER = fallback
        _state["requested"] = fallback
        _state["policy"] = (
            f"{fallback} because TBB is unavailable ({problem}): fork-safe; fastquant "
            "serialises its own parallel calls (install the tbb package to run them concurrently)"
        )


def kernel_lock():
    """Context manager held around every parallel kernel call.

    A no-op once numba has started a thread-safe layer (``tbb``, ``omp``); otherwise a process-wide
    re-entrant lock, so that concurrent calls from several Python threads take turns instead of
    aborting the process. Before any layer is started it is the lock, because the first kernel
    call starts the layer and which one numba will start is not known for certain.
    """
    global _layer_is_threadsafe
    if _layer_is_threadsafe:
        return _NO_LOCK
    layer = _started_layer()
    if layer in _THREADSAFE_LAYERS:
        _layer_is_threadsafe = True  # a started layer never changes for the life of the process
        return _NO_LOCK
    return _kernel_lock


@contextlib.contextmanager
def one_thread():
    """Run the calling thread's parallel kernels in that thread alone, for a block of code (numba's thread count
    is per thread). For work that runs beside other busy threads (``fastquant.convert``'s encoders): a parallel
    region's workers would wait for cores at each call and spin between calls, taking time from the encoders."""
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def describe() -> str:
    """One line saying which numba threading layer fastquant's kernels use and why.

    Returns
    -------
    str
        For example ``"numba threading layer: tbb (started); policy: tbb from
        /venv/lib/libtbb.so.12: thread- and fork-safe; concurrent calls: run in parallel"``.
        Imports numba (and runs :func:`configure`).
    """
    configure()
    layer = _started_layer()
    if layer is None:
        layer_text = f"not started yet (requested: {_state['requested']})"
        calls = "serialised until a layer is started"
    else:
        layer_text = f"{layer} (started)"
        threadsafe = layer in _THREADSAFE_LAYERS
        calls = "run in parallel" if threadsafe else "serialised by fastquant's lock"
    policy = _state["policy"]
    return f"numba threading layer: {layer_text}; policy: {policy}; concurrent calls: {calls}"
