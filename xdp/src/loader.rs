//! Loading the capture object and attaching it to one interface: the XDP program on ingress
//! (native mode, else generic, else the TC ingress classifier), the TC classifier on egress
//! (a TCX link), after clearing what a killed earlier run may have left.
//!
//! Everything is attached through bpf links owned by [`LiveCapture`]: dropping it (or the
//! process dying) detaches the programs. The only attachment that can outlive a process is an
//! XDP program attached through netlink (by an older kernel's fallback, or by other tools);
//! [`LiveCapture::attach`] detaches such a program when it is a tapline capture program that
//! no live process holds.

use std::ffi::CString;
use std::fmt;

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::links::LinkType;
use aya::programs::tc::TcAttachType;
use aya::programs::{SchedClassifier, Xdp, XdpMode, loaded_links, loaded_programs};
use aya::{Ebpf, EbpfLoader, Pod};
use tapline_bpf::capture::{
    CaptureFilter, DIR_EGRESS, DIR_INGRESS, FILTER_HOSTS, FILTER_PORTS, MAX_SNAPLEN, counter, names,
};

use crate::error::{AttachError, chain};
use crate::filter::Filter;
use crate::netlink;

/// Default size of the ring buffer: 64 MiB.
pub const DEFAULT_RING_BYTES: u32 = 64 << 20;

/// Settings of one live capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureConfig {
    /// Bytes copied from each packet (1..=65536).
    pub snaplen: u32,
    /// Size of the ring buffer: a power of two, at least one page.
    pub ring_bytes: u32,
    /// What to capture.
    pub filter: Filter,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            snaplen: MAX_SNAPLEN,
            ring_bytes: DEFAULT_RING_BYTES,
            filter: Filter::default(),
        }
    }
}

/// Where the ingress program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngressHook {
    /// XDP in the driver: sees each packet as it arrives, before GRO.
    XdpNative,
    /// Generic (SKB-mode) XDP: the driver has no XDP; sees packets after GRO.
    XdpGeneric,
    /// The TC ingress classifier: XDP could not be attached.
    TcIngress,
}

impl fmt::Display for IngressHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IngressHook::XdpNative => "XDP native (driver) mode",
            IngressHook::XdpGeneric => "XDP generic (SKB) mode",
            IngressHook::TcIngress => "TC ingress (TCX)",
        })
    }
}

/// Counters of one direction, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionCounters {
    /// Packets the program ran on.
    pub seen: u64,
    /// Packets the filters selected.
    pub matched: u64,
    /// Records pushed into the ring.
    pub captured: u64,
    /// Records lost because the ring was full.
    pub ring_full: u64,
    /// Records lost because the bytes could not be read.
    pub copy_failed: u64,
    /// Records cut at the snap length.
    pub truncated: u64,
}

/// Counters of both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets arriving.
    pub ingress: DirectionCounters,
    /// Packets leaving.
    pub egress: DirectionCounters,
}

impl Counters {
    /// Records lost because the ring was full, both directions.
    pub fn ring_full(&self) -> u64 {
        self.ingress.ring_full + self.egress.ring_full
    }

    /// Records lost because the bytes could not be read, both directions.
    pub fn copy_failed(&self) -> u64 {
        self.ingress.copy_failed + self.egress.copy_failed
    }

    /// Records pushed into the ring, both directions.
    pub fn captured(&self) -> u64 {
        self.ingress.captured + self.egress.captured
    }
}

/// The filter value as the map holds it.
#[derive(Debug, Clone, Copy)]
#[repr(transparent)]
struct FilterValue(CaptureFilter);

// SAFETY: `CaptureFilter` is `#[repr(C)]`, made of two `u32`s, with no padding.
unsafe impl Pod for FilterValue {}

/// A loaded capture object attached to one interface. Dropping it detaches everything.
pub struct LiveCapture {
    ebpf: Ebpf,
    ring: RingBuf<MapData>,
    interface: String,
    ifindex: u32,
    ingress: IngressHook,
    notes: Vec<String>,
}

impl fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveCapture")
            .field("interface", &self.interface)
            .field("ifindex", &self.ifindex)
            .field("ingress", &self.ingress)
            .finish_non_exhaustive()
    }
}

