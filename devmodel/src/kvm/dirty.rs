//! RAM-backed PCI BARs on KVM: each one becomes a memory slot of its own, with dirty-page logging.
//!
//! [`KvmBarMapper`] is the machine's [`GuestMemoryMapper`]: when the PCI root reports that a BAR backed by
//! host memory (the VGA's linear framebuffer) starts to decode at some guest address, it registers that
//! memory as a KVM memory slot there, with `KVM_MEM_LOG_DIRTY_PAGES` when the device asked for it. The guest
//! then reads and writes the BAR at RAM speed, without exits. When the BAR moves or stops decoding, the
//! slot is deleted and its number kept for the next one.
//!
//! It is also the device's [`DirtySource`]: `KVM_GET_DIRTY_LOG` returns, and clears, the bitmap of pages
//! the guest wrote in a slot since the last call (KVM write-protects them again, so the next write is
//! logged anew). The display refresh calls it before it renders, so it costs one ioctl per refresh, never
//! a compare of the screen.
//!
//! Deleting a slot discards its log, and a vCPU may write between the last `KVM_GET_DIRTY_LOG` and the
//! deletion. So when a logged slot goes, the whole of its memory is reported dirty once: one full redraw
//! after the (rare) move or disable of a framebuffer BAR, instead of a change that never shows.
//!
//! Where KVM refuses a slot (the guest placed the BAR over RAM or another slot; a host without dirty
//! logging), `map` fails and the PCI root keeps serving the BAR as trapped MMIO, with a warning. Where
//! `KVM_GET_DIRTY_LOG` fails, the whole memory is reported dirty: slower, never wrong.

use std::sync::{Arc, Mutex, MutexGuard};

use devices::pci::{BarMemory, DirtySource, GuestMemoryMapper, HostMemory, MapError};
use kvm_bindings::{kvm_userspace_memory_region, KVM_MEM_LOG_DIRTY_PAGES};

use super::KvmVm;

/// The granule of KVM's dirty log: one bit per host page (4 KiB on x86-64, the only host this runs on).
pub const DIRTY_PAGE_SIZE: u64 = 4096;

/// One BAR mapped as a memory slot.
struct Mapped {
    slot: u32,
    guest_addr: u64,
    /// Keeps the host mapping alive while the slot refers to it.
    memory: BarMemory,
}

#[derive(Default)]
struct State {
    /// Slot numbers this mapper had and gave back, for reuse.
    free: Vec<u32>,
    mapped: Vec<Mapped>,
    /// Memories whose logged slot went away since their last `take_dirty`: reported wholly dirty.
    lost_log: Vec<Arc<HostMemory>>,
}

/// Maps RAM-backed BARs into a KVM VM and reads their dirty logs. See the module documentation.
pub struct KvmBarMapper {
    vm: Arc<KvmVm>,
    state: Mutex<State>,
}

