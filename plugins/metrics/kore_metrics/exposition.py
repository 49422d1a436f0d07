"""The Prometheus text exposition format (version 0.0.4)."""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _help(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(pairs):
    if not pairs:
        return ""
    return "{" + ",".join('%s="%s"' % (k, _escape(v)) for k, v in pairs) + "}"


def _num(v):
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if v in (float("inf"), float("-inf")):
            return "+Inf" if v > 0 else "-Inf"
        return repr(v)
    return str(v)


def _le(b):
    return repr(float(b))


def render(families, values):
    """Text of every family in ``families`` (name -> store.Family) with the
    samples in ``values`` ({(name, labels): value})."""
    by_family = {}
    for (name, labels), v in values.items():
        by_family.setdefault(name, []).append((labels, v))
    out = []
    for name in sorted(families):
        f = families[name]
        samples = by_family.get(name)
        if not samples and f.kind == "histogram":
            continue
        out.append("# HELP %s %s" % (name, _help(f.help)))
        out.append("# TYPE %s %s" % (name, f.kind))
        for labels, v in sorted(samples or (), key=lambda s: s[0]):
            if f.kind != "histogram":
                out.append("%s%s %s" % (name, _labels(labels), _num(v)))
                continue
            cum = 0
            for b, n in zip(f.buckets, v):
                cum += n
                out.append("%s_bucket%s %d" % (name, _labels(labels + (("le", _le(b)),)), cum))
            out.append("%s_bucket%s %d" % (name, _labels(labels + (("le", "+Inf"),)), v[-1]))
            out.append("%s_sum%s %s" % (name, _labels(labels), _num(float(v[-2]))))
            out.append("%s_count%s %d" % (name, _labels(labels), v[-1]))
    out.append("")
    return "\n".join(out)
