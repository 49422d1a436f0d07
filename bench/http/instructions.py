"""Instructions per request of the hot path, counted by valgrind.

Wall-clock figures of ``hotpath.py`` move by 10-30% from run to run on a
shared virtual machine; the number of instructions the interpreter runs for
one request does not.  This runs ``hotpath.py`` under callgrind twice (N1 and
N2 pipelined requests, one round each) and prints (Ir(N2) - Ir(N1)) / (N2 -
N1): start-up and compilation cancel out.  ``--tree`` measures another
checkout of this repository (a ``git worktree`` at an older commit) with the
same interpreter, so a change can be compared with what came before it:

    .venv/bin/python bench/http/instructions.py --tree ../kore-before --path /json --tls

Needs valgrind (``apt-get install valgrind``).  Each run takes about half a
minute.  Instructions are not time (a cache miss costs more than an add), but
a change that adds 5% of instructions to the hot path does not save time.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def instructions(tree, n, path, plugins, tls=False):
    # a fixed hash seed: string hashes (dict probes) otherwise move the
    # count by a few per cent from run to run
    env = dict(os.environ, KORE_PLUGINS=plugins, PYTHONHASHSEED="0")
    if os.path.realpath(tree) != os.path.realpath(ROOT):
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.join(tree, "core")] + sorted(glob.glob(os.path.join(tree, "plugins", "*"))))
    script = os.path.join(tree, "bench", "http", "hotpath.py")
    extra = []
    if tls:
        # older trees' hotpath.py ran only the TLS path, without the flag
        with open(script) as f:
            if "--tls" in f.read():
                extra = ["--tls"]
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         script, "--rounds", "1", "--requests", str(n), "--path", path] + extra,
        cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    m = re.search(r"Collected : (\d+)", out.stderr)
    if m is None:
        raise SystemExit("callgrind gave no count for %s:\n%s" % (tree, out.stderr[-2000:]))
    return int(m.group(1))


def per_request(tree, n1, n2, path, plugins, tls):
    return (instructions(tree, n2, path, plugins, tls)
            - instructions(tree, n1, path, plugins, tls)) / (n2 - n1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", help="another checkout to compare with")
    ap.add_argument("--path", default="/plaintext")
    ap.add_argument("--n1", type=int, default=500)
    ap.add_argument("--n2", type=int, default=2500)
    ap.add_argument("--plugins", default="http,websocket,pgsql,curl",
                    help="KORE_PLUGINS for both trees (the same set, for a fair comparison)")
    ap.add_argument("--tls", action="store_true",
                    help="time hotpath.py's TLS path (the only one of trees before "
                         "the plain-TCP path was added: use it to compare with those)")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    ours = per_request(ROOT, args.n1, args.n2, args.path, args.plugins, args.tls)
    print("this tree:  %.0f instructions/request (%s, plugins %s)" % (ours, args.path, args.plugins))
    if args.tree:
        theirs = per_request(os.path.abspath(args.tree), args.n1, args.n2, args.path,
                             args.plugins, args.tls)
        print("--tree:     %.0f instructions/request" % theirs)
        print("ratio this/--tree: %.3f" % (ours / theirs))


if __name__ == "__main__":
    sys.exit(main())
