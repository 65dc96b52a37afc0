//! `tcpq serve --kubernetes`: the pod and container a cgroup id belongs
//! to, from the node's own files (no API server): the cgroup v2 tree and
//! the kubelet's log directories.
//!
//! A series keyed `by cgroup` gets, after its `cgroup` label (kept: it
//! keeps every kernel key its own series), `k8s_namespace_name`,
//! `k8s_pod_name` and `k8s_container_name`, each only when known:
//!
//! 1. id -> path: the cgroup v2 id is the inode number of the cgroup's
//!    directory, so the tree under the cgroup root (`--kubernetes-cgroup-root`,
//!    default the first cgroup2 mount) is walked once and indexed by inode;
//!    again on a miss, at most every [`REFRESH`].
//! 2. path -> pod UID and container id, by the kubelet's cgroup naming
//!    (`pkg/kubelet/cm`: `CgroupName.ToSystemd` escapes `-` as `_` and
//!    expands `kubepods-burstable-pod<UID>.slice` into its parents;
//!    `ToCgroupfs` joins `kubepods/burstable/pod<UID>`) and the runtime's
//!    container cgroup under the pod's: `cri-containerd-<ID>.scope`,
//!    `crio-<ID>.scope`, `docker-<ID>.scope` (systemd), `<ID>` or
//!    `crio-<ID>` (cgroupfs). Any prefix before `kubepods` (kubelet's
//!    `--cgroup-root`, e.g. kind's `kubelet.slice/kubelet-kubepods.slice`)
//!    is allowed. [`parse_cgroup_path`].
//! 3. UID -> namespace and pod: `<log dir>/pods/<namespace>_<pod>_<UID>`
//!    (`BuildPodLogsDirectory`, `pkg/kubelet/kuberuntime/helpers.go`;
//!    neither a namespace nor a pod name can hold `_`). [`parse_pod_dir`].
//! 4. container id -> container name: the symlinks
//!    `<log dir>/containers/<pod>_<namespace>_<container>-<ID>.log` (the
//!    kubelet's `logSymlink`, `legacy.go`; cut to 255 bytes with `.log`,
//!    so a long name may carry only a prefix of the id), whose target is
//!    the container's log, `.../pods/<namespace>_<pod>_<UID>/<container>/N.log`
//!    (`BuildContainerLogsDirectory`). [`parse_container_link`].
//!
//! The rule: a cgroup that is not under `kubepods` (a node's own service,
//! tcpq itself) is resolved as no pod's and gets no k8s label. An id that
//! cannot be resolved gets the labels known so far and is counted, once
//! per id, in `tcpq_kubernetes_unresolved_total{reason}`:
//! `cgroup_not_found` (no directory with that inode: the cgroup was
//! removed before the first scrape that met it, or the root is not the
//! node's tree), `pod_not_found` (a pod's cgroup without its pod log
//! directory), `container_not_found` (a container's cgroup without its
//! `/var/log/containers` link: a pod's sandbox, or a link not written
//! yet). Nothing is ever labelled `unknown`. An id once resolved keeps its
//! labels (the pod may be gone since, its counts are not); an unresolved
//! one is tried again at later scrapes, at most every [`REFRESH`].
use std::collections::HashMap;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tcpq_dsl::plan::Column;
use tcpq_runtime::render::Value;

/// The labels added after `cgroup`, in this order.
pub const LABELS: [&str; 3] = ["k8s_namespace_name", "k8s_pod_name", "k8s_container_name"];

/// The `by` key that gets them.
pub const KEY: &str = "cgroup";

/// The least time between two walks of the cgroup tree, or two reads of
/// the log directories, that a miss triggers.
pub const REFRESH: Duration = Duration::from_secs(2);

/// Resolutions kept; above this, those of ids the last scrape did not
/// show are forgotten (and counted again if met again unresolved).
pub const MAX_CACHED: usize = 100_000;

/// What was not found for an id (why it has no full set of labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unresolved {
    Cgroup,
    Pod,
    Container,
}

impl Unresolved {
    pub const ALL: [Unresolved; 3] = [Unresolved::Cgroup, Unresolved::Pod, Unresolved::Container];

