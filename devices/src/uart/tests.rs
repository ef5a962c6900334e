//! Tests of the 16550A.
