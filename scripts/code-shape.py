#!/usr/bin/env python3
"""The shape of the library's source: the longest functions, the largest files, cycles between
files (a file that names `crate::x` or `super::x` depends on x's file), and the public modules.

    python3 scripts/code-shape.py [--check] [SRC]   (SRC defaults to src/)

Prints one JSON document. With --check it also exits 1 when any cycle exists, which the test
command uses to keep the layering honest (see src/lib.rs, "Where things live")."""
import os, re, sys, json
args = [a for a in sys.argv[1:] if a != "--check"]
check = "--check" in sys.argv[1:]
root = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(".rs"):
            p = os.path.join(d, f)
            files[p] = open(p).read()

def modpath(p):
    rel = os.path.relpath(p, root)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib"): rel = rel[:-1]
    return rel

mods = {tuple(modpath(p)): p for p in files}
def resolve(cur, path):
    # cur: module path list of the current file; path: list of segments after use
    segs = path[:]
    if segs[0] == "crate": base = []; segs = segs[1:]
    elif segs[0] == "super":
        base = cur[:]
        while segs and segs[0] == "super":
            base = base[:-1]; segs = segs[1:]
    elif segs[0] == "self": base = cur[:]; segs = segs[1:]
    else: return None
    best = None
    for i in range(len(segs), -1, -1):
        cand = tuple(base + segs[:i])
        if cand in mods: best = mods[cand]; break
    return best

edges = {p: set() for p in files}
for p, text in files.items():
    cur = modpath(p)
    text_nc = re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", text, flags=re.S)
    for m in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", text_nc):
        segs = m.group(1).split("::")
        t = resolve(cur, segs)
        if t and t != p: edges[p].add(t)
    for m in re.finditer(r"use\s+((?:crate|super|self)::)\{([^;]*)\};", text_nc, flags=re.S):
        pre = m.group(1).rstrip(":").split("::")
        for item in re.split(r",", m.group(2)):
            item = item.strip().split(" as ")[0].strip()
            if not item or "{" in item or "}" in item: continue
            t = resolve(cur, pre + item.split("::"))
            if t and t != p: edges[p].add(t)
# SCCs (Tarjan)
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
sys.setrecursionlimit(10000)
def strong(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: strong(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for v in files:
    if v not in idx: strong(v)
# longest fn (braces counted outside comments, strings and char literals, read over the whole
# file, so a string that runs on over several lines hides its braces too)
RAW_STRING = re.compile(r'b?r(#*)"')
CHAR = re.compile(r"'(\\.[^']*|[^'\\])'")
def code_only(text):
    out = []; i = 0; n = len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i); i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2); j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j)); i = j
        elif c in "br" and (m := RAW_STRING.match(text, i)) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = '"' + m.group(1); j = text.find(end, m.end()); j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j)); i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"': j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j)); i = j + 1
        elif c == "'" and (m := CHAR.match(text, i)):
            out.append("''"); i = m.end()
        else:
            out.append(c); i += 1
    return "".join(out)
longest = []
for p, text in files.items():
    lines = code_only(text).split("\n")
    i = 0
    while i < len(lines):
        if re.match(r"\s*(pub(\(\w+\))?\s+)?(async\s+)?fn\s+\w+", lines[i]) and not lines[i].rstrip().endswith(";"):
            name = re.search(r"fn\s+(\w+)", lines[i]).group(1)
            depth = 0; started = False; j = i
            while j < len(lines):
                depth += lines[j].count("{") - lines[j].count("}")
                if "{" in lines[j]: started = True
                if started and depth <= 0: break
                j += 1
            longest.append((j - i + 1, f"{os.path.relpath(p, root)}::{name}"))
            i = j + 1
        else: i += 1
longest.sort(reverse=True)
sizes = sorted(((t.count("\n"), os.path.relpath(p, root)) for p, t in files.items()), reverse=True)
lib = files.get(os.path.join(root, "lib.rs"), "")
pubmods = re.findall(r"^pub mod (\w+)", lib, flags=re.M)
out = {"longest_functions": longest[:5], "largest_files": sizes[:5],
       "cycles": [[os.path.relpath(x, root) for x in s] for s in sccs], "public_modules": pubmods,
       "files": len(files), "lines": sum(t.count("\n") for t in files.values())}
print(json.dumps(out, indent=1))
if check and sccs:
    print("cycles between files: " + "; ".join(" <-> ".join(c) for c in out["cycles"]), file=sys.stderr)
    sys.exit(1)
