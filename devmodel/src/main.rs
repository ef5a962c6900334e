//! `devmodel`: the device-model binary.
//!
//! `devmodel run CONFIG [key=value ...]` boots an xm-style HVM config in the foreground on KVM;
//! `devmodel check CONFIG [key=value ...]` validates it and prints the machine it describes; `create`, `list`,
//! `console`, `destroy`, `shutdown`, `reboot`, `pause` and `unpause` work as `xm`'s verbs did.
//! Exit status: 0 when the guest powered off (or was destroyed), 1 when it crashed or the machine failed,
//! 2 for a config or command-line mistake.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use devmodel::config::{self, HostFacts};
use devmodel::event_loop::Outcome;
use devmodel::machine::MachineOptions;
use devmodel::runner::{self, RunIo};
use devmodel::toolstack::control::Command as ControlCommand;
use devmodel::toolstack::verbs::{self, VerbError};

#[derive(Parser)]
#[command(
    name = "devmodel",
    version,
    about = "A KVM device model for Xen HVM guest configs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArgs {
    /// The xm/xl HVM config file.
    config: PathBuf,
    /// Overrides of config keys, as with `xm create hvm.cfg memory=512`.
    #[arg(value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Boot the guest in the foreground (as systemd, tests, or a toolstack starting a device model would).
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        /// Write the firmware debug port (0x402) here instead of the domain's firmware log.
        #[arg(long, value_name = "FILE")]
        debugcon: Option<PathBuf>,
        /// A BIOS image instead of /usr/share/seabios/bios-256k.bin.
        #[arg(long, value_name = "FILE")]
        bios: Option<PathBuf>,
        /// An extra option ROM for SeaBIOS to run during POST (as QEMU's -option-rom).
        #[arg(long = "option-rom", value_name = "FILE")]
        option_roms: Vec<PathBuf>,
        /// Milliseconds SeaBIOS waits before rebooting when nothing boots (default 60000).
        #[arg(long, value_name = "MS")]
        boot_fail_wait: Option<u32>,
    },
    /// Validate the config and print the machine it describes, without starting anything.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Start the domain in the background and print its name and id (like `xm create`).
    Create {
        /// Attach to the first serial port once started (like `xm create -c`).
        #[arg(short = 'c')]
        console: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// List running domains: Name, ID, Mem(MiB), VCPUs, State, Time(s) (like `xm list`).
    List,
    /// Connect this terminal to a domain's serial port N (default 0); Ctrl-] detaches.
    Console {
        /// Domain name or id.
        domain: String,
        /// Serial port index (0 = COM1).
        #[arg(default_value_t = 0)]
        port: usize,
    },
    /// End a domain at once.
    Destroy {
        /// Domain name or id.
        domain: String,
    },
    /// Ask the guest to shut down (ACPI power button).
    Shutdown {
        /// Wait until the domain has ended.
        #[arg(short = 'w')]
        wait: bool,
        /// Domain name or id.
        domain: String,
    },
    /// Reset the domain's machine (what follows is the config's `on_reboot`).
    Reboot {
        /// Domain name or id.
        domain: String,
    },
    /// Stop a domain's vCPUs.
    Pause {
        /// Domain name or id.
        domain: String,
    },
    /// Run a paused domain's vCPUs again.
    Unpause {
        /// Domain name or id.
        domain: String,
    },
    /// Show a domain's screen: start vncviewer on its VNC server, or print host:display (like `xl vncviewer`).
    Vncviewer {
        /// Only print the address vncviewer takes.
        #[arg(long)]
        print: bool,
        /// Domain name or id.
        domain: String,
    },
    /// Change the medium in a CD-ROM drive (like `xm block-configure`); an empty PATH ejects.
    BlockConfigure {
        /// Domain name or id.
        domain: String,
        /// The drive: hda..hdd (`hdc:cdrom` also accepted).
        device: String,
        /// The new image (`file:` prefix accepted), or "" to eject.
        path: String,
    },
    /// Take a NIC's link down or bring it up (QEMU's `set_link`): its tap goes down or up.
    SetLink {
        /// Domain name or id.
        domain: String,
        /// The NIC: its index among the `vif` entries, from 0.
        nic: usize,
        /// up or down.
        state: String,
    },
}

/// Exit status for a verb's result.
fn verb_status(result: Result<u8, VerbError>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("devmodel: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_target(false)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Create { console, config } => match load(&config) {
            Ok(cfg) => verb_status(verbs::create(
                &config.config,
                &config.overrides,
                &cfg.name,
                console,
            )),
            Err(code) => code,
        },
        Command::List => verb_status(verbs::list()),
        Command::Console { domain, port } => verb_status(verbs::console(&domain, port)),
        Command::Destroy { domain } => {
            verb_status(verbs::control_verb(&domain, ControlCommand::Destroy, false))
        }
        Command::Shutdown { wait, domain } => {
            verb_status(verbs::control_verb(&domain, ControlCommand::Shutdown, wait))
        }
        Command::Reboot { domain } => {
            verb_status(verbs::control_verb(&domain, ControlCommand::Reboot, false))
        }
        Command::Pause { domain } => {
            verb_status(verbs::control_verb(&domain, ControlCommand::Pause, false))
        }
        Command::Unpause { domain } => {
            verb_status(verbs::control_verb(&domain, ControlCommand::Unpause, false))
        }
        Command::BlockConfigure {
            domain,
            device,
            path,
        } => verb_status(verbs::block_configure(&domain, &device, &path)),
        Command::SetLink { domain, nic, state } => {
            verb_status(verbs::set_link(&domain, nic, &state))
        }
        Command::Vncviewer { print, domain } => verb_status(verbs::vncviewer(&domain, print)),
        Command::Check { config } => match load(&config) {
            Ok(cfg) => {
                print!("{}", cfg.describe());
                // What the vCPUs' CPUID will say: KVM's supported set with the `cpuid` policy on top.
                print!(
                    "{}",
                    cfg.cpuid
                        .report(devmodel::kvm::supported_cpuid().as_deref())
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run {
            config,
            debugcon,
            bios,
            option_roms,
            boot_fail_wait,
        } => {
            let cfg = match load(&config) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            for notice in &cfg.unsupported {
                eprintln!("devmodel: warning: {notice}");
            }
            let options = MachineOptions {
                bios,
                option_roms,
                boot_fail_wait_ms: boot_fail_wait,
            };
            match run(&cfg, &options, debugcon) {
                Ok(Outcome::Crashed(why)) => {
                    eprintln!("devmodel: domain {} crashed: {why}", cfg.name);
                    ExitCode::from(1)
                }
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("devmodel: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// Loads and validates a config; on failure prints the one-line message and gives the exit code.
fn load(args: &ConfigArgs) -> Result<config::Config, ExitCode> {
    config::load(&args.config, &args.overrides, &HostFacts::probe()).map_err(|e| {
        eprintln!("devmodel: {e}");
        ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
    })
}

fn run(
    cfg: &config::Config,
    options: &MachineOptions,
    debugcon: Option<PathBuf>,
) -> anyhow::Result<Outcome> {
    let path = match debugcon {
        Some(path) => path,
        None => {
            let dir = verbs::log_dir();
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the log directory {}", dir.display()))?;
            dir.join(format!("{}-firmware.log", cfg.name))
        }
    };
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create the firmware log {}", path.display()))?;
    let outcome = runner::run(
        cfg,
        options,
        RunIo {
            debugcon: Box::new(file),
        },
    )?;
    Ok(outcome)
}
