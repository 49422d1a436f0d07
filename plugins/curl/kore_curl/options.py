"""The ``CURLOPT_*`` constants of the ``kore`` module and ``setopt``.

As in Kore, ``kore.CURLOPT_X`` is libcurl's option number *without* its type
offset (``CURLOPT_TIMEOUT == 13``, ``CURLOPT_URL == 2``) and the value given
to ``setopt`` must be an ``int`` for long options, a ``str`` for string
options and a ``list`` of ``str`` for list options.  Options that take a
callback or a C pointer are "not implemented" (they would break the
plugin's own handling of the transfer).  Two additions: ``bytes`` for blob
options (``CURLOPT_SSLCERT_BLOB``...) and for ``CURLOPT_POSTFIELDS``.
"""

import pycurl

from ._curlopts import OPTIONS

# CURLOT_* argument types (curl/options.h)
OT_LONG, OT_VALUES, OT_OFF_T, OT_OBJECT, OT_STRING, OT_SLIST, OT_CBPTR, \
    OT_BLOB, OT_FUNCTION = range(9)

_BYTES_OBJECTS = {"POSTFIELDS", "COPYPOSTFIELDS"}

CONSTANTS = {}   # "CURLOPT_X" -> number without type offset
BY_NUMBER = {}   # number -> (name, CURLoption, type); the canonical name wins
for _name, _oid, _otype, _alias in OPTIONS:
    CONSTANTS["CURLOPT_" + _name] = _oid % 10000
    _old = BY_NUMBER.get(_oid % 10000)
    if _old is None or (_old[3] and not _alias):
        BY_NUMBER[_oid % 10000] = ("CURLOPT_" + _name, _oid, _otype, _alias)
del _name, _oid, _otype, _alias, _old


def setopt(easy, opt, value):
    """Set Kore-numbered option ``opt`` on the pycurl handle ``easy``.

    Raises RuntimeError with Kore's messages for unknown options, options
    that are not implemented and values of the wrong type.
    """
    if not isinstance(opt, int) or isinstance(opt, bool):
        raise TypeError("curl option must be an int (kore.CURLOPT_*)")
    entry = BY_NUMBER.get(opt)
    if entry is None:
        raise RuntimeError("invalid option '%d'" % opt)
    name, oid, otype, _alias = entry
    if otype in (OT_LONG, OT_VALUES, OT_OFF_T):
        if type(value) is not int:
            raise RuntimeError("option '%s' requires a long as argument" % name)
    elif otype == OT_STRING:
        if not isinstance(value, str):
            raise RuntimeError("option '%s' requires a string as argument" % name)
        if "\0" in value:
            raise RuntimeError("option '%s': string contains a NUL byte" % name)
    elif otype == OT_SLIST:
        if not isinstance(value, list):
            raise RuntimeError("option '%s' requires a list as argument" % name)
        for item in value:
            if not isinstance(item, str):
                raise RuntimeError("option '%s' requires a list of strings" % name)
    elif otype == OT_BLOB or (otype == OT_OBJECT and name[8:] in _BYTES_OBJECTS):
        if isinstance(value, str):
            value = value.encode("utf-8")
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise RuntimeError("option '%s' requires bytes as argument" % name)
        value = bytes(value)
    else:
        raise RuntimeError("option '%s' not implemented" % name)
    try:
        easy.setopt(oid, value)
    except TypeError:
        raise RuntimeError("option '%s' not implemented" % name) from None
    except pycurl.error as exc:
        msg = exc.args[1] if len(exc.args) > 1 else str(exc)
        raise RuntimeError("option '%s': %s" % (name, msg)) from None
    return True


def setopts_from_dict(easy, curlopt):
    """Apply a ``curlopt={kore.CURLOPT_X: value}`` dict (Kore's messages)."""
    if type(curlopt) is not dict:
        raise RuntimeError("curlopt must be a dictionary")
    for opt, value in curlopt.items():
        if type(opt) is not int:
            raise RuntimeError("invalid key in curlopt keyword")
        setopt(easy, opt, value)
