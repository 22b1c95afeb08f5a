//! [`Environment`]: one ephemeral test environment, from [`Environment::create`] to
//! [`Environment::teardown`] (or its `Drop`, on every other path).

use std::fs::File;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::NetnsError;
use crate::files::{RESOLV_CONF, hosts_text};
use crate::ns::{self, InsideThread, NsId};
use crate::paths::{self, ENV_DIR, MAKING_PREFIX};
use crate::privilege::check_privileges;
use crate::procs;
use crate::rtnl::Rtnl;
use crate::spawn::{self, Entry, Process, SpawnSpec};
use crate::state::{self, State};
use crate::veth::{Veth, VethSpec};

/// The hosts file's name in an environment's folder.
pub const HOSTS_FILE: &str = "hosts";
/// The resolv.conf's name in an environment's folder.
pub const RESOLV_FILE: &str = "resolv.conf";

/// How often readiness is probed.
const PROBE_EVERY: Duration = Duration::from_millis(20);
/// Lines of stderr quoted when a process fails to get ready.
const TAIL_LINES: usize = 5;

/// What an environment is made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSpec {
    /// The start of its name (`PREFIX-PID-N`): 1 to 24 of `a-z`, `0-9`, `-`.
    pub prefix: String,
    /// Extra lines of its hosts file: an address and its names.
    pub hosts: Vec<(IpAddr, Vec<String>)>,
    /// Addresses put on its loopback besides 127.0.0.0/8 and ::1 (recorded dependencies
    /// known only by a non-loopback address listen there).
    pub loopback_addresses: Vec<IpAddr>,
}

impl Default for EnvSpec {
    fn default() -> Self {
        EnvSpec {
            prefix: "env".into(),
            hosts: Vec::new(),
            loopback_addresses: Vec::new(),
        }
    }
}

/// How [`Environment::wait_ready`] ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The port accepted a connection after this long.
    Ready(Duration),
    /// The caller's `abort` said to stop waiting.
    Aborted,
}

/// What [`Environment::teardown`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeardownReport {
    /// Processes killed inside the namespace.
    pub killed: usize,
    /// What could not be removed, one line each.
    pub errors: Vec<String>,
    /// How long it took.
    pub elapsed: Duration,
}

/// An ephemeral environment: a network namespace with loopback up and no route out, its own
/// hosts file and resolv.conf, the processes started in it, and the veths made for it.
///
/// Everything is removed by [`Environment::teardown`], or by `Drop` when it was not called; an
/// environment whose process died without either is removed by [`crate::cleanup_stale`].
#[derive(Debug)]
pub struct Environment {
    name: String,
    dir: PathBuf,
    netns_path: PathBuf,
    ns: File,
    ns_id: NsId,
    state: State,
    veths: Vec<Veth>,
    groups: Vec<u32>,
    torn_down: bool,
}

