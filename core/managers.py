"""Traced managers: the stdlib's BaseManager and SyncManager, with every proxy call timed and recorded.

* ``SyncManager`` registers the stdlib's types (list, dict, Namespace, Lock, Queue, Value, ...) with traced
  subclasses of the stdlib's proxy classes: each ``_callmethod`` records MANAGER_CALL (method, duration,
  whether it raised) under a uid stable across processes (the server address and the referent's id).  A call
  of a method that waits (``WAITING_METHODS``: a shared lock's acquire, a queue's get...) that blocked also
  records where the program waited (CALLSITE) right before it.
* The server process is a core Process with the role ``manager``.
* ``BaseManager`` subclasses registering their own types get traced auto-proxies.  A manager given a TCP
  address with an empty host listens on 127.0.0.1, not on every interface: name the interface explicitly
  (``('0.0.0.0', port)``) to serve other hosts.  A client with the wrong authkey is refused with
  ``AuthenticationError``, as in the stdlib.
"""
import hashlib

from . import _stdlib

_stdlib.require("managers")     # first: the names below are the stdlib's internals (core/_stdlib.py)

from multiprocessing import managers as _std  # noqa: E402
from multiprocessing.managers import (BaseProxy, MakeProxyType, Namespace, RemoteError,  # noqa: E402,F401
                                      Server, State, Token, Value, dispatch, listener_client)

from .trace import recorder  # noqa: E402
from .trace.events import Kind  # noqa: E402

__all__ = ["BaseManager", "SyncManager", "BaseProxy", "Token", "SharedMemoryManager", "Namespace",
           "RemoteError"]

_seen_referents = set()
#: Proxy methods that wait for another process (a shared Lock, Semaphore, Condition, Event, Barrier, Queue):
#: when one of them blocked, its call site is recorded.  Any other call only waits for the server's answer.
WAITING_METHODS = frozenset(("acquire", "wait", "wait_for", "get", "put", "join"))


def referent_uid(token):
    """A run-wide stable id for a managed object: the same in every process holding a proxy to it."""
    key = ("%r/%s" % (token.address, token.id)).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=7).digest(), "little") | (1 << 61)


class TracedProxyMixin:
    """Times each remote call of a proxy."""

    def _trace_ident(self):
        uid = self.__dict__.get("_trace_uid")
        if uid is None:
            uid = self._trace_uid = referent_uid(self._token)
            if uid not in _seen_referents:
                _seen_referents.add(uid)
                recorder.register_object(uid, "Proxy", "%s@%s" % (self._token.typeid, self._token.id[-6:]),
                                         typeid=self._token.typeid)
        return uid

    def _callmethod(self, methodname, args=(), kwds={}):
        if not recorder.ENABLED:
            return super()._callmethod(methodname, args, kwds)
        uid = self._trace_ident()
        t0 = recorder.now()
        try:
            result = super()._callmethod(methodname, args, kwds)
        except BaseException:
            self._record_call(uid, methodname, t0, 1)
            raise
        self._record_call(uid, methodname, t0, 0)
        return result

    @staticmethod
    def _record_call(uid, methodname, t0, raised):
        t1 = recorder.wait_ended(t0, uid) if methodname in WAITING_METHODS else recorder.now()
        recorder.emit_at(t1, Kind.MANAGER_CALL, uid, t1 - t0, recorder.intern(methodname), raised)

    def __reduce__(self):
        func, (typ, token, serializer, kwds) = super().__reduce__()
        if typ is _std.AutoProxy:
            typ = TracedAutoProxy
        return func, (typ, token, serializer, kwds)


_traced_types = {}


def traced_proxy_type(proxytype):
    """The traced subclass of a stdlib proxy class.  It keeps the stdlib class's ``__name__`` (reprs and error
    messages read the same), and a ``__qualname__`` under which this module holds it, so it pickles by
    reference."""
    if proxytype in _traced_types or issubclass(proxytype, TracedProxyMixin):
        return _traced_types.get(proxytype, proxytype)
    qualname = "_Traced" + proxytype.__name__.replace("[", "_").replace("]", "_")
    cls = type(proxytype.__name__, (TracedProxyMixin, proxytype), {"__module__": __name__,
                                                                    "__qualname__": qualname})
    _traced_types[proxytype] = cls
    globals()[qualname] = cls
    return cls


def TracedAutoProxy(token, serializer, manager=None, authkey=None, exposed=None, incref=True,
                    manager_owned=False):
    """The stdlib's AutoProxy, built on a traced proxy type."""
    _Client = listener_client[serializer][1]
    if exposed is None:
        conn = _Client(token.address, authkey=authkey)
        try:
            exposed = dispatch(conn, None, 'get_methods', (token,))
        finally:
            conn.close()
    if authkey is None and manager is not None:
        authkey = manager._authkey
    if authkey is None:
        from multiprocessing import process
        authkey = process.current_process().authkey
    ProxyType = traced_proxy_type(MakeProxyType('AutoProxy[%s]' % token.typeid, exposed))
    proxy = ProxyType(token, serializer, manager=manager, authkey=authkey, incref=incref,
                      manager_owned=manager_owned)
    proxy._isauto = True
    return proxy


def _local_address(address):
    """('', port) means 'this machine' here: listen on loopback unless an interface is named."""
    if isinstance(address, tuple) and len(address) == 2 and address[0] in ("", None):
        return ("127.0.0.1", address[1])
    return address


class BaseManager(_std.BaseManager):
    """The stdlib's BaseManager: its server process is a traced core Process (role ``manager``)."""

    def __init__(self, address=None, authkey=None, serializer='pickle', ctx=None, **kwds):
        from .context import resolve
        super().__init__(_local_address(address), authkey, serializer, resolve(ctx), **kwds)

    @classmethod
    def register(cls, typeid, callable=None, proxytype=None, exposed=None, method_to_typeid=None,
                 create_method=True):
        if proxytype is None or proxytype is _std.AutoProxy:
            proxytype = TracedAutoProxy
        elif isinstance(proxytype, type) and issubclass(proxytype, BaseProxy) \
                and proxytype.__module__ == _std.__name__:
            proxytype = traced_proxy_type(proxytype)
        return super().register(typeid, callable, proxytype, exposed, method_to_typeid, create_method)

    @classmethod
    def _run_server(cls, *args, **kwds):
        recorder.set_role("manager")
        return super()._run_server(*args, **kwds)

    def start(self, initializer=None, initargs=()):
        super().start(initializer, initargs)
        if recorder.ENABLED:
            uid = recorder.new_uid()
            recorder.register_object(uid, "Manager", self._process.name, address=repr(self._address))
            recorder.emit(Kind.MANAGER_START, uid, self._process.pid)


class SyncManager(BaseManager, _std.SyncManager):
    """The stdlib's SyncManager with traced proxies for every registered type."""


for _typeid, (_callable, _exposed, _m2t, _proxytype) in list(_std.SyncManager._registry.items()):
    SyncManager.register(_typeid, _callable, _proxytype, _exposed, _m2t,
                         create_method=hasattr(_std.SyncManager, _typeid) and _callable is not None)

# Everything else the stdlib module offers (DictProxy, AutoProxy, Array, ...), so that code importing names
# from multiprocessing.managers finds them here too.
globals().update({k: v for k, v in vars(_std).items() if not k.startswith("_") and k not in globals()})

if getattr(_std, "HAS_SHMEM", False):
    class SharedMemoryManager(BaseManager, _std.SharedMemoryManager):
        """The stdlib's SharedMemoryManager, with a traced server process."""
else:                                                   # pragma: no cover
    SharedMemoryManager = None