    /// The `reason` label.
    pub fn reason(self) -> &'static str {
        match self {
            Unresolved::Cgroup => "cgroup_not_found",
            Unresolved::Pod => "pod_not_found",
            Unresolved::Container => "container_not_found",
        }
    }
}

/// Whose a cgroup is, by its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Not under `kubepods`, or above the pods (`kubepods.slice`, a QoS
    /// class's slice).
    NotPod,
    /// A pod's cgroup (`container: None`: the pod's own, or a runtime
    /// helper such as CRI-O's `crio-conmon-<ID>.scope`) or one of its
    /// containers'.
    Pod {
        uid: String,
        container: Option<String>,
    },
}

/// A pod UID or container id as the kubelet and runtimes write them:
/// letters, digits, `-`.
fn plausible_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The pod UID a path component names, with the driver's spelling:
/// systemd `[PREFIX-]kubepods[-QOS]-pod<UID with _>.slice`, cgroupfs
/// `pod<UID>` (then `under_kubepods` must hold: an ancestor is
/// `kubepods`).
fn pod_uid(component: &str, under_kubepods: bool) -> Option<String> {
    if let Some(name) = component.strip_suffix(".slice") {
        // ParseSystemdToCgroupName: split at `-`, unescape `_` to `-`.
        let parts: Vec<&str> = name.split('-').collect();
        let last = parts.last()?.strip_prefix("pod")?;
        if parts.len() < 2 || !parts[..parts.len() - 1].contains(&"kubepods") {
            return None;
        }
        let uid = last.replace('_', "-");
        return plausible_id(&uid).then_some(uid);
    }
    let uid = component.strip_prefix("pod")?;
    (under_kubepods && plausible_id(uid)).then(|| uid.to_string())
}

/// The container id a component under a pod's cgroup names; `None` for
/// what is no container (CRI-O's conmon).
fn container_id(component: &str) -> Option<String> {
    let name = component.strip_suffix(".scope").unwrap_or(component);
    if name.starts_with("crio-conmon-") {
        return None;
    }
    // `cri-containerd-ID`, `crio-ID`, `docker-ID`, or a bare ID: ids hold
    // no `-`.
    let id = name.rsplit('-').next()?;
    (plausible_id(id) && id.len() >= 6).then(|| id.to_string())
}

/// Whose the cgroup at `path` (relative to the cgroup root, `/`-separated,
/// leading `/` or not) is, by the kubelet's naming for either cgroup
/// driver.
pub fn parse_cgroup_path(path: &str) -> Owner {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut under_kubepods = false;
    for (i, c) in parts.iter().enumerate() {
        if *c == "kubepods" || c.ends_with("-kubepods") {
            under_kubepods = true;
            continue;
        }
        if let Some(uid) = pod_uid(c, under_kubepods) {
            return Owner::Pod {
                uid,
                container: parts.get(i + 1).and_then(|c| container_id(c)),
            };
        }
    }
    Owner::NotPod
}

/// A pod log directory's name: `<namespace>_<pod>_<UID>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodDir {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
}

pub fn parse_pod_dir(name: &str) -> Option<PodDir> {
    let mut it = name.split('_');
    let (ns, pod, uid) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || ns.is_empty() || pod.is_empty() || !plausible_id(uid) {
        return None;
    }
    Some(PodDir {
        namespace: ns.to_string(),
        pod: pod.to_string(),
        uid: uid.to_string(),
    })
}

/// One `/var/log/containers` link: the container it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerLink {
    pub pod: PodDir,
    pub container: String,
    /// The container id, or its first bytes when the kubelet cut the
    /// name at 255 bytes (`truncated`).
    pub id: String,
    pub truncated: bool,
}

/// The longest file name the kubelet writes (`ext4MaxFileNameLen`).
const MAX_NAME: usize = 255;

/// A link's file name and target, as the kubelet writes them: the
/// target's last three components name the pod, the container and the
/// log file; the name is `<pod>_<namespace>_<container>-<ID>.log`.
pub fn parse_container_link(name: &str, target: &Path) -> Option<ContainerLink> {
    let mut back = target.iter().rev();
    let _file = back.next()?;
    let container = back.next()?.to_str()?.to_string();
    let pod = parse_pod_dir(back.next()?.to_str()?)?;
    let stem = name.strip_suffix(".log")?;
    let prefix = format!("{}_{}_{}-", pod.pod, pod.namespace, container);
    let id = stem.strip_prefix(&prefix)?;
    let truncated = name.len() >= MAX_NAME;
    if !plausible_id(id) || id.contains('-') || (!truncated && id.len() < 6) {
        return None;
    }
    Some(ContainerLink {
        pod,
        container,
        id: id.to_string(),
        truncated,
    })
}

