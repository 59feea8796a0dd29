"""run_node.py - start akws, run a node client script against it, stop it.
Skips (exit 77) when npm's ws module cannot be found (looked up in
$AKWS_NODE_PATH, then node's own paths; CI: npm install --prefix build/npm ws@8).

    run_node.py NODE SCRIPT.js AKWS atomkit|mutex"""
import os, subprocess, sys
from wslib import Server, check

node, script, akws, mode = sys.argv[1:5]
env = dict(os.environ)
paths = [p for p in (os.environ.get("AKWS_NODE_PATH"),) if p]
try:
    root = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True, timeout=30).stdout.strip()
    if root:
        paths.append(root)
except (OSError, subprocess.TimeoutExpired):
    pass
env["NODE_PATH"] = os.pathsep.join(paths + [env.get("NODE_PATH", "")])
probe = subprocess.run([node, "-e", "require('ws')"], env=env, capture_output=True, timeout=60)
if probe.returncode != 0:
    print("SKIP: npm's ws is not installed (npm install --prefix build/npm ws@8)")
    sys.exit(77)
srv = Server(akws, mode)
rc = subprocess.run([node, script, str(srv.port)], env=env, timeout=240).returncode
check(rc == 0, "node client exited %d" % rc)
srv.stop()
print("interop npm ws (%s): passed" % mode)