impl Environment {
    /// Makes an environment: its folder and state file first, then the namespace, loopback up
    /// with `spec`'s extra addresses, and no other link.
    ///
    /// # Errors
    /// [`NetnsError::Privilege`] without CAP_SYS_ADMIN and CAP_NET_ADMIN, [`NetnsError::Invalid`]
    /// for a bad prefix, or what failed; whatever was made is removed again.
    pub fn create(spec: &EnvSpec) -> Result<Self, NetnsError> {
        paths::check_prefix(&spec.prefix).map_err(NetnsError::Invalid)?;
        check_privileges("an ephemeral environment (network namespace)")?;
        std::fs::create_dir_all(ENV_DIR)
            .map_err(|e| NetnsError::io("creating the environments folder", ENV_DIR, e))?;
        let (dir, state) = make_dir(spec)?;
        let name = state.name.clone();
        let netns_path = paths::netns_file(&name);
        let ns = match ns::create(&netns_path) {
            Ok(ns) => ns,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let ns_id = match NsId::of_file(&ns) {
            Ok(id) => id,
            Err(e) => {
                state::dismantle(&name, None, &[]);
                return Err(NetnsError::io("reading the namespace file", &netns_path, e));
            }
        };
        // From here on, dropping `env` removes everything.
        let env = Environment {
            name,
            dir,
            netns_path,
            ns,
            ns_id,
            state,
            veths: Vec::new(),
            groups: Vec::new(),
            torn_down: false,
        };
        let extra = spec.loopback_addresses.clone();
        env.run_in(move || configure_loopback(&extra))??;
        Ok(env)
    }

    /// Its name (`PREFIX-PID-N`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its folder under `/run/tapline/env`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its namespace file under `/run/tapline/netns` (what `nsenter --net=FILE` takes).
    pub fn netns_path(&self) -> &Path {
        &self.netns_path
    }

    /// The open namespace file.
    pub fn netns(&self) -> &File {
        &self.ns
    }

    /// The namespace's identity.
    pub fn ns_id(&self) -> NsId {
        self.ns_id
    }

    /// The veths made so far.
    pub fn veths(&self) -> &[Veth] {
        &self.veths
    }

    /// Runs `f` on a new thread inside the namespace and waits for its result.
    ///
    /// # Errors
    /// [`NetnsError::Thread`] when the thread cannot start or enter, or `f` panicked.
    pub fn run_in<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, NetnsError> {
        InsideThread::spawn(&self.ns, "tapline-netns", f)?.join()
    }

    /// Starts `f` on a thread named `name` inside the namespace (threads and tokio runtimes
    /// it starts are inside too).
    ///
    /// # Errors
    /// [`NetnsError::Thread`] or [`NetnsError::Sys`] when the thread cannot start or enter.
    pub fn thread<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<InsideThread<T>, NetnsError> {
        InsideThread::spawn(&self.ns, name, f)
    }

    /// Opens a TCP connection to `addr` from inside the namespace.
    ///
    /// # Errors
    /// The connection's error (a thread failure comes as an `io::Error` too).
    pub fn connect(&self, addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
        self.run_in(move || TcpStream::connect_timeout(&addr, timeout))
            .map_err(|e| std::io::Error::other(e.to_string()))?
    }

    /// Starts `spec` inside the environment (namespace, hosts file, resolv.conf), leading a
    /// process group of its own.
    ///
    /// # Errors
    /// [`NetnsError::Spawn`] when it cannot start, [`NetnsError::Io`] for its log files.
    pub fn spawn(&mut self, spec: &SpawnSpec) -> Result<Process, NetnsError> {
        let entry = Entry::new(
            &self.ns,
            &self.dir.join(HOSTS_FILE),
            &self.dir.join(RESOLV_FILE),
        )
        .map_err(|e| NetnsError::io("preparing to enter the environment", &self.dir, e))?;
        let process = spawn::start(spec, entry, &self.dir)?;
        self.groups.push(process.pid());
        Ok(process)
    }

    /// Waits until `127.0.0.1:port` inside the namespace accepts a connection, polling; fails
    /// when `process` exits first or `timeout` passes (both errors quote its stderr's end).
    /// `abort` is asked between polls; when it says so, waiting stops.
    ///
    /// # Errors
    /// [`NetnsError::Exited`] or [`NetnsError::NotReady`].
    pub fn wait_ready(
        &self,
        process: &mut Process,
        port: u16,
        timeout: Duration,
        mut abort: impl FnMut() -> bool,
    ) -> Result<Readiness, NetnsError> {
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let probing = Arc::clone(&stop);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let prober = self.thread("tapline-ready", move || {
            while !probing.load(Ordering::Relaxed) {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(250)).is_ok() {
                    let _ = ready_tx.send(());
                    return;
                }
                std::thread::sleep(PROBE_EVERY);
            }
        })?;
        let tail = |process: &Process| match process.stderr_tail(TAIL_LINES) {
            t if t.is_empty() => "; it wrote nothing on stderr".to_owned(),
            t => format!("; its stderr ends with: {t}"),
        };
        let outcome = loop {
            if ready_rx.recv_timeout(PROBE_EVERY).is_ok() {
                break Ok(Readiness::Ready(started.elapsed()));
            }
            if let Some(status) = process.status() {
                break Err(NetnsError::Exited {
                    command: process.command().to_owned(),
                    status: status.to_string(),
                    port,
                    tail: tail(process),
                });
            }
            if abort() {
                break Ok(Readiness::Aborted);
            }
            if started.elapsed() >= timeout {
                break Err(NetnsError::NotReady {
                    command: process.command().to_owned(),
                    port,
                    waited: timeout,
                    tail: tail(process),
                });
            }
        };
        stop.store(true, Ordering::Relaxed);
        let _ = prober.join();
        outcome
    }

    /// Joins the environment to the host with a veth pair: the host end (`tlh…`) and the
    /// environment end (`tle…`) get `spec`'s addresses and come up; a default route through
    /// the host end is added only when `spec` asks. Call it from a thread in the host's
    /// namespace (such as the main thread).
    ///
    /// # Errors
    /// [`NetnsError::Netlink`] when a step is refused (the pair is removed at teardown).
    pub fn add_veth(&mut self, spec: &VethSpec) -> Result<Veth, NetnsError> {
        let count = u32::try_from(self.veths.len()).unwrap_or(u32::MAX);
        let (host_name, env_name) = paths::veth_names(&self.name, count);
        // Recorded before it exists, so a crash leaves nothing the cleanup does not know.
        self.state.veths.push(host_name.clone());
        self.state
            .write(&self.dir)
            .map_err(|e| NetnsError::io("writing the state file", &self.dir, e))?;
        let netlink = |what: String| move |source| NetnsError::Netlink { what, source };
        let mut rtnl = Rtnl::open().map_err(netlink("opening a socket".into()))?;
        rtnl.add_veth(&host_name, &env_name, self.ns.as_fd())
            .map_err(netlink(format!("creating veth {host_name}/{env_name}")))?;
        let index = rtnl
            .link_index(&host_name)
            .map_err(netlink(format!("finding {host_name}")))?
            .ok_or_else(|| NetnsError::Netlink {
                what: format!("finding {host_name}"),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })?;
        rtnl.add_address(index, IpAddr::V4(spec.host.addr), spec.host.prefix)
            .map_err(netlink(format!("adding {} to {host_name}", spec.host)))?;
        rtnl.set_up(index)
            .map_err(netlink(format!("bringing {host_name} up")))?;
        let inside = env_name.clone();
        let spec_inside = *spec;
        self.run_in(move || configure_env_end(&inside, &spec_inside))??;
        let veth = Veth {
            host_name,
            env_name,
            spec: *spec,
        };
        self.veths.push(veth.clone());
        Ok(veth)
    }

