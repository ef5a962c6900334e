//! NIC host-side tests, each in a private network namespace (`devices::net::testing::netns`).

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use devices::net::testing::client::{BackendDriver, TestHost};
use devices::net::testing::netns::{self, find_tool, ip, run, LAB_ADDRESS};
use devices::net::NetBackend;
use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};

use super::*;
use crate::config::{MacAddr, NicModel};

fn nic(bridge: &str, vifname: Option<&str>, script: Option<&Path>) -> Nic {
    Nic {
        model: NicModel::Rtl8139,
        mac: MacAddr([0x00, 0x16, 0x3e, 0x0a, 0x0b, 0x0c]),
        mac_generated: false,
        bridge: bridge.to_string(),
        vifname: vifname.map(str::to_string),
        ip: None,
        script: script.map(Path::to_path_buf),
        emulated: true,
        isa_base: None,
        isa_irq: None,
    }
}

fn link(name: &str) -> Result<String, String> {
    run("ip", &["-o", "link", "show", name])
}

/// A scratch directory removed at drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "devmodel-nethost-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn tap_names_follow_xend() {
    assert_eq!(tap_name(&nic("xenbr0", None, None), 7, 1), "tap7.1");
    assert_eq!(tap_name(&nic("xenbr0", Some("web0"), None), 7, 1), "web0");
    let e = open_nic_backend(&nic("xenbr0", None, None), 4_000_000_000, 12).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("NIC 12") && text.contains("'tap4000000000.12'") && text.contains("vifname="),
        "{text}"
    );
}

#[test]
fn a_missing_bridge_is_a_clear_error_and_leaves_no_tap() {
    netns::run_isolated(|| {
        let e = open_nic_backend(&nic("xenbr0", None, None), 5, 0).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, NetHostError::NoBridge { .. }), "{e:?}");
        for needed in [
            "NIC 0",
            "'xenbr0' does not exist",
            "tap5.0",
            "ip link add xenbr0 type bridge && ip link set xenbr0 up",
            "bridge=",
        ] {
            assert!(text.contains(needed), "{needed:?} missing in: {text}");
        }
        assert!(link("tap5.0").is_err(), "the tap outlived the error");

        // Something that is not a bridge.
        let e = open_nic_backend(&nic("lo", None, None), 5, 0).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("not a bridge"), "{text}");
    });
}

#[test]
fn without_a_script_the_tap_joins_the_bridge_and_comes_up() {
    netns::run_isolated(|| {
        ip(&["link", "add", "br7", "type", "bridge"]);
        let host = open_nic_backend(&nic("br7", Some("guest0"), None), 3, 0).unwrap();
        assert_eq!(host.attachment, Attachment::Bridge("br7".to_string()));
        assert_eq!(host.backend.name(), "guest0");
        let l = link("guest0").unwrap();
        assert!(l.contains("master br7") && l.contains(",UP"), "{l}");
        assert!(host.backend.link_up());
        drop(host);
        assert!(link("guest0").is_err(), "the tap outlived its back-end");
    });
}

#[test]
fn a_script_runs_as_qemu_ifup_with_tap_and_bridge_and_does_the_attaching() {
    netns::run_isolated(|| {
        let dir = Scratch::new("script");
        let ip_tool = find_tool("ip").unwrap();
        let record = dir.0.join("args");
        let script = dir.script(
            "my-ifup",
            &format!(
                "echo \"$@\" > {}\n{} link set \"$1\" up\necho configured \"$1\"",
                record.display(),
                ip_tool.display()
            ),
        );
        // The bridge does not exist: with a script, joining it is the script's business.
        let host = open_nic_backend(&nic("xenbr0", None, Some(&script)), 9, 2).unwrap();
        assert_eq!(host.attachment, Attachment::Script(script.clone()));
        assert_eq!(std::fs::read_to_string(&record).unwrap(), "tap9.2 xenbr0\n");
        let l = link("tap9.2").unwrap();
        assert!(l.contains(",UP") && !l.contains("master"), "{l}");
        assert!(host.backend.link_up());
    });
}

