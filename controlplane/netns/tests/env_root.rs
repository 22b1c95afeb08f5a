//! The environment API against the real kernel (root only): a namespace with loopback and no
//! route out, processes started inside seeing its hosts file, threads inside, a veth to the
//! host without a default route, teardown leaving nothing, and the cleanup of an environment
//! whose owner died. Skipped without root, failed instead when TAPLINE_REQUIRE_PRIVILEGED=1.

#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use tapline_netns::state::State;
use tapline_netns::{EnvSpec, Environment, NsId, SpawnSpec, VethSpec, cleanup_stale};

/// Whether the test can run; skips (or fails under TAPLINE_REQUIRE_PRIVILEGED=1) otherwise.
fn privileged(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("TAPLINE_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
        "{test}: needs root and TAPLINE_REQUIRE_PRIVILEGED=1 forbids skipping"
    );
    eprintln!("SKIPPED {test}: needs root (network namespaces)");
    false
}

fn spec() -> EnvSpec {
    EnvSpec {
        prefix: "test".into(),
        hosts: vec![("127.0.1.1".parse().unwrap(), vec!["inventory".into()])],
        loopback_addresses: vec!["10.77.0.9".parse().unwrap()],
    }
}

fn wait_file(path: &Path) -> String {
    for _ in 0..500 {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{} was not written", path.display());
}

#[test]
fn environment_root_is_sealed_and_torn_down() {
    if !privileged("environment_root_is_sealed_and_torn_down") {
        return;
    }
    let mut env = Environment::create(&spec()).unwrap();
    let name = env.name().to_owned();
    let netns = env.netns_path().to_owned();
    let dir = env.dir().to_owned();
    assert!(netns.exists() && dir.join("state.json").exists());
    assert!(
        std::fs::read_to_string(dir.join("hosts"))
            .unwrap()
            .contains("127.0.1.1\tinventory")
    );

    // No route out; the extra loopback address is there; a listener inside is not reachable
    // from the host.
    let outside: SocketAddr = "192.0.2.1:80".parse().unwrap();
    let error = env.connect(outside, Duration::from_secs(2)).unwrap_err();
    assert_eq!(
        error.raw_os_error(),
        Some(nix::libc::ENETUNREACH),
        "{error}"
    );
    let inside = env
        .run_in(|| {
            let listener = TcpListener::bind("10.77.0.9:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let lo = TcpListener::bind("127.0.0.1:0").unwrap();
            (listener, addr, lo.local_addr().unwrap(), lo)
        })
        .unwrap();
    env.connect(inside.1, Duration::from_secs(2)).unwrap();
    let from_host = TcpStream::connect_timeout(&inside.2, Duration::from_secs(2));
    assert!(from_host.is_err(), "the host reached a listener inside");

    // A process inside sees the environment's hosts file and resolv.conf, in the namespace.
    let out = dir.join("seen");
    let mut process = env
        .spawn(&SpawnSpec {
            command: format!(
                "cat /etc/hosts /etc/resolv.conf > {0}.tmp; ls /sys/class/net >> {0}.tmp; echo done >> {0}.tmp; mv {0}.tmp {0}; exec sleep 60",
                out.display()
            ),
            label: "probe".into(),
            ..SpawnSpec::default()
        })
        .unwrap();
    let seen = wait_file(&out);
    assert!(
        seen.contains("inventory") && seen.contains("nameserver 127.0.0.1"),
        "{seen}"
    );
    // Its /sys is the namespace's: loopback only.
    let links: Vec<&str> = seen
        .lines()
        .skip_while(|l| !l.starts_with("options"))
        .skip(1)
        .take_while(|l| *l != "done")
        .collect();
    assert_eq!(links, ["lo"], "{seen}");
    let ns = NsId::of_path(Path::new(&format!("/proc/{}/ns/net", process.pid()))).unwrap();
    assert_eq!(ns, env.ns_id());
    // `mv` may still be exiting.
    for _ in 0..200 {
        if env.processes() == vec![process.pid()] {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(env.processes(), vec![process.pid()]);
    // The host's hosts file is untouched.
    assert!(
        !std::fs::read_to_string("/etc/hosts")
            .unwrap()
            .contains("127.0.1.1\tinventory")
    );

    let report = env.teardown();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(
        process.status().is_some(),
        "the process survived the teardown"
    );
    assert!(!netns.exists(), "{} is left", netns.display());
    assert!(!dir.exists(), "{} is left", dir.display());
    drop(inside);
    assert!(!Path::new(&format!("/run/tapline/env/{name}")).exists());
}

#[test]
fn veth_root_reaches_the_host_end_only() {
    if !privileged("veth_root_reaches_the_host_end_only") {
        return;
    }
    let mut env = Environment::create(&EnvSpec {
        prefix: "test".into(),
        ..EnvSpec::default()
    })
    .unwrap();
    let spec = VethSpec::link_local(std::process::id() % 16000 + 100);
    let veth = env.add_veth(&spec).unwrap();
    let host_side = Path::new("/sys/class/net").join(&veth.host_name);
    assert!(host_side.exists());
    let listener = TcpListener::bind(SocketAddr::from((spec.host.addr, 0))).unwrap();
    let addr = listener.local_addr().unwrap();
    env.connect(addr, Duration::from_secs(2)).unwrap();
    // No default route: anything past the link is unreachable.
    let error = env
        .connect("192.0.2.1:80".parse().unwrap(), Duration::from_secs(2))
        .unwrap_err();
    assert_eq!(
        error.raw_os_error(),
        Some(nix::libc::ENETUNREACH),
        "{error}"
    );
    let report = env.teardown();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(!host_side.exists(), "{} is left", veth.host_name);
}

#[test]
fn cleanup_root_removes_environments_of_dead_owners_only() {
    if !privileged("cleanup_root_removes_environments_of_dead_owners_only") {
        return;
    }
    let live = Environment::create(&EnvSpec {
        prefix: "test".into(),
        ..EnvSpec::default()
    })
    .unwrap();
    let mut orphan = Environment::create(&EnvSpec {
        prefix: "test".into(),
        ..EnvSpec::default()
    })
    .unwrap();
    let veth = orphan
        .add_veth(&VethSpec::link_local(std::process::id() % 16000 + 1))
        .unwrap();
    let mut process = orphan
        .spawn(&SpawnSpec {
            command: "exec sleep 60".into(),
            ..SpawnSpec::default()
        })
        .unwrap();
    // Pretend the owner died: another start time, and no teardown.
    let mut state = State::read(orphan.dir()).unwrap();
    state.owner_start += 1;
    state.write(orphan.dir()).unwrap();
    let name = orphan.name().to_owned();
    let (netns, dir) = (orphan.netns_path().to_owned(), orphan.dir().to_owned());
    std::mem::forget(orphan);

    let report = cleanup_stale();
    assert!(report.removed.contains(&name), "{report:?}");
    assert!(
        !report.removed.contains(&live.name().to_owned()),
        "{report:?}"
    );
    assert!(report.killed >= 1, "{report:?}");
    assert!(!netns.exists() && !dir.exists());
    assert!(!Path::new("/sys/class/net").join(&veth.host_name).exists());
    assert!(process.status().is_some());
    assert!(live.netns_path().exists());
    live.teardown();
}
