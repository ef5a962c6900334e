//! Register offsets, bit definitions and command opcodes of the ATA/ATAPI interface and the PIIX bus master.

/// Command block register offsets (from 0x1F0 / 0x170).
pub mod port {
    /// Data (16/32-bit PIO).
    pub const DATA: u64 = 0;
    /// Error (read) / Features (write).
    pub const ERROR_FEATURES: u64 = 1;
    /// Sector count; ATAPI interrupt reason on read.
    pub const NSECTOR: u64 = 2;
    /// LBA low / sector number.
    pub const LBA_LOW: u64 = 3;
    /// LBA mid / cylinder low; ATAPI byte count low.
    pub const LBA_MID: u64 = 4;
    /// LBA high / cylinder high; ATAPI byte count high.
    pub const LBA_HIGH: u64 = 5;
    /// Device/head.
    pub const DEVICE: u64 = 6;
    /// Status (read) / Command (write).
    pub const STATUS_COMMAND: u64 = 7;
}

/// Status register bits.
pub mod status {
    /// Busy: the device owns the registers.
    pub const BSY: u8 = 0x80;
    /// Device ready to accept commands.
    pub const DRDY: u8 = 0x40;
    /// Device fault.
    pub const DF: u8 = 0x20;
    /// Device seek complete (obsolete, but drivers and QEMU keep it set on ATA disks).
    pub const DSC: u8 = 0x10;
    /// Data request: the data port is ready for a PIO block (or a DMA transfer is pending).
    pub const DRQ: u8 = 0x08;
    /// Error: the error register says what.
    pub const ERR: u8 = 0x01;
}

/// Error register bits (ATA; ATAPI puts the sense key in bits 7:4).
pub mod error {
    /// Uncorrectable data error (a media/back-end read error).
    pub const UNC: u8 = 0x40;
    /// ID not found: the address is outside the medium.
    pub const IDNF: u8 = 0x10;
    /// Command aborted: unknown command, bad parameter, refused operation.
    pub const ABRT: u8 = 0x04;
    /// The value diagnostics and resets leave: "device 0 passed".
    pub const DIAG_PASSED: u8 = 0x01;
}

/// Device control register bits (0x3F6 / 0x376, write).
pub mod devctl {
    /// High-order byte: task-file reads return the previous (LBA48 high) values.
    pub const HOB: u8 = 0x80;
    /// Software reset of both devices while set.
    pub const SRST: u8 = 0x04;
    /// Interrupts disabled: INTRQ is not driven.
    pub const NIEN: u8 = 0x02;
}

/// Device register bits.
pub mod device {
    /// LBA addressing (else CHS).
    pub const LBA: u8 = 0x40;
    /// Device 1 (slave) selected.
    pub const DEV: u8 = 0x10;
}

/// ATAPI interrupt reason bits (sector count register).
pub mod ireason {
    /// Command/data: the transfer is the command packet (or completion when with IO).
    pub const COD: u8 = 0x01;
    /// Direction: to the host.
    pub const IO: u8 = 0x02;
}