#[test]
fn a_failing_or_missing_script_is_a_clear_error() {
    netns::run_isolated(|| {
        let dir = Scratch::new("fail");
        let script = dir.script("bad-ifup", "echo \"cannot do it for $1\" >&2\nexit 3");
        let e = open_nic_backend(&nic("xenbr1", None, Some(&script)), 2, 0).unwrap_err();
        let text = e.to_string();
        for needed in [
            "NIC 0",
            &format!("{} tap2.0 xenbr1", script.display()),
            "exit status: 3",
            "cannot do it for tap2.0",
        ] {
            assert!(text.contains(needed), "{needed:?} missing in: {text}");
        }
        assert!(link("tap2.0").is_err(), "the tap outlived the error");

        let e = open_nic_backend(&nic("xenbr0", None, Some(Path::new("vif-nowhere"))), 2, 0)
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("'vif-nowhere' was not found")
                && text.contains("/etc/xen/scripts/vif-nowhere"),
            "{text}"
        );

        let e =
            open_nic_backend(&nic("xenbr0", None, Some(&dir.0.join("absent"))), 2, 0).unwrap_err();
        assert!(matches!(e, NetHostError::ScriptMissing { .. }), "{e:?}");
    });
}

#[test]
fn script_no_leaves_the_tap_alone() {
    netns::run_isolated(|| {
        ip(&["link", "add", "xenbr0", "type", "bridge"]);
        let host = open_nic_backend(&nic("xenbr0", None, Some(Path::new("no"))), 1, 0).unwrap();
        assert_eq!(host.attachment, Attachment::None);
        let l = link("tap1.0").unwrap();
        assert!(!l.contains(",UP") && !l.contains("master"), "{l}");
        assert!(!host.backend.link_up());
    });
}

#[test]
fn a_nic_backend_on_the_default_bridge_gets_a_lease_and_pings() {
    netns::with_lab(|lab| {
        let host = open_nic_backend(&nic("xenbr0", None, None), 11, 0).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let subscriber = host.subscriber;
        let event_loop = std::thread::spawn(move || {
            let mut manager: EventManager<Box<dyn MutEventSubscriber + Send>> =
                EventManager::new().unwrap();
            manager.add_subscriber(Box::new(subscriber));
            while !flag.load(Ordering::SeqCst) {
                manager.run_with_timeout(20).unwrap();
            }
        });
        let backend: Arc<dyn NetBackend> = host.backend.clone();
        let mut driver = BackendDriver::new(backend);
        let mut guest = TestHost::new([0x00, 0x16, 0x3e, 0x0a, 0x0b, 0x0c]);
        let lease = guest
            .dhcp(&mut driver, Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{e}; dnsmasq says:\n{}", lab.log()));
        assert_eq!(lease.server, LAB_ADDRESS);
        guest
            .ping(&mut driver, LAB_ADDRESS, b"x", Duration::from_secs(20))
            .unwrap();
        stop.store(true, Ordering::SeqCst);
        event_loop.join().unwrap();
    });
}

#[test]
fn a_hanging_script_is_killed_and_a_lingering_background_child_does_not_hold_us() {
    let dir = Scratch::new("hang");
    let hang = dir.script("hang-ifup", "echo starting\nexec sleep 30");
    let start = std::time::Instant::now();
    let e = run_script(&hang, "tap0.0", "xenbr0", 0, Duration::from_millis(300)).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("still running after 300 ms; killed"),
        "{text}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));

    // Exits at once but leaves a child holding its output pipe.
    let linger = dir.script("linger-ifup", "sleep 30 &\nexit 0");
    let start = std::time::Instant::now();
    run_script(&linger, "tap0.0", "xenbr0", 0, Duration::from_secs(10)).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
}