impl LiveCapture {
    /// Loads the capture object with `config` and attaches it to `interface` in the calling
    /// thread's network namespace.
    ///
    /// # Errors
    /// [`AttachError::NoInterface`] when there is no such interface, [`AttachError::Privilege`]
    /// or [`AttachError::Kernel`] when the system refuses, [`AttachError::InUse`] when another
    /// running tapline captures it, [`AttachError::Ebpf`] otherwise.
    pub fn attach(interface: &str, config: &CaptureConfig) -> Result<Self, AttachError> {
        let ifindex = ifindex_of(interface)?;
        if config.snaplen == 0 || config.snaplen > MAX_SNAPLEN {
            return Err(AttachError::Ebpf {
                action: "checking the snap length".into(),
                message: format!("{} is not within 1..={MAX_SNAPLEN}", config.snaplen),
            });
        }
        let mut notes = Vec::new();
        if let Some(note) = clear_stale(interface, ifindex)? {
            notes.push(note);
        }
        let cpus = aya::util::nr_cpus().map_err(|(what, e)| AttachError::Ebpf {
            action: format!("reading {what}"),
            message: e.to_string(),
        })?;
        let scratch = u32::try_from(cpus.saturating_mul(2)).unwrap_or(u32::MAX);
        let mut ebpf = EbpfLoader::new()
            .override_global(names::SNAPLEN, &config.snaplen, true)
            .map_max_entries(names::RING, config.ring_bytes)
            .map_max_entries(names::SCRATCH, scratch)
            .load(crate::CAPTURE)
            .map_err(|e| load_error("loading the capture object", &e))?;
        write_filter(&mut ebpf, &config.filter)?;

        let egress: &mut SchedClassifier = program(&mut ebpf, names::TC_EGRESS_PROGRAM)?;
        egress
            .load()
            .map_err(|e| load_error("loading the TC egress program", &e))?;
        egress
            .attach(interface, TcAttachType::Egress)
            .map_err(|e| attach_error(interface, "attaching the TC egress program", &e))?;

        let ingress = attach_ingress(&mut ebpf, interface, ifindex, &mut notes)?;
        let map = ebpf
            .take_map(names::RING)
            .ok_or_else(|| AttachError::Ebpf {
                action: "opening the ring buffer".into(),
                message: format!("map {} missing from the object", names::RING),
            })?;
        let ring = RingBuf::try_from(map)
            .map_err(|e| AttachError::classify("opening the ring buffer", &e))?;
        Ok(LiveCapture {
            ebpf,
            ring,
            interface: interface.to_owned(),
            ifindex,
            ingress,
            notes,
        })
    }

    /// The interface's name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The interface's index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Where the ingress program runs.
    pub fn ingress_hook(&self) -> IngressHook {
        self.ingress
    }

    /// What happened while attaching that a person should know (stale programs detached,
    /// fallbacks taken).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The ring buffer of records, to drain memory-mapped.
    pub fn ring(&mut self) -> &mut RingBuf<MapData> {
        &mut self.ring
    }

    /// Replaces the filters; the programs use the new ones from their next packet on.
    ///
    /// # Errors
    /// When a map cannot be written.
    pub fn set_filter(&mut self, filter: &Filter) -> Result<(), AttachError> {
        write_filter(&mut self.ebpf, filter)
    }