/// ATA command opcodes.
pub mod cmd {
    /// DEVICE RESET.
    pub const DEVICE_RESET: u8 = 0x08;
    /// RECALIBRATE.
    pub const RECALIBRATE: u8 = 0x10;
    /// READ SECTORS.
    pub const READ_SECTORS: u8 = 0x20;
    /// READ SECTORS (without retries, obsolete).
    pub const READ_SECTORS_NORETRY: u8 = 0x21;
    /// READ SECTORS EXT (LBA48).
    pub const READ_SECTORS_EXT: u8 = 0x24;
    /// READ DMA EXT (LBA48).
    pub const READ_DMA_EXT: u8 = 0x25;
    /// READ MULTIPLE EXT (LBA48).
    pub const READ_MULTIPLE_EXT: u8 = 0x29;
    /// WRITE SECTORS.
    pub const WRITE_SECTORS: u8 = 0x30;
    /// WRITE SECTORS (without retries, obsolete).
    pub const WRITE_SECTORS_NORETRY: u8 = 0x31;
    /// WRITE SECTORS EXT (LBA48).
    pub const WRITE_SECTORS_EXT: u8 = 0x34;
    /// WRITE DMA EXT (LBA48).
    pub const WRITE_DMA_EXT: u8 = 0x35;
    /// WRITE MULTIPLE EXT (LBA48).
    pub const WRITE_MULTIPLE_EXT: u8 = 0x39;
    /// READ VERIFY.
    pub const READ_VERIFY: u8 = 0x40;
    /// READ VERIFY (without retries, obsolete).
    pub const READ_VERIFY_NORETRY: u8 = 0x41;
    /// READ VERIFY EXT (LBA48).
    pub const READ_VERIFY_EXT: u8 = 0x42;
    /// SEEK.
    pub const SEEK: u8 = 0x70;
    /// EXECUTE DEVICE DIAGNOSTIC.
    pub const EXECUTE_DEVICE_DIAGNOSTIC: u8 = 0x90;
    /// INITIALIZE DEVICE PARAMETERS.
    pub const INITIALIZE_DEVICE_PARAMETERS: u8 = 0x91;
    /// PACKET.
    pub const PACKET: u8 = 0xa0;
    /// IDENTIFY PACKET DEVICE.
    pub const IDENTIFY_PACKET_DEVICE: u8 = 0xa1;
    /// READ MULTIPLE.
    pub const READ_MULTIPLE: u8 = 0xc4;
    /// WRITE MULTIPLE.
    pub const WRITE_MULTIPLE: u8 = 0xc5;
    /// SET MULTIPLE MODE.
    pub const SET_MULTIPLE_MODE: u8 = 0xc6;
    /// READ DMA.
    pub const READ_DMA: u8 = 0xc8;
    /// READ DMA (without retries, obsolete).
    pub const READ_DMA_NORETRY: u8 = 0xc9;
    /// WRITE DMA.
    pub const WRITE_DMA: u8 = 0xca;
    /// WRITE DMA (without retries, obsolete).
    pub const WRITE_DMA_NORETRY: u8 = 0xcb;
    /// STANDBY IMMEDIATE.
    pub const STANDBY_IMMEDIATE: u8 = 0xe0;
    /// IDLE IMMEDIATE.
    pub const IDLE_IMMEDIATE: u8 = 0xe1;
    /// STANDBY.
    pub const STANDBY: u8 = 0xe2;
    /// IDLE.
    pub const IDLE: u8 = 0xe3;
    /// CHECK POWER MODE.
    pub const CHECK_POWER_MODE: u8 = 0xe5;
    /// SLEEP.
    pub const SLEEP: u8 = 0xe6;
    /// FLUSH CACHE.
    pub const FLUSH_CACHE: u8 = 0xe7;
    /// IDENTIFY DEVICE.
    pub const IDENTIFY_DEVICE: u8 = 0xec;
    /// FLUSH CACHE EXT (LBA48).
    pub const FLUSH_CACHE_EXT: u8 = 0xea;
    /// SET FEATURES.
    pub const SET_FEATURES: u8 = 0xef;
    /// NOP.
    pub const NOP: u8 = 0x00;
}

/// SET FEATURES subcommands (features register).
pub mod feature {
    /// Set the transfer mode from the sector count register.
    pub const SET_TRANSFER_MODE: u8 = 0x03;
    /// Enable the volatile write cache.
    pub const ENABLE_WRITE_CACHE: u8 = 0x02;
    /// Disable the volatile write cache (writes become write-through).
    pub const DISABLE_WRITE_CACHE: u8 = 0x82;
    /// Enable read look-ahead.
    pub const ENABLE_READ_LOOKAHEAD: u8 = 0xaa;
    /// Disable read look-ahead.
    pub const DISABLE_READ_LOOKAHEAD: u8 = 0x55;
    /// Revert to power-on defaults after a reset: disable.
    pub const DISABLE_REVERT: u8 = 0x66;
    /// Revert to power-on defaults after a reset: enable.
    pub const ENABLE_REVERT: u8 = 0xcc;
}

/// Bus-master IDE register offsets and bits (PIIX BMIDE window of 8 bytes per channel).
pub mod bm {
    /// Command register offset.
    pub const CMD: u64 = 0;
    /// Status register offset.
    pub const STATUS: u64 = 2;
    /// PRD table address offset (4 bytes).
    pub const PRD: u64 = 4;
    /// Command: start/stop bus master.
    pub const CMD_START: u8 = 0x01;
    /// Command: direction; set = bus master writes memory (device-to-memory, a disk READ).
    pub const CMD_WRITE_TO_MEMORY: u8 = 0x08;
    /// Status: bus master active.
    pub const ST_ACTIVE: u8 = 0x01;
    /// Status: error (write 1 to clear).
    pub const ST_ERROR: u8 = 0x02;
    /// Status: the drive raised its interrupt (write 1 to clear).
    pub const ST_INTERRUPT: u8 = 0x04;
    /// Status: drive 0 is DMA capable (software-set flag).
    pub const ST_DRIVE0_DMA: u8 = 0x20;
    /// Status: drive 1 is DMA capable (software-set flag).
    pub const ST_DRIVE1_DMA: u8 = 0x40;
}
