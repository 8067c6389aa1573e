#!/usr/bin/env python3
"""Helpers for .ci/validate-ops.sh, reading a `kustomize build` stream on stdin.

  k8s_docs.py builtin            print the documents of built-in API groups (for
                                 kubernetes-validate, which has no CRD schemas)
  k8s_docs.py crds SCHEMA_DIR    validate the other documents against the CRD
                                 schemas in SCHEMA_DIR (<group>_<version>_<Kind>.json);
                                 a kind with no schema there is an error
  k8s_docs.py check OVERLAY      repository rules kube-score and the schemas do not
                                 know (image tags CI publishes, KEDA address, ...)

Needs PyYAML and jsonschema (both installed with kubernetes-validate).
"""
import json
import re
import sys
from pathlib import Path

import yaml

CUSTOM_GROUPS = ("keda.sh", "monitoring.coreos.com")


def docs():
    return [d for d in yaml.safe_load_all(sys.stdin) if d]


def is_custom(d):
    return d.get("apiVersion", "").split("/")[0] in CUSTOM_GROUPS


def builtin():
    yaml.safe_dump_all([d for d in docs() if not is_custom(d)], sys.stdout, sort_keys=False)
    return 0


def crds(schema_dir):
    import jsonschema

    failed = 0
    for d in docs():
        if not is_custom(d):
            continue
        group, version = d["apiVersion"].split("/")
        name = f"{d['kind']}/{d['metadata']['name']}"
        path = Path(schema_dir) / f"{group}_{version}_{d['kind']}.json"
        if not path.exists():
            print(f"  {name}: no schema {path.name}")
            failed = 1
            continue
        schema = json.loads(path.read_text())
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(d), key=str)
        for e in errors:
            where = "/".join(str(p) for p in e.absolute_path)
            print(f"  {name}: {where}: {e.message}")
        failed |= bool(errors)
        if not errors:
            print(f"  {name}: ok ({path.name})")
    return failed


def check(overlay):
    """Rules of this repository that no generic tool checks."""
    problems = []
    all_docs = docs()
    ns = {d["metadata"]["name"] for d in all_docs if d["kind"] == "Namespace"}
    published = re.compile(r"^ghcr\.io/[a-z0-9][a-z0-9-]*/multivac:(sha-[0-9a-f]{7,40}|main|v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?)$")

    def containers(d):
        spec = d.get("spec", {})
        if d["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        pod = spec.get("template", {}).get("spec", {})
        return pod.get("initContainers", []) + pod.get("containers", [])

    for d in all_docs:
        kind, name = d["kind"], d["metadata"]["name"]
        for c in containers(d):
            img = c.get("image", "")
            if "multivac" in img.split("/")[-1] and not published.match(img):
                problems.append(f"{kind}/{name}: image {img} is not a tag CI publishes "
                                "(ghcr.io/<owner>/multivac:sha-<commit>|main|<version>)")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory", "ephemeral-storage"):
                    if r not in res.get(part, {}):
                        problems.append(f"{kind}/{name}/{c['name']}: no {part}.{r}")
        if kind == "Deployment" and "replicas" in d["spec"]:
            problems.append(f"Deployment/{name}: static replicas beside an autoscaler")
        if kind == "Namespace":
            labels = d["metadata"].get("labels", {})
            if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
                problems.append(f"Namespace/{name}: PSA enforce is not restricted")
        if kind == "ScaledObject":
            for t in d["spec"]["triggers"]:
                addr = t["metadata"].get("address", "")
                if not any(addr.startswith(f"redis.{n}.svc.") for n in ns | {d['metadata'].get('namespace', '')}):
                    problems.append(f"ScaledObject/{name}: address {addr} is not this namespace's Redis")
                if t["metadata"].get("listName") != "multivac:jobs":
                    problems.append(f"ScaledObject/{name}: listName is not multivac:jobs")
        if kind == "ConfigMap" and name.startswith("redis-config"):
            conf = "\n".join(d["data"].values())
            for want in (r"^appendonly yes$", r'^save ""$', r"^maxmemory-policy noeviction$", r"^maxmemory \d+mb$"):
                if not re.search(want, conf, re.M):
                    problems.append(f"ConfigMap/{name}: missing {want}")
    if overlay.endswith("prod"):
        urls = [e["value"] for d in all_docs for c in containers(d) for e in c.get("env", [])
                if e.get("name") == "MONGO_URL"]
        if not urls or not all("w=majority" in u and "journal=true" in u for u in urls):
            problems.append("prod: every MONGO_URL must carry w=majority&journal=true")
        tokens = [e for d in all_docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "multivac-web"
                  for c in containers(d) for e in c.get("env", []) if e.get("name") == "MULTIVAC_WRITE_TOKENS_FILE"]
        if not tokens:
            problems.append("prod: web has no MULTIVAC_WRITE_TOKENS_FILE")
    for p in problems:
        print(f"  {p}")
    if not problems:
        print("  ok")
    return 1 if problems else 0


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "builtin":
        sys.exit(builtin())
    if mode == "crds" and len(sys.argv) == 3:
        sys.exit(crds(sys.argv[2]))
    if mode == "check" and len(sys.argv) == 3:
        sys.exit(check(sys.argv[2]))
    sys.exit(__doc__)