    /// The processes inside the namespace now (this one left out).
    pub fn processes(&self) -> Vec<u32> {
        procs::in_namespace(self.ns_id)
    }

    /// Removes everything: the process groups started and every process inside the namespace
    /// are killed, the veths deleted, the namespace unmounted and its file deleted, the folder
    /// removed. Threads of this process still inside keep the namespace itself alive until
    /// they end. Call it from a thread in the host's namespace.
    pub fn teardown(mut self) -> TeardownReport {
        self.teardown_now()
    }

    fn teardown_now(&mut self) -> TeardownReport {
        if self.torn_down {
            return TeardownReport::default();
        }
        self.torn_down = true;
        let started = Instant::now();
        for group in &self.groups {
            procs::signal_group(*group, nix::sys::signal::Signal::SIGKILL);
        }
        let done = state::dismantle(&self.name, Some(self.ns_id), &self.state.veths);
        TeardownReport {
            killed: done.killed,
            errors: done.errors,
            elapsed: started.elapsed(),
        }
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        let report = self.teardown_now();
        for error in report.errors {
            tracing::warn!(env = %self.name, "teardown: {error}");
        }
    }
}

/// Makes the folder of a new environment: written complete under a temporary name, then
/// renamed, so a folder without its state file is never seen. Returns it and the state.
fn make_dir(spec: &EnvSpec) -> Result<(PathBuf, State), NetnsError> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let hostname = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok());
    let hosts = hosts_text(&spec.hosts, hostname.as_deref());
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{}-{n}", spec.prefix, std::process::id());
        let dir = paths::env_dir(&name);
        if dir.exists() || paths::netns_file(&name).exists() {
            // Left by an earlier process with the same id: the cleanup's business.
            continue;
        }
        let making = Path::new(ENV_DIR).join(format!("{MAKING_PREFIX}{name}"));
        let state = State::new(&name);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir(&making)?;
            state.write(&making)?;
            std::fs::write(making.join(HOSTS_FILE), &hosts)?;
            std::fs::write(making.join(RESOLV_FILE), RESOLV_CONF)?;
            std::fs::rename(&making, &dir)
        };
        return match write() {
            Ok(()) => Ok((dir, state)),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&making);
                Err(NetnsError::io(
                    "creating the environment's folder",
                    making,
                    e,
                ))
            }
        };
    }
}

/// Inside the namespace: loopback up, `extra` addresses on it.
fn configure_loopback(extra: &[IpAddr]) -> Result<(), NetnsError> {
    let what = |what: String| move |source| NetnsError::Netlink { what, source };
    let mut rtnl = Rtnl::open().map_err(what("opening a socket".into()))?;
    let lo = rtnl
        .link_index("lo")
        .map_err(what("finding lo".into()))?
        .unwrap_or(1);
    rtnl.set_up(lo).map_err(what("bringing lo up".into()))?;
    for address in extra {
        let prefix = if address.is_ipv4() { 32 } else { 128 };
        rtnl.add_address(lo, *address, prefix)
            .map_err(what(format!("adding {address} to lo")))?;
    }
    Ok(())
}

/// Inside the namespace: the environment's veth end gets its address and comes up, and the
/// default route when asked.
fn configure_env_end(name: &str, spec: &VethSpec) -> Result<(), NetnsError> {
    let what = |what: String| move |source| NetnsError::Netlink { what, source };
    let mut rtnl = Rtnl::open().map_err(what("opening a socket".into()))?;
    let index = rtnl
        .link_index(name)
        .map_err(what(format!("finding {name}")))?
        .ok_or_else(|| NetnsError::Netlink {
            what: format!("finding {name}"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
    rtnl.add_address(index, IpAddr::V4(spec.env.addr), spec.env.prefix)
        .map_err(what(format!("adding {} to {name}", spec.env)))?;
    rtnl.set_up(index)
        .map_err(what(format!("bringing {name} up")))?;
    if spec.default_route {
        rtnl.add_default_route(spec.host.addr)
            .map_err(what(format!(
                "adding a default route via {}",
                spec.host.addr
            )))?;
    }
    Ok(())
}