    /// Detaches and unloads the programs, keeping the maps: records already in the ring can
    /// still be drained and the counters read. Dropping the capture does this too.
    ///
    /// # Errors
    /// When the kernel refuses to detach a program.
    pub fn detach(&mut self) -> Result<(), AttachError> {
        let mut first_error = None;
        for name in [
            names::XDP_PROGRAM,
            names::TC_INGRESS_PROGRAM,
            names::TC_EGRESS_PROGRAM,
        ] {
            let result = match self.ebpf.program_mut(name) {
                Some(aya::programs::Program::Xdp(p)) if p.fd().is_ok() => p.unload(),
                Some(aya::programs::Program::SchedClassifier(p)) if p.fd().is_ok() => p.unload(),
                _ => Ok(()),
            };
            if let Err(e) = result {
                first_error.get_or_insert(AttachError::classify(format!("detaching {name}"), &e));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Reads the programs' counters.
    ///
    /// # Errors
    /// When the counter map cannot be read.
    pub fn counters(&self) -> Result<Counters, AttachError> {
        let map = self
            .ebpf
            .map(names::COUNTERS)
            .ok_or_else(|| missing(names::COUNTERS))?;
        let array: PerCpuArray<_, u64> = PerCpuArray::try_from(map)
            .map_err(|e| AttachError::classify("reading the counters", &e))?;
        let direction = |dir: u8| -> Result<DirectionCounters, AttachError> {
            let sum = |slot: u32| -> Result<u64, AttachError> {
                let values = array
                    .get(&counter::index(dir, slot), 0)
                    .map_err(|e| AttachError::classify("reading the counters", &e))?;
                Ok(values.iter().sum())
            };
            Ok(DirectionCounters {
                seen: sum(counter::SEEN)?,
                matched: sum(counter::MATCHED)?,
                captured: sum(counter::CAPTURED)?,
                ring_full: sum(counter::RING_FULL)?,
                copy_failed: sum(counter::COPY_FAILED)?,
                truncated: sum(counter::TRUNCATED)?,
            })
        };
        Ok(Counters {
            ingress: direction(DIR_INGRESS)?,
            egress: direction(DIR_EGRESS)?,
        })
    }
}

/// The index of `interface`, or [`AttachError::NoInterface`].
///
/// # Errors
/// When the interface does not exist.
pub fn ifindex_of(interface: &str) -> Result<u32, AttachError> {
    let name =
        CString::new(interface).map_err(|_| AttachError::NoInterface(interface.to_owned()))?;
    // SAFETY: `name` is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(AttachError::NoInterface(interface.to_owned()));
    }
    Ok(index)
}

/// Attaches the ingress side: XDP native, else XDP generic, else TC ingress.
fn attach_ingress(
    ebpf: &mut Ebpf,
    interface: &str,
    ifindex: u32,
    notes: &mut Vec<String>,
) -> Result<IngressHook, AttachError> {
    let xdp: &mut Xdp = program(ebpf, names::XDP_PROGRAM)?;
    xdp.load()
        .map_err(|e| load_error("loading the XDP program", &e))?;
    let native = match xdp.attach_to_if_index(ifindex, XdpMode::Driver) {
        Ok(_) => return Ok(IngressHook::XdpNative),
        Err(e) => chain(&e),
    };
    let generic = match xdp.attach_to_if_index(ifindex, XdpMode::Skb) {
        Ok(_) => {
            notes.push(format!(
                "{interface}: the driver cannot run XDP natively ({native}); using generic (SKB) mode"
            ));
            return Ok(IngressHook::XdpGeneric);
        }
        Err(e) => e,
    };
    let generic_text = chain(&generic);
    let tc: &mut SchedClassifier = program(ebpf, names::TC_INGRESS_PROGRAM)?;
    tc.load()
        .map_err(|e| load_error("loading the TC ingress program", &e))?;
    match tc.attach(interface, TcAttachType::Ingress) {
        Ok(_) => {
            notes.push(format!(
                "{interface}: XDP cannot be attached (native: {native}; generic: {generic_text}); capturing ingress with TC instead"
            ));
            Ok(IngressHook::TcIngress)
        }
        Err(e) => Err(attach_error(
            interface,
            &format!(
                "attaching an ingress program (XDP native: {native}; XDP generic: {generic_text}; TC ingress)"
            ),
            &e,
        )),
    }
}

/// Detaches a tapline XDP capture program that no live process holds from `ifindex`.
/// Returns what was done, for the log.
fn clear_stale(interface: &str, ifindex: u32) -> Result<Option<String>, AttachError> {
    let current = netlink::xdp_program(ifindex)
        .map_err(|e| AttachError::classify("querying the interface's XDP program", &e))?;
    let Some(current) = current else {
        return Ok(None);
    };
    let name = loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == current.id)
        .and_then(|p| p.name_as_str().map(str::to_owned))
        .unwrap_or_default();
    if !name.starts_with(names::XDP_PROGRAM) {
        // Someone else's program: leave it alone; ingress falls back to TC if XDP is taken.
        return Ok(None);
    }
    let held = loaded_links().filter_map(Result::ok).any(|link| {
        link.program_id() == current.id && matches!(link.link_type(), Ok(LinkType::Xdp))
    });
    if held {
        return Err(AttachError::InUse {
            interface: interface.to_owned(),
            id: current.id,
        });
    }
    netlink::detach_xdp(ifindex, current.attached)
        .map_err(|e| AttachError::classify("detaching a stale tapline XDP program", &e))?;
    Ok(Some(format!(
        "{interface}: detached a stale {name} (program id {}) left attached by an earlier run",
        current.id
    )))
}

/// Writes `filter` into the maps: entries first, then the flags that activate them.
fn write_filter(ebpf: &mut Ebpf, filter: &Filter) -> Result<(), AttachError> {
    filter.validate().map_err(|e| AttachError::Ebpf {
        action: "setting the filters".into(),
        message: e.to_string(),
    })?;
    let map_error = |e: aya::maps::MapError| AttachError::classify("setting the filters", &e);
    {
        let map = ebpf
            .map_mut(names::PORTS)
            .ok_or_else(|| missing(names::PORTS))?;
        let mut ports: HashMap<_, u16, u8> = HashMap::try_from(map).map_err(map_error)?;
        let old: Vec<u16> = ports.keys().filter_map(Result::ok).collect();
        for port in old.iter().filter(|p| !filter.ports.contains(p)) {
            ports.remove(port).map_err(map_error)?;
        }
        for port in &filter.ports {
            ports.insert(port, 1, 0).map_err(map_error)?;
        }
    }
    let v4: Vec<Key<[u8; 4]>> = filter
        .hosts
        .iter()
        .filter_map(|c| match c.addr {
            std::net::IpAddr::V4(a) => Some(Key::new(u32::from(c.prefix), a.octets())),
            std::net::IpAddr::V6(_) => None,
        })
        .collect();
    let v6: Vec<Key<[u8; 16]>> = filter
        .hosts
        .iter()
        .filter_map(|c| match c.addr {
            std::net::IpAddr::V6(a) => Some(Key::new(u32::from(c.prefix), a.octets())),
            std::net::IpAddr::V4(_) => None,
        })
        .collect();
    replace_trie(ebpf, names::V4, &v4)?;
    replace_trie(ebpf, names::V6, &v6)?;
    let mut flags = 0;
    if !filter.ports.is_empty() {
        flags |= FILTER_PORTS;
    }
    if !filter.hosts.is_empty() {
        flags |= FILTER_HOSTS;
    }
    let map = ebpf
        .map_mut(names::FILTER)
        .ok_or_else(|| missing(names::FILTER))?;
    let mut array: Array<_, FilterValue> = Array::try_from(map).map_err(map_error)?;
    array
        .set(0, FilterValue(CaptureFilter { flags, pad: 0 }), 0)
        .map_err(map_error)
}

/// Makes the LPM trie `name` hold exactly `keys`.
fn replace_trie<K: Pod + PartialEq>(
    ebpf: &mut Ebpf,
    name: &str,
    keys: &[Key<K>],
) -> Result<(), AttachError> {
    let map_error = |e: aya::maps::MapError| AttachError::classify("setting the filters", &e);
    let map = ebpf.map_mut(name).ok_or_else(|| missing(name))?;
    let mut trie: LpmTrie<_, K, u8> = LpmTrie::try_from(map).map_err(map_error)?;
    let old: Vec<Key<K>> = trie.keys().filter_map(Result::ok).collect();
    for key in &old {
        let wanted = keys
            .iter()
            .any(|k| k.prefix_len() == key.prefix_len() && k.data() == key.data());
        if !wanted {
            trie.remove(key).map_err(map_error)?;
        }
    }
    for key in keys {
        trie.insert(key, 1, 0).map_err(map_error)?;
    }
    Ok(())
}

/// The program `name` of the object as type `P`.
fn program<'a, P>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut P, AttachError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let program = ebpf.program_mut(name).ok_or_else(|| missing(name))?;
    program
        .try_into()
        .map_err(|e| AttachError::classify(format!("opening {name}"), &e))
}

/// A map or program missing from the object (a build problem).
fn missing(name: &str) -> AttachError {
    AttachError::Ebpf {
        action: "opening the capture object".into(),
        message: format!("{name} missing from the object"),
    }
}

/// An error while loading: privilege, a missing feature, or the verifier's reasons.
fn load_error(action: &str, error: &(dyn std::error::Error + 'static)) -> AttachError {
    let classified = AttachError::classify(action, error);
    if let AttachError::Ebpf { .. } = classified
        && let Some(os) = crate::error::os_error(error)
        && os.raw_os_error() == Some(libc::EINVAL)
        && chain(error).contains("ring")
    {
        return AttachError::Kernel {
            action: action.to_owned(),
            feature: "BPF ring buffers (Linux 5.8)",
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        };
    }
    classified
}

/// An error while attaching: privilege, the interface vanished, or the kernel's reasons.
fn attach_error(
    interface: &str,
    action: &str,
    error: &(dyn std::error::Error + 'static),
) -> AttachError {
    if let Some(os) = crate::error::os_error(error)
        && os.raw_os_error() == Some(libc::ENODEV)
    {
        return AttachError::NoInterface(interface.to_owned());
    }
    AttachError::classify(format!("{action} to {interface}"), error)
}
