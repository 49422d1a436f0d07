"""Choosing an upstream node: smooth weighted round robin (nginx's) or
least connections, with passive health (``max_fails`` within
``fail_timeout`` takes a node out for ``fail_timeout``) and the state the
active checks set.  Pure: time is passed in, nothing touches a socket.
"""

from kore.log import LOG, LOG_NOTICE, LOG_WARNING

POLICIES = ("round_robin", "least_conn")


class Node:
    """One upstream server of an alias, as this worker sees it."""

    __slots__ = ("member", "weight", "current", "conns", "fails", "fail_start",
                 "down_until", "checked_down", "check_ok", "check_bad", "idle",
                 "requests", "name")

    def __init__(self, member):
        self.member = member
        self.name = member.address
        self.weight = member.weight
        self.current = 0
        self.conns = 0           # requests in flight on this node
        self.fails = 0           # passive failures in the current window
        self.fail_start = 0.0
        self.down_until = 0.0    # passive: out until then
        self.checked_down = False  # active checks say down
        self.check_ok = 0
        self.check_bad = 0
        self.idle = []           # pooled upstream connections (client.Upstream)
        self.requests = 0

    def __repr__(self):
        return "<node %s>" % self.name

    def available(self, now):
        return not self.checked_down and self.down_until <= now


class Balancer:
    """The nodes of one alias and the policy that picks among them."""

    def __init__(self, name, members, policy="round_robin", max_fails=1,
                 fail_timeout=10.0):
        self.name = name
        self.nodes = [Node(m) for m in members]
        self.policy = policy
        self.max_fails = max_fails
        self.fail_timeout = fail_timeout

    def pick(self, now, exclude=()):
        """The node for the next request, or None when none is available.
        ``exclude``: nodes already tried for this request."""
        nodes = self.nodes
        if len(nodes) == 1:
            # one server: never taken out passively (nginx ignores max_fails)
            n = nodes[0]
            return None if n in exclude or n.checked_down else n
        cands = [n for n in nodes if n not in exclude and n.available(now)]
        if not cands:
            return None
        if self.policy == "least_conn" and len(cands) > 1:
            best = min(n.conns / n.weight for n in cands)
            cands = [n for n in cands if n.conns / n.weight == best]
        if len(cands) == 1:
            return cands[0]
        total = 0
        best = None
        for n in cands:
            n.current += n.weight
            total += n.weight
            if best is None or n.current > best.current:
                best = n
        best.current -= total
        return best

    def failed(self, node, now, why):
        """A connect or read failure on ``node`` (passive health)."""
        if len(self.nodes) == 1 or self.max_fails <= 0:
            return
        if now - node.fail_start > self.fail_timeout:
            node.fails = 0
            node.fail_start = now
        node.fails += 1
        if node.fails >= self.max_fails and node.down_until <= now:
            node.down_until = now + self.fail_timeout
            LOG.write(LOG_WARNING, "proxy @%s: %s is down (%d failure%s in %gs: %s); "
                      "retried after %gs" % (self.name, node.name, node.fails,
                                             "" if node.fails == 1 else "s",
                                             self.fail_timeout, why, self.fail_timeout))

    def succeeded(self, node):
        """A response came back from ``node``."""
        if node.down_until:
            node.down_until = 0.0
            LOG.write(LOG_NOTICE, "proxy @%s: %s is up again" % (self.name, node.name))
        node.fails = 0

    def check_result(self, node, ok, rise, fall, why=""):
        """One active check of ``node``: ``fall`` failures in a row take it
        out, ``rise`` successes in a row bring it back.  True when the
        node's state changed."""
        if ok:
            node.check_bad = 0
            node.check_ok += 1
            if node.checked_down and node.check_ok >= rise:
                node.checked_down = False
                node.down_until = 0.0
                node.fails = 0
                LOG.write(LOG_NOTICE, "proxy @%s: %s is up (health check passed %d "
                          "time%s)" % (self.name, node.name, node.check_ok,
                                       "" if node.check_ok == 1 else "s"))
                return True
            return False
        node.check_ok = 0
        node.check_bad += 1
        if not node.checked_down and node.check_bad >= fall:
            node.checked_down = True
            LOG.write(LOG_WARNING, "proxy @%s: %s is down (health check failed %d "
                      "time%s: %s)" % (self.name, node.name, node.check_bad,
                                       "" if node.check_bad == 1 else "s", why))
            return True
        return False
