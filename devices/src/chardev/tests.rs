//! Tests of the real back-ends.