/// The labels one id gets (each `None`: absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
}

#[derive(Debug)]
struct Entry {
    names: Names,
    missing: Option<Unresolved>,
    /// Counted in the self-metric already.
    counted: bool,
    /// When it was resolved last.
    at: Instant,
    /// Shown by the current scrape.
    seen: u64,
}

/// What was read from the node, and the resolutions made.
#[derive(Debug, Default)]
struct Index {
    /// inode -> path under the cgroup root.
    paths: HashMap<u64, String>,
    walked: Option<Instant>,
    /// pod UID -> its log directory's names.
    pods: HashMap<String, PodDir>,
    /// container id (or the prefix a cut link name holds) -> link.
    containers: Vec<ContainerLink>,
    logs_read: Option<Instant>,
    cache: HashMap<u64, Entry>,
    unresolved: [u64; 3],
    scrape: u64,
}

/// The resolver `tcpq serve --kubernetes` keeps for its whole run.
#[derive(Debug)]
pub struct Resolver {
    cgroup_root: PathBuf,
    log_dir: PathBuf,
    index: Mutex<Index>,
}

/// Problems found when starting: each one a clear error.
#[derive(Debug)]
pub enum StartError {
    NoCgroup2,
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::NoCgroup2 => f.write_str(
                "--kubernetes: no cgroup v2 hierarchy is mounted (mount -t cgroup2 none \
                 /sys/fs/cgroup), or name the node's with --kubernetes-cgroup-root",
            ),
            StartError::Unreadable { path, source } => {
                write!(f, "--kubernetes: cannot read {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for StartError {}

impl Resolver {
    /// Check that the roots can be read (`cgroup_root` `None`: the first
    /// cgroup2 mount; `log_dir` holds `pods/` and `containers/`).
    pub fn open(cgroup_root: Option<&Path>, log_dir: &Path) -> Result<Resolver, StartError> {
        let cgroup_root = match cgroup_root {
            Some(p) => p.to_path_buf(),
            None => crate::command::cgroup2_mount().ok_or(StartError::NoCgroup2)?,
        };
        for p in [
            cgroup_root.clone(),
            log_dir.join("pods"),
            log_dir.join("containers"),
        ] {
            std::fs::read_dir(&p).map_err(|source| StartError::Unreadable { path: p, source })?;
        }
        Ok(Resolver {
            cgroup_root,
            log_dir: log_dir.to_path_buf(),
            index: Mutex::new(Index::default()),
        })
    }

    /// For one scrape: resolve ids and add the labels.
    pub fn scrape(&self) -> Labeller<'_> {
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        index.scrape += 1;
        Labeller {
            resolver: self,
            index,
        }
    }

    /// Every directory under the cgroup root, by inode (the readdir's
    /// `d_ino`: no stat per cgroup).
    fn walk(&self) -> HashMap<u64, String> {
        let mut out = HashMap::new();
        if let Ok(m) = std::fs::metadata(&self.cgroup_root) {
            out.insert(m.ino(), "/".to_string());
        }
        let mut todo = vec![(self.cgroup_root.clone(), String::new())];
        while let Some((dir, rel)) = todo.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let path = format!("{rel}/{name}");
                out.insert(e.ino(), path.clone());
                todo.push((e.path(), path));
            }
        }
        out
    }

    /// The pod log directories and the container links.
    fn read_logs(&self) -> (HashMap<String, PodDir>, Vec<ContainerLink>) {
        let mut pods = HashMap::new();
        if let Ok(rd) = std::fs::read_dir(self.log_dir.join("pods")) {
            for e in rd.flatten() {
                if let Some(p) = e.file_name().to_str().and_then(parse_pod_dir) {
                    pods.insert(p.uid.clone(), p);
                }
            }
        }
        let mut links = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.log_dir.join("containers")) {
            for e in rd.flatten() {
                let (Some(name), Ok(target)) = (
                    e.file_name().to_str().map(str::to_owned),
                    std::fs::read_link(e.path()),
                ) else {
                    continue;
                };
                if let Some(l) = parse_container_link(&name, &target) {
                    links.push(l);
                }
            }
        }
        (pods, links)
    }
}

