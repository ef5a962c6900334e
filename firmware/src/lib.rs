//! The hvmloader role (see the crate description); filled in by the firmware module files.
