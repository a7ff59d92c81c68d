//! A lossy network for one test: a network namespace of its own (`ip netns`)
//! whose loopback drops a share of the UDP packets it receives (iptables'
//! `statistic` match), so that processes started in it (offhook and a browser)
//! talk over a network that loses media packets, and nothing outside it is
//! touched. Removed when dropped. Needs root (CI runs as root).

use std::process::Command;

/// A place processes can be started in (a network namespace).
pub trait Namespace {
    /// A command running `program` inside the namespace.
    fn command(&self, program: &std::path::Path) -> tokio::process::Command;
}

impl Namespace for LossyNetwork {
    fn command(&self, program: &std::path::Path) -> tokio::process::Command {
        LossyNetwork::command(self, program)
    }
}

/// The namespace; deleted on drop.
#[derive(Debug)]
pub struct LossyNetwork {
    name: String,
}

fn run(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect("run ip/iptables");
    assert!(
        status.success(),
        "{args:?} failed (root and iproute2/iptables needed)"
    );
}

impl LossyNetwork {
    /// A namespace named after `test` whose loopback drops `percent`% of UDP.
    ///
    /// # Panics
    /// When the namespace cannot be made.
    pub fn new(test: &str, percent: u32) -> Self {
        let name = format!("ohk-{test}-{}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        let network = Self { name };
        let probability = format!("{:.2}", f64::from(percent) / 100.0);
        network.exec_checked(&["ip", "link", "set", "lo", "up"]);
        network.exec_checked(&[
            "iptables",
            "-A",
            "INPUT",
            "-i",
            "lo",
            "-p",
            "udp",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            &probability,
            "-j",
            "DROP",
        ]);
        network
    }

    fn exec_checked(&self, args: &[&str]) {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        run(&all);
    }

    /// A command running `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }
}

impl Drop for LossyNetwork {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}
