#!/usr/bin/env python3
"""Fills deploy/nginx.conf.template (README, "Several instances") for nginx in front of
paydesk instances on loopback: scripts/cluster.sh and scripts/bench-notify.sh run what an
operator copies, with their own ports.

    scripts/nginx-conf.py OUT PREFIX LISTEN SOURCE UPSTREAM...

OUT the config written; PREFIX nginx's folder (pid, logs, temp files); LISTEN e.g.
127.0.0.1:8080; SOURCE the address nginx connects to the instances from (proxy_bind);
each UPSTREAM an instance's host:port. Only directives are filled (comments name the
placeholders); a placeholder left unfilled is an error.
"""
import pathlib
import re
import sys


def main() -> None:
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    out, prefix, listen, source, *upstreams = sys.argv[1:]
    template = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf.template"
    servers = "\n        ".join(f"server {u} max_fails=1 fail_timeout=2s;" for u in upstreams)
    values = {"PREFIX": prefix, "LISTEN": listen, "UPSTREAMS": servers,
              "PROXY_SOURCE": source, "WORKER_CONNECTIONS": "16384"}
    lines = []
    for line in template.read_text().splitlines(keepends=True):
        if not line.lstrip().startswith("#"):
            line = re.sub(r"@([A-Z_]+)@", lambda m: values.get(m.group(1), m.group(0)), line)
        lines.append(line)
    left = [p for line in lines if not line.lstrip().startswith("#")
            for p in re.findall(r"@[A-Z_]+@", line)]
    if left:
        sys.exit("nginx.conf.template: placeholders left unfilled: " + " ".join(sorted(set(left))))
    pathlib.Path(out).write_text("".join(lines))


if __name__ == "__main__":
    main()