/// The resolver, held for one scrape.
pub struct Labeller<'a> {
    resolver: &'a Resolver,
    index: MutexGuard<'a, Index>,
}

impl Labeller<'_> {
    /// After the `cgroup` key's label, the k8s labels its id resolves to.
    pub fn extend(
        &mut self,
        keys: &[Column],
        values: &[Value],
        labels: &mut Vec<(String, String)>,
    ) {
        let Some(i) = keys.iter().position(|c| c.name == KEY) else {
            return;
        };
        let Some(Value::Uint(id)) = values.get(i) else {
            return;
        };
        let names = self.names(*id);
        let extra = [names.namespace, names.pod, names.container];
        let mut at = i + 1;
        for (name, value) in LABELS.iter().zip(extra) {
            if let Some(v) = value {
                labels.insert(at.min(labels.len()), (name.to_string(), v));
                at += 1;
            }
        }
    }

    /// Counts per reason, in [`Unresolved::ALL`]'s order.
    pub fn unresolved(&self) -> Vec<(&'static str, u64)> {
        Unresolved::ALL
            .iter()
            .map(|u| (u.reason(), self.index.unresolved[*u as usize]))
            .collect()
    }

    /// The labels of one cgroup id, resolved now or before.
    pub fn names(&mut self, id: u64) -> Names {
        let now = Instant::now();
        let scrape = self.index.scrape;
        if let Some(e) = self.index.cache.get_mut(&id) {
            e.seen = scrape;
            if e.missing.is_none() || now.duration_since(e.at) < REFRESH {
                return e.names.clone();
            }
        }
        let (names, missing) = self.resolve(id, now);
        let ix = &mut *self.index;
        let e = ix.cache.entry(id).or_insert(Entry {
            names: Names::default(),
            missing: None,
            counted: false,
            at: now,
            seen: scrape,
        });
        e.names = names.clone();
        e.missing = missing;
        e.at = now;
        if let (Some(m), false) = (missing, e.counted) {
            e.counted = true;
            ix.unresolved[m as usize] += 1;
        }
        names
    }

    fn stale(t: Option<Instant>, now: Instant) -> bool {
        t.is_none_or(|t| now.duration_since(t) >= REFRESH)
    }

    fn resolve(&mut self, id: u64, now: Instant) -> (Names, Option<Unresolved>) {
        let r = self.resolver;
        if !self.index.paths.contains_key(&id) && Self::stale(self.index.walked, now) {
            self.index.paths = r.walk();
            self.index.walked = Some(now);
        }
        let Some(path) = self.index.paths.get(&id) else {
            return (Names::default(), Some(Unresolved::Cgroup));
        };
        let Owner::Pod { uid, container } = parse_cgroup_path(path) else {
            return (Names::default(), None);
        };
        let known = |ix: &Index| {
            let pod = ix.pods.get(&uid).cloned();
            let link = container.as_ref().and_then(|c| {
                ix.containers.iter().find(|l| {
                    l.pod.uid == uid
                        && match l.truncated {
                            true => c.starts_with(&l.id),
                            false => *c == l.id,
                        }
                })
            });
            (pod, link.map(|l| l.container.clone()))
        };
        let (mut pod, mut name) = known(&self.index);
        if (pod.is_none() || (container.is_some() && name.is_none()))
            && Self::stale(self.index.logs_read, now)
        {
            let (pods, links) = r.read_logs();
            self.index.pods = pods;
            self.index.containers = links;
            self.index.logs_read = Some(now);
            (pod, name) = known(&self.index);
        }
        let Some(pod) = pod else {
            return (Names::default(), Some(Unresolved::Pod));
        };
        let missing = (container.is_some() && name.is_none()).then_some(Unresolved::Container);
        (
            Names {
                namespace: Some(pod.namespace),
                pod: Some(pod.pod),
                container: name,
            },
            missing,
        )
    }
}

