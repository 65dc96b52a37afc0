"""What a schema cannot see in deploy/kubernetes: that the pieces point at
each other. Run by deploy/check.sh on the rendered manifests (kubectl
kustomize output) with the PyYAML that kubernetes-validate brings.

usage: check_manifests.py SCRAPE_CONFIG RENDERED.yaml...
Exit 1 with one line per problem, 0 when every file agrees.
"""
import re
import sys

import yaml

# The command the DaemonSet must run (the names `tcpq serve` is built with).
SERVE_ARGS = [
    "serve", "--listen", "0.0.0.0:9464",
    "--kubernetes", "--kubernetes-cgroup-root", "/host/sys/fs/cgroup",
    "zero-window-metrics", "window-scaling-metrics", "retransmit-metrics",
    "rtt-metrics", "pod-retransmit-metrics", "/etc/tcpq/recipes",
]
CAPS = {"BPF", "PERFMON", "NET_ADMIN", "SYS_RESOURCE"}
PROBES = {"livenessProbe": "/-/healthy", "startupProbe": "/-/healthy",
          "readinessProbe": "/-/ready"}

problems = []


def need(cond, what):
    if not cond:
        problems.append(what)


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_rendered(path, scrape):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    where = f"{path}:"
    ds = by_kind.get("DaemonSet", [])
    need(len(ds) == 1, f"{where} expected one DaemonSet, found {len(ds)}")
    if not ds:
        return
    ds = ds[0]
    ns = ds["metadata"]["namespace"]
    for d in docs:
        if d["kind"] != "Namespace":
            need(d["metadata"].get("namespace") == ns,
                 f"{where} {d['kind']}/{d['metadata']['name']} is not in namespace {ns}")
    tmpl = ds["spec"]["template"]
    pod_labels = tmpl["metadata"]["labels"]
    need(matches(ds["spec"]["selector"]["matchLabels"], pod_labels),
         f"{where} the DaemonSet's selector does not match its pods")
    spec = tmpl["spec"]
    need(spec.get("hostPID") is True, f"{where} hostPID is not true")
    need(not spec.get("hostNetwork"), f"{where} hostNetwork is set")
    need({"operator": "Exists"} in spec.get("tolerations", []),
         f"{where} the pods do not tolerate every taint")
    (c,) = spec["containers"]
    need(c["args"] == SERVE_ARGS, f"{where} args are {c['args']}, not {SERVE_ARGS}")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    need(ports.get("metrics") == 9464, f"{where} no container port `metrics` 9464")
    for probe, path_ in PROBES.items():
        h = c.get(probe, {}).get("httpGet", {})
        need(h.get("path") == path_ and h.get("port") in ports,
             f"{where} {probe} is not GET {path_} on a container port")
    sc = c["securityContext"]
    need(sc.get("privileged") is False, f"{where} the container is privileged")
    need(sc.get("readOnlyRootFilesystem") is True, f"{where} the root filesystem is writable")
    caps = sc["capabilities"]
    need(caps.get("drop") == ["ALL"], f"{where} capabilities do not drop ALL")
    need(CAPS <= set(caps.get("add", [])), f"{where} capabilities lack {CAPS - set(caps.get('add', []))}")
    need("SYS_ADMIN" not in caps.get("add", []), f"{where} CAP_SYS_ADMIN is added")
    volumes = {v["name"]: v for v in spec["volumes"]}
    for m in c["volumeMounts"]:
        need(m["name"] in volumes, f"{where} mount {m['name']} has no volume")
        v = volumes.get(m["name"], {})
        if "hostPath" in v:
            need(m.get("readOnly") is True, f"{where} host path {v['hostPath']['path']} is writable")
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    need("/sys/kernel/tracing" in mounts, f"{where} tracefs is not mounted")
    need("/etc/tcpq/recipes" in mounts, f"{where} the recipes directory is not mounted")
    # --kubernetes reads the node's cgroup tree where its argument says, and
    # the kubelet's log directories at the node's own paths (the links'
    # targets name them), each from the host path of the same name.
    host = {m["mountPath"]: volumes.get(m["name"], {}).get("hostPath", {}).get("path")
            for m in c["volumeMounts"]}
    if "--kubernetes" in c["args"]:
        root = c["args"][c["args"].index("--kubernetes-cgroup-root") + 1]
        need(host.get(root) == "/sys/fs/cgroup",
             f"{where} --kubernetes-cgroup-root {root} is not the node's /sys/fs/cgroup")
        for d in ("/var/log/pods", "/var/log/containers"):
            need(host.get(d) == d, f"{where} {d} is not the node's {d}")
    cms = {d["metadata"]["name"] for d in by_kind.get("ConfigMap", [])}
    for v in volumes.values():
        if "configMap" in v:
            need(v["configMap"]["name"] in cms,
                 f"{where} volume {v['name']} names ConfigMap {v['configMap']['name']}, not rendered")
    svcs = by_kind.get("Service", [])
    need(len(svcs) == 1, f"{where} expected one Service")
    for s in svcs:
        need(s["spec"].get("clusterIP") == "None", f"{where} the Service is not headless")
        need(matches(s["spec"]["selector"], pod_labels), f"{where} the Service selects no tcpq pod")
        sports = {p["name"]: p for p in s["spec"]["ports"]}
        need(sports.get("metrics", {}).get("targetPort") in ports,
             f"{where} the Service's `metrics` port does not target a container port")
        for sm in by_kind.get("ServiceMonitor", []):
            need(matches(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"]),
                 f"{where} the ServiceMonitor selects no Service")
            for e in sm["spec"]["endpoints"]:
                need(e["port"] in sports, f"{where} the ServiceMonitor's port {e['port']} is not the Service's")
                need(any(r.get("targetLabel") == "instance" and
                         r.get("sourceLabels") == ["__meta_kubernetes_pod_node_name"]
                         for r in e.get("relabelings", [])),
                     f"{where} the ServiceMonitor does not set instance to the node name")
    # The plain scrape config keeps exactly these pods and this port.
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "tcpq"]
    meta = {"__meta_kubernetes_pod_container_port_name": "metrics",
            "__meta_kubernetes_pod_phase": "Running",
            "__meta_kubernetes_namespace": ns}
    for k, v in pod_labels.items():
        meta["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", k)] = v
    for sd in job["kubernetes_sd_configs"]:
        names = sd.get("namespaces", {}).get("names")
        need(names is None or ns in names, f"{where} the scrape config does not watch namespace {ns}")
    for r in job["relabel_configs"]:
        if r.get("action") in ("keep", "drop"):
            value = ";".join(meta.get(l, "") for l in r["source_labels"])
            hit = re.fullmatch(r["regex"], value) is not None
            need(hit == (r["action"] == "keep"),
                 f"{where} the scrape config's {r['action']} on {r['source_labels']} loses tcpq's pods")
    need(any(r.get("target_label") == "instance" and
             r.get("source_labels") == ["__meta_kubernetes_pod_node_name"]
             for r in job["relabel_configs"]),
         f"{where} the scrape config does not set instance to the node name")


def main():
    scrape = yaml.safe_load(open(sys.argv[1]))
    for p in sys.argv[2:]:
        check_rendered(p, scrape)
    for p in problems:
        print(p)
    return 1 if problems else 0


sys.exit(main())
