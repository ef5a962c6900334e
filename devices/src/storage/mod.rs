//! Storage controllers and drives.
//!
//! [`ide`] is the PIIX3's IDE interface: two legacy channels with an ATA disk or an ATAPI CD-ROM at each of
//! their two positions, and the bus-master DMA engine. The drives' data lives in [`crate::block`] back-ends.

pub mod ide;
pub mod piix_ide;
