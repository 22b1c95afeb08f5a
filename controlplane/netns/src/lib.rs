//! tapline's ephemeral test environments: a fresh network namespace in which a system under
//! test runs against mocks of its recorded dependencies, with no route out, torn down on
//! every path.
//!
//! - [`Environment`] is one environment: [`Environment::create`] makes the namespace through
//!   syscalls and rtnetlink (no `ip`), loopback up, its own `hosts` and `resolv.conf`;
//!   [`Environment::spawn`] starts a command inside (own process group, own mount namespace
//!   with those files bound over `/etc`'s); [`Environment::run_in`] and
//!   [`Environment::thread`] run code on a thread inside (sockets belong to the namespace of
//!   the thread that makes them); [`Environment::add_veth`] joins it to the host when a job
//!   needs a link; [`Environment::teardown`] (or `Drop`) kills every process inside, deletes
//!   the veths, unmounts and deletes the namespace file and the folder.
//! - [`DependencyPlan`] splits a snapshot's traffic into the service's inbound requests and
//!   its dependencies, each given a loopback address and a hosts-file name; [`MockSet`]
//!   serves them with `tapline mock` inside the environment.
//! - [`cleanup_stale`] removes environments whose owner process died (a state file in each
//!   environment's folder names the owner by process id and start time).
//!
//! Files live under `/run/tapline` (see [`paths`]). Everything needs CAP_SYS_ADMIN and
//! CAP_NET_ADMIN ([`check_privileges`]).

pub mod deps;
pub mod env;
pub mod error;
pub mod files;
pub mod mocks;
pub mod ns;
pub mod paths;
pub mod privilege;
pub mod procs;
pub mod rtnl;
pub mod spawn;
pub mod state;
pub mod veth;

pub use deps::{Dependency, DependencyPlan};
pub use env::{EnvSpec, Environment, Readiness, TeardownReport};
pub use error::NetnsError;
pub use mocks::{MockSet, MockSettings};
pub use ns::{InsideThread, NsId};
pub use privilege::{check_privileges, missing_capabilities};
pub use spawn::{Process, SpawnSpec};
pub use state::{CleanupReport, cleanup_stale};
pub use veth::{Ipv4Cidr, Veth, VethSpec};
