//! Attaching the `tl_chaos` eBPF program (from `tapline-bpf`) to a veth inside a network
//! namespace, so that the kernels really lose and duplicate packets.
//!
//! Attach to [`ChaosDirection::Ingress`] for losses TCP must recover from by retransmitting:
//! a drop at egress is reported to the sending socket (`NET_XMIT_DROP`), so the kernel
//! re-sends the segment as if it had never left and no retransmission reaches the wire.
//! Egress still suits duplication and tests of local behaviour.
//!
//! The program is loaded and attached on a dedicated thread that first enters the namespace
//! with `setns` (interface names and the TCX link are resolved in the caller's network
//! namespace); the rest of the process stays where it was. The attachment is a TCX link
//! owned by [`ChaosGuard`]: dropping the guard detaches it.

use std::fs::File;

use aya::maps::PerCpuArray;
use aya::programs::{SchedClassifier, TcAttachType};
use aya::{Ebpf, EbpfLoader};
use nix::sched::CloneFlags;
use tapline_bpf::chaos;

use crate::{E2eError, Netns, Result};

/// Which way through the interface the program judges packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChaosDirection {
    /// Packets arriving: drops are real losses; a capture on the interface still sees them.
    Ingress,
    /// Packets leaving: drops are reported to the local sender.
    Egress,
}

/// How much chaos to make, as shares of the packets passing the interface.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChaosConfig {
    /// Share of packets dropped, 0.0 to 1.0.
    pub drop: f64,
    /// Share of packets sent twice, 0.0 to 1.0.
    pub duplicate: f64,
}

impl ChaosConfig {
    /// The program's thresholds (out of 2^32) for these shares.
    ///
    /// # Errors
    ///
    /// When a share is outside 0..=1 or both together exceed 1.
    pub fn thresholds(&self) -> std::result::Result<(u32, u32), String> {
        let valid = |share: f64| (0.0..=1.0).contains(&share);
        if !valid(self.drop) || !valid(self.duplicate) || self.drop + self.duplicate > 1.0 {
            return Err(format!(
                "shares must be within 0..=1 and sum to at most 1: {self:?}"
            ));
        }
        let scale = |share: f64| (share * f64::from(u32::MAX)).round() as u32;
        let drop = scale(self.drop);
        let duplicate = scale(self.duplicate).min(u32::MAX - drop);
        Ok((drop, duplicate))
    }
}

/// What the program counted, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChaosCounters {
    /// Packets judged.
    pub seen: u64,
    /// Packets dropped.
    pub dropped: u64,
    /// Packets duplicated.
    pub duplicated: u64,
    /// Duplications the kernel refused.
    pub dup_failed: u64,
}

/// The `tl_chaos` program attached to one interface; detached on drop.
#[derive(Debug)]
pub struct ChaosGuard {
    ebpf: Ebpf,
    interface: String,
}

impl ChaosGuard {
    /// Loads `tl_chaos` with `config` and attaches it to `interface` inside `netns`, in
    /// `direction`.
    ///
    /// # Errors
    ///
    /// [`E2eError::Ebpf`] when the namespace cannot be entered or the program cannot be
    /// loaded or attached.
    pub fn attach(
        netns: &Netns,
        interface: &str,
        direction: ChaosDirection,
        config: ChaosConfig,
    ) -> Result<Self> {
        let ebpf_error = |reason: String| E2eError::Ebpf {
            program: chaos::PROGRAM.to_owned(),
            interface: format!("{interface} in {}", netns.name()),
            reason,
        };
        let (drop, duplicate) = config.thresholds().map_err(ebpf_error)?;
        let path = netns.path();
        let name = interface.to_owned();
        let ebpf = std::thread::spawn(move || -> std::result::Result<Ebpf, String> {
            let file = File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
            nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {path}: {e}"))?;
            load_and_attach(drop, duplicate, Some((&name, direction)))
        })
        .join()
        .map_err(|_| ebpf_error("the attaching thread panicked".to_owned()))?
        .map_err(ebpf_error)?;
        Ok(Self {
            ebpf,
            interface: interface.to_owned(),
        })
    }

