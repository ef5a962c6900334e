//! The xm-style toolstack: `create`, `list`, `console`, `destroy`, `shutdown`, `reboot`, `pause`, `unpause`.
//!
//! Each domain is one `devmodel run` process. It registers itself in the runtime directory ([`registry`]) and
//! answers commands on its control socket ([`control`]); the verbs find a domain by name or id there.

pub mod console;
pub mod control;
pub mod registry;
pub mod verbs;
