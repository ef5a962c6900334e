//! The ATAPI PACKET protocol: taking the 12-byte command packet, running it (see [`super::mmc`]), and moving
//! the reply by PIO in DRQ blocks bounded by the host's byte count limit, or by bus-master DMA when the host
//! set features bit 0.
//!
//! PIO sequence as drivers expect it: PACKET → DRQ with interrupt reason CoD (1), no interrupt; the host
//! writes the packet; for each data block: DRQ, byte count in LBA mid/high, interrupt reason IO (2), INTRQ;
//! at the end: DRQ clear, interrupt reason CoD|IO (3), INTRQ, with ERR and the sense key in the error
//! register if the command failed.

use super::channel::ChannelCore;
use super::drive::{DmaTransfer, Proto, Source, Transfer};
use super::mmc::{self, Cd, Reply};

/// Bytes in a command packet (IDENTIFY PACKET DEVICE word 0 bits 1:0 = 0).
pub(crate) const PACKET_SIZE: usize = 12;

/// The byte count limit a transfer uses: the host's value made even (a DRQ block that is not the last must
/// have an even length) and never 0 (which hosts must not send; treated as the largest limit).
pub(crate) fn effective_limit(limit: u16) -> u16 {
    match limit {
        0 => 0xfffe,
        n => (n & !1).max(2),
    }
}

impl ChannelCore {
    /// The packet is complete: run it and start its data phase or complete it.
    pub(crate) fn exec_packet(&mut self, unit: usize) {
        let Transfer::Packet { cdb, dma } = std::mem::take(&mut self.st.drives[unit].xfer) else {
            return;
        };
        let mut packet = [0u8; PACKET_SIZE];
        let n = cdb.len().min(PACKET_SIZE);
        packet[..n].copy_from_slice(&cdb[..n]);
        let limit = effective_limit(self.st.drives[unit].tf.byte_count());
        let backend = self.backend(unit);
        let Some(media) = self.media[unit].as_ref() else {
            return;
        };
        let reply = mmc::execute(
            &mut Cd {
                atapi: &mut self.st.drives[unit].atapi,
                backend: backend.as_ref(),
                identity: &media.identity,
            },
            &packet,
        );
        match reply {
            Reply::Done => self.atapi_ok(unit),
            Reply::Check(sense) => self.atapi_check(unit, sense),
            Reply::Data(data) => self.atapi_data(unit, Source::Bytes { data, pos: 0 }, dma, limit),
            Reply::Read { offset, len } => self.atapi_data(
                unit,
                Source::Medium {
                    offset,
                    remaining: len,
                },
                dma,
                limit,
            ),
        }
    }

    fn atapi_data(&mut self, unit: usize, source: Source, dma: bool, limit: u16) {
        if source.remaining() == 0 {
            self.atapi_ok(unit);
        } else if dma {
            self.start_dma(
                unit,
                DmaTransfer::In {
                    source,
                    atapi: true,
                },
            );
        } else {
            self.start_pio_in(unit, source, Proto::Atapi { limit });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::effective_limit;

    #[test]
    fn byte_count_limits_are_even_and_never_zero() {
        assert_eq!(effective_limit(2048), 2048);
        assert_eq!(effective_limit(0xffff), 0xfffe);
        assert_eq!(effective_limit(0), 0xfffe);
        assert_eq!(effective_limit(1), 2);
        assert_eq!(effective_limit(19), 18);
    }
}