impl Drop for Labeller<'_> {
    /// Keep the cache bounded: above [`MAX_CACHED`], forget the ids this
    /// scrape did not show.
    fn drop(&mut self) {
        let scrape = self.index.scrape;
        if self.index.cache.len() > MAX_CACHED {
            self.index.cache.retain(|_, e| e.seen == scrape);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "8d1c2a3e-5f6b-4c7d-9e0f-1a2b3c4d5e6f";

    fn pod(container: Option<&str>) -> Owner {
        Owner::Pod {
            uid: UID.into(),
            container: container.map(Into::into),
        }
    }

    /// The systemd driver's names (`ToSystemd`: `-` in the UID written
    /// `_`, every parent slice spelled out), with each runtime's scope.
    #[test]
    fn systemd_driver_paths() {
        let u = UID.replace('-', "_");
        for (qos, scope) in [
            ("burstable", format!("cri-containerd-{ID}.scope")),
            ("besteffort", format!("crio-{ID}.scope")),
            ("burstable", format!("docker-{ID}.scope")),
        ] {
            let p =
                format!("/kubepods.slice/kubepods-{qos}.slice/kubepods-{qos}-pod{u}.slice/{scope}");
            assert_eq!(parse_cgroup_path(&p), pod(Some(ID)), "{p}");
        }
        // Guaranteed pods sit right under kubepods.
        let p = format!("/kubepods.slice/kubepods-pod{u}.slice/cri-containerd-{ID}.scope");
        assert_eq!(parse_cgroup_path(&p), pod(Some(ID)));
        // The pod's own cgroup; CRI-O's conmon is no container.
        let p =
            format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice");
        assert_eq!(parse_cgroup_path(&p), pod(None));
        let p = format!("{p}/crio-conmon-{ID}.scope");
        assert_eq!(parse_cgroup_path(&p), pod(None));
        // kubelet --cgroup-root=/kubelet (kind): a prefix everywhere.
        let p = format!(
            "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/\
             kubelet-kubepods-burstable-pod{u}.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(parse_cgroup_path(&p), pod(Some(ID)));
        // A process in a cgroup below the container's is still its.
        assert_eq!(parse_cgroup_path(&format!("{p}/init.scope")), pod(Some(ID)));
    }

    #[test]
    fn cgroupfs_driver_paths() {
        for p in [
            format!("/kubepods/burstable/pod{UID}/{ID}"),
            format!("/kubepods/besteffort/pod{UID}/{ID}"),
            format!("/kubepods/pod{UID}/{ID}"),
            format!("/kubepods/pod{UID}/crio-{ID}"),
            format!("kubelet/kubepods/burstable/pod{UID}/{ID}"),
        ] {
            assert_eq!(parse_cgroup_path(&p), pod(Some(ID)), "{p}");
        }
        assert_eq!(
            parse_cgroup_path(&format!("/kubepods/burstable/pod{UID}")),
            pod(None)
        );
    }

    /// What is no pod's: the node's own services, the slices above the
    /// pods, a `pod...` directory elsewhere.
    #[test]
    fn not_a_pod() {
        for p in [
            "/",
            "/system.slice/containerd.service",
            "/user.slice/user-1000.slice/session-2.scope",
            "/kubepods.slice",
            "/kubepods.slice/kubepods-burstable.slice",
            "/kubepods/burstable",
            "/podman/pod1234/abcdef",
            "/system.slice/pod1234.slice",
            "/machine.slice/libpod-pod_x.slice",
        ] {
            assert_eq!(parse_cgroup_path(p), Owner::NotPod, "{p}");
        }
    }

    /// `BuildPodLogsDirectory`: `<namespace>_<pod>_<UID>`.
    #[test]
    fn pod_log_directories() {
        assert_eq!(
            parse_pod_dir(&format!("kube-system_coredns-5d78c9869d-abcde_{UID}")),
            Some(PodDir {
                namespace: "kube-system".into(),
                pod: "coredns-5d78c9869d-abcde".into(),
                uid: UID.into(),
            })
        );
        // The layout before 1.14: the UID alone; and anything else.
        for bad in [UID, "a_b", "a_b_c_d", "_pod_uid", "ns__uid", "ns_pod_u!d"] {
            assert_eq!(parse_pod_dir(bad), None, "{bad}");
        }
    }

    /// `logSymlink`: `<pod>_<namespace>_<container>-<ID>.log`, pointing at
    /// `.../pods/<namespace>_<pod>_<UID>/<container>/<restarts>.log`.
    #[test]
    fn container_log_links() {
        let target = format!("/var/log/pods/shop_web-7f9c_{UID}/nginx-proxy/3.log");
        let name = format!("web-7f9c_shop_nginx-proxy-{ID}.log");
        let l = parse_container_link(&name, Path::new(&target)).unwrap();
        assert_eq!(l.pod.namespace, "shop");
        assert_eq!(l.pod.pod, "web-7f9c");
        assert_eq!(l.pod.uid, UID);
        assert_eq!(l.container, "nginx-proxy");
        assert_eq!(l.id, ID);
        assert!(!l.truncated);
        // A name that disagrees with its target is not trusted.
        let other = format!("web-7f9c_shop_other-{ID}.log");
        assert_eq!(parse_container_link(&other, Path::new(&target)), None);
        // Cut at 255 bytes: what is left of the id is a prefix.
        let long = "p".repeat(200);
        let target = format!("/var/log/pods/ns_{long}_{UID}/c/0.log");
        let full = format!("{long}_ns_c-{ID}");
        let name = format!("{}.log", &full[..MAX_NAME - 4]);
        let l = parse_container_link(&name, Path::new(&target)).unwrap();
        assert!(l.truncated);
        assert!(ID.starts_with(&l.id) && l.id.len() < ID.len(), "{}", l.id);
    }

    /// The whole resolution over trees made here: labels, the rule for
    /// what is no pod's, and each reason counted once per id.
    #[test]
    fn resolves_from_a_tree_and_counts_what_it_cannot() {
        let base = std::env::temp_dir().join(format!("tcpq-k8s-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let cg = base.join("cgroup");
        let u = UID.replace('-', "_");
        let pod_dir = cg.join(format!(
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice"
        ));
        let web = pod_dir.join(format!("cri-containerd-{ID}.scope"));
        let sandbox_id = "f".repeat(64);
        let sandbox = pod_dir.join(format!("cri-containerd-{sandbox_id}.scope"));
        let orphan =
            cg.join("kubepods/burstable/pod11111111-2222-3333-4444-555555555555/abcdef123456");
        let host = cg.join("system.slice/sshd.service");
        for d in [&web, &sandbox, &orphan, &host] {
            std::fs::create_dir_all(d).unwrap();
        }
        let logs = base.join("log");
        let pods = logs.join(format!("pods/shop_web-1_{UID}/nginx"));
        std::fs::create_dir_all(&pods).unwrap();
        std::fs::create_dir_all(logs.join("containers")).unwrap();
        std::os::unix::fs::symlink(
            pods.join("0.log"),
            logs.join(format!("containers/web-1_shop_nginx-{ID}.log")),
        )
        .unwrap();
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        let r = Resolver::open(Some(&cg), &logs).unwrap();
        let mut s = r.scrape();
        assert_eq!(
            s.names(ino(&web)),
            Names {
                namespace: Some("shop".into()),
                pod: Some("web-1".into()),
                container: Some("nginx".into()),
            }
        );
        assert_eq!(s.names(ino(&host)), Names::default());
        assert_eq!(
            s.names(ino(&sandbox)),
            Names {
                namespace: Some("shop".into()),
                pod: Some("web-1".into()),
                container: None,
            }
        );
        assert_eq!(s.names(ino(&orphan)), Names::default());
        assert_eq!(s.names(u64::MAX), Names::default());
        // Met again: not counted again.
        s.names(ino(&orphan));
        s.names(u64::MAX);
        assert_eq!(
            s.unresolved(),
            [
                ("cgroup_not_found", 1),
                ("pod_not_found", 1),
                ("container_not_found", 1)
            ]
        );
        drop(s);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn roots_that_cannot_be_read_are_an_error() {
        let e = Resolver::open(Some(Path::new("/")), Path::new("/nonexistent-tcpq")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent-tcpq/pods"), "{e}");
    }
}
