#!/usr/bin/env python3
"""usage: compare.py CC [flags...] -- equiv.c
Compiles equiv.c to assembly and checks that every A_X (atomkit) function has the
same instructions as its C_X (hand-written C11) twin (labels and symbol names normalised)."""
import re, subprocess, sys

sep = sys.argv.index("--")
cc, src = sys.argv[1:sep], sys.argv[sep + 1]
r = subprocess.run(cc + ["-O2", "-S", "-o", "-", src], capture_output=True, text=True)
if r.returncode:
    sys.exit("compile failed:\n" + r.stderr)
asm = r.stdout
funcs, cur = {}, None
for line in asm.splitlines():
    m = re.match(r"^([A-Za-z_]\w*):", line)
    if m and (m.group(1).startswith("A_") or m.group(1).startswith("C_")):
        cur = m.group(1)
        funcs[cur] = []
        continue
    if cur is None:
        continue
    s = line.strip()
    if s.startswith(".size") or s.startswith(".cfi_endproc"):
        cur = None
        continue
    if not s or s.startswith(".") or s.endswith(":") or s.startswith("#") or s.startswith("//"):
        continue
    s = re.sub(r"\.L\w+", ".L", s)
    funcs[cur].append(s)
bad = 0
pairs = sorted(k[2:] for k in funcs if k.startswith("A_"))
for op in pairs:
    a, b = funcs.get("A_" + op), funcs.get("C_" + op)
    if a is None or b is None or not a:
        print(f"{op}: missing function in assembly"); bad += 1; continue
    if a != b:
        bad += 1
        print(f"{op}: DIFFERENT\n  atomkit: {a}\n  c11:     {b}")
    else:
        print(f"{op}: identical ({len(a)} instructions)")
print(f"{len(pairs) - bad} passed, {bad} failed")
sys.exit(1 if bad or not pairs else 0)
