"""The ``kore_http_handle`` wrappers, called without pluggy per request.

pluggy's generic ``_multicall`` costs several microseconds per call (about
6 us measured with one wrapper on a loaded machine), which a gateway or a
metrics plugin would add to every request.  When every other
implementation is a new-style wrapper (``@hookimpl(wrapper=True)``) and the
http plugin's is the only plain one, ``load()`` (once per worker) takes the
wrappers in pluggy's call order and ``call()`` runs them with the same
semantics: each runs to its ``yield``, the innermost (``run_target``)
runs, its result (or exception) goes back out through each wrapper, the
outermost's return value is the result.  Anything else (an old-style
``hookwrapper``, another plain implementation) falls back to pluggy.
"""

from kore import runtime


_BOTH = ("req", "target")
_REQ = ("req",)


class HandleChain:
    __slots__ = ("wrappers", "inner", "use_pluggy")

    def __init__(self):
        self.wrappers = ()     # ((function, argnames), ...) outermost first
        self.inner = None
        self.use_pluggy = False

    def load(self, inner):
        """Look at the implementations (once per worker)."""
        self.inner = inner
        hook = runtime.hook("kore_http_handle")
        impls = list(reversed(hook.get_hookimpls()))    # pluggy's call order
        wrappers = []
        plain = []
        self.use_pluggy = False
        for impl in impls:
            if impl.wrapper:
                wrappers.append((impl.function, tuple(impl.argnames)))
            elif impl.hookwrapper:
                self.use_pluggy = True
            else:
                plain.append(impl)
        if len(plain) != 1 or plain[0].function is not inner:
            self.use_pluggy = True
        self.wrappers = tuple(wrappers)

    def call(self, req, target):
        """The status, as ``hook.kore_http_handle(req=req, target=target)``."""
        if self.use_pluggy:
            return runtime.hook("kore_http_handle")(req=req, target=target)
        gens = []
        result = None
        exc = None
        try:
            for fn, names in self.wrappers:
                if names == _BOTH:
                    gen = fn(req, target)
                elif names == _REQ:
                    gen = fn(req)
                else:
                    args = {"req": req, "target": target}
                    gen = fn(*[args[n] for n in names])
                try:
                    next(gen)
                except StopIteration:
                    raise RuntimeError("kore_http_handle wrapper %s did not yield"
                                       % getattr(fn, "__qualname__", fn)) from None
                gens.append(gen)
            result = self.inner(req, target)
        except BaseException as e:      # given to the wrappers, as pluggy does
            exc = e
        for gen in reversed(gens):
            try:
                if exc is None:
                    gen.send(result)
                else:
                    gen.throw(exc)
            except StopIteration as stop:
                result, exc = stop.value, None
                continue
            except BaseException as e:
                exc = e
                continue
            exc = RuntimeError("kore_http_handle wrapper yielded twice")
        if exc is not None:
            raise exc
        return result


CHAIN = HandleChain()