impl KvmBarMapper {
    /// A mapper for `vm`. Slot numbers come from the VM's own counter (so they never collide with guest RAM
    /// or ROM slots) and are reused once freed.
    pub fn new(vm: Arc<KvmVm>) -> Arc<KvmBarMapper> {
        Arc::new(KvmBarMapper {
            vm,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The mappings now, as (guest address, length, slot number).
    pub fn mappings(&self) -> Vec<(u64, u64, u32)> {
        self.lock()
            .mapped
            .iter()
            .map(|m| (m.guest_addr, m.memory.len(), m.slot))
            .collect()
    }

    /// The offsets (within `memory`) of the pages the guest wrote since the last call, in order; fetching
    /// clears KVM's log. Same data as [`DirtySource::take_dirty`], page by page.
    pub fn take_dirty_pages(&self, memory: &Arc<HostMemory>) -> Vec<u64> {
        let mut pages = Vec::new();
        self.take_dirty(memory, &mut |offset, len| {
            let mut page = offset;
            while page < offset + len {
                pages.push(page);
                page += DIRTY_PAGE_SIZE;
            }
        });
        pages
    }

    fn delete_slot(&self, m: &Mapped) {
        let region = kvm_userspace_memory_region {
            slot: m.slot,
            flags: 0,
            guest_phys_addr: m.guest_addr,
            memory_size: 0,
            userspace_addr: m.memory.host_addr() as u64,
        };
        // SAFETY: a memory size of 0 deletes the slot; KVM stops using the host range, which stays mapped
        // (the caller still holds `m.memory`) until after this returns.
        if let Err(e) = unsafe { self.vm.vm.set_user_memory_region(region) } {
            log::error!(
                "KVM: deleting memory slot {} at {:#x}: {e}",
                m.slot,
                m.guest_addr
            );
        }
    }
}

impl GuestMemoryMapper for KvmBarMapper {
    fn map(&self, guest_addr: u64, memory: &BarMemory) -> Result<(), MapError> {
        if guest_addr & (DIRTY_PAGE_SIZE - 1) != 0
            || memory.is_empty()
            || memory.len() & (DIRTY_PAGE_SIZE - 1) != 0
        {
            return Err(MapError(format!(
                "{:#x} bytes at {guest_addr:#x} are not whole pages",
                memory.len()
            )));
        }
        let mut st = self.lock();
        let slot = st.free.pop().unwrap_or_else(|| self.vm.slot());
        let region = kvm_userspace_memory_region {
            slot,
            flags: if memory.log_dirty() {
                KVM_MEM_LOG_DIRTY_PAGES
            } else {
                0
            },
            guest_phys_addr: guest_addr,
            memory_size: memory.len(),
            userspace_addr: memory.host_addr() as u64,
        };
        // SAFETY: the host range is `memory`'s own anonymous mapping, exactly `memory.len()` bytes. The
        // `BarMemory` (an `Arc` of that mapping) is kept in `mapped` until the slot is deleted, by `unmap` or
        // when the mapper is dropped, so KVM never refers to memory that was unmapped.
        match unsafe { self.vm.vm.set_user_memory_region(region) } {
            Ok(()) => {
                st.mapped.push(Mapped {
                    slot,
                    guest_addr,
                    memory: memory.clone(),
                });
                Ok(())
            }
            Err(e) => {
                st.free.push(slot);
                Err(MapError(format!(
                    "KVM refused a memory slot at {guest_addr:#x} ({:#x} bytes{}): {e}",
                    memory.len(),
                    if memory.log_dirty() {
                        ", dirty logging"
                    } else {
                        ""
                    }
                )))
            }
        }
    }

    fn unmap(&self, guest_addr: u64, memory: &BarMemory) {
        let mut st = self.lock();
        let Some(i) = st
            .mapped
            .iter()
            .position(|m| m.guest_addr == guest_addr && m.memory.is(memory.memory()))
        else {
            return;
        };
        let m = st.mapped.swap_remove(i);
        self.delete_slot(&m);
        st.free.push(m.slot);
        if m.memory.log_dirty() && !st.lost_log.iter().any(|l| m.memory.is(l)) {
            st.lost_log.push(Arc::clone(m.memory.memory()));
        }
    }
}

impl DirtySource for KvmBarMapper {
    fn take_dirty(&self, memory: &Arc<HostMemory>, dirty: &mut dyn FnMut(u64, u64)) {
        let len = memory.size() as u64;
        let pages = len.div_ceil(DIRTY_PAGE_SIZE);
        let mut bitmap = vec![0u64; pages.div_ceil(64) as usize];
        let all = {
            let mut st = self.lock();
            let before = st.lost_log.len();
            st.lost_log.retain(|l| !Arc::ptr_eq(l, memory));
            let mut all = st.lost_log.len() != before;
            for m in st.mapped.iter().filter(|m| m.memory.is(memory)) {
                if !m.memory.log_dirty() {
                    continue;
                }
                // Fetched (and so cleared) even when everything is reported anyway, so that the next call
                // starts from now.
                match self.vm.vm.get_dirty_log(m.slot, len as usize) {
                    Ok(log) => {
                        for (w, l) in bitmap.iter_mut().zip(log) {
                            *w |= l;
                        }
                    }
                    Err(e) => {
                        devices::rate_limited!(
                            log::Level::Error,
                            "KVM_GET_DIRTY_LOG of slot {} failed ({e}); redrawing everything",
                            m.slot
                        );
                        all = true;
                    }
                }
            }
            all
        };
        if all {
            bitmap.fill(u64::MAX);
        }
        // Runs of consecutive dirty pages become one range each.
        let mut run: Option<u64> = None;
        for page in 0..=pages {
            let set = bitmap
                .get((page / 64) as usize)
                .is_some_and(|w| page < pages && w & (1 << (page % 64)) != 0);
            match (set, run) {
                (true, None) => run = Some(page),
                (false, Some(start)) => {
                    let offset = start * DIRTY_PAGE_SIZE;
                    dirty(offset, (page * DIRTY_PAGE_SIZE).min(len) - offset);
                    run = None;
                }
                _ => {}
            }
        }
    }
}

impl Drop for KvmBarMapper {
    fn drop(&mut self) {
        // The slots refer to memory the mapper keeps alive: delete them before it lets go.
        let mapped = std::mem::take(&mut self.lock().mapped);
        for m in &mapped {
            self.delete_slot(m);
        }
    }
}