    /// The interface the program is attached to.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Reads the program's counters.
    ///
    /// # Errors
    ///
    /// [`E2eError::Ebpf`] when the counter map cannot be read.
    pub fn counters(&self) -> Result<ChaosCounters> {
        let ebpf_error = |reason: String| E2eError::Ebpf {
            program: chaos::PROGRAM.to_owned(),
            interface: self.interface.clone(),
            reason,
        };
        let map = self
            .ebpf
            .map(chaos::COUNTERS_MAP)
            .ok_or_else(|| ebpf_error(format!("map {} missing", chaos::COUNTERS_MAP)))?;
        let array: PerCpuArray<_, u64> =
            PerCpuArray::try_from(map).map_err(|e| ebpf_error(e.to_string()))?;
        let sum = |slot: u32| -> std::result::Result<u64, String> {
            let values = array.get(&slot, 0).map_err(|e| e.to_string())?;
            Ok(values.iter().sum())
        };
        Ok(ChaosCounters {
            seen: sum(chaos::SEEN).map_err(ebpf_error)?,
            dropped: sum(chaos::DROPPED).map_err(ebpf_error)?,
            duplicated: sum(chaos::DUPLICATED).map_err(ebpf_error)?,
            dup_failed: sum(chaos::DUP_FAILED).map_err(ebpf_error)?,
        })
    }
}

/// Loads the program and, when `target` is given, attaches it to that interface in that
/// direction, in the calling thread's network namespace.
fn load_and_attach(
    drop: u32,
    duplicate: u32,
    target: Option<(&str, ChaosDirection)>,
) -> std::result::Result<Ebpf, String> {
    let ingress = u32::from(matches!(target, Some((_, ChaosDirection::Ingress))));
    let mut ebpf = EbpfLoader::new()
        .override_global(chaos::DROP_THRESHOLD, &drop, true)
        .override_global(chaos::DUP_THRESHOLD, &duplicate, true)
        .override_global(chaos::INGRESS, &ingress, true)
        .load(tapline_bpf::CHAOS)
        .map_err(|e| format!("load object: {e}"))?;
    let program: &mut SchedClassifier = ebpf
        .program_mut(chaos::PROGRAM)
        .ok_or_else(|| format!("program {} missing", chaos::PROGRAM))?
        .try_into()
        .map_err(|e| format!("not a classifier: {e}"))?;
    program
        .load()
        .map_err(|e| format!("verifier: {}", error_chain(&e)))?;
    if let Some((interface, direction)) = target {
        let attach_type = match direction {
            ChaosDirection::Ingress => TcAttachType::Ingress,
            ChaosDirection::Egress => TcAttachType::Egress,
        };
        program
            .attach(interface, attach_type)
            .map_err(|e| format!("attach to {interface} {direction:?}: {}", error_chain(&e)))?;
    }
    Ok(ebpf)
}

/// Loads the program without attaching it, to find out whether eBPF works here.
///
/// # Errors
///
/// The reason it does not.
pub fn probe() -> std::result::Result<(), String> {
    load_and_attach(0, 0, None).map(|_| ())
}

/// An error and its sources on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_become_thresholds_out_of_two_to_the_32() {
        let (drop, dup) = ChaosConfig {
            drop: 0.5,
            duplicate: 0.25,
        }
        .thresholds()
        .unwrap();
        assert_eq!(drop, 2_147_483_648);
        assert_eq!(dup, 1_073_741_824);
        let (drop, dup) = ChaosConfig {
            drop: 1.0,
            duplicate: 0.0,
        }
        .thresholds()
        .unwrap();
        assert_eq!((drop, dup), (u32::MAX, 0));
    }

    #[test]
    fn impossible_shares_are_refused() {
        for (drop, duplicate) in [(-0.1, 0.0), (0.0, 1.5), (0.6, 0.6)] {
            assert!(ChaosConfig { drop, duplicate }.thresholds().is_err());
        }
    }
}
