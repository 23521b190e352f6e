//! Network namespaces of the test beds' own (root only): made with `ip netns`, removed when
//! the test process is gone, however it goes.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::run;

/// Makes network namespace `netns` afresh (a leftover of that name is removed first), with its
/// loopback up, to be removed when this process is gone.
pub fn create(netns: &str) -> Result<(), String> {
    remove_stale_namespaces(netns);
    let _ = Command::new("ip")
        .args(["netns", "del", netns])
        .stderr(Stdio::null())
        .status();
    run(Command::new("ip").args(["netns", "add", netns]))?;
    remove_netns_when_gone(netns, std::process::id());
    run(command(netns, "ip").args(["link", "set", "lo", "up"]))?;
    Ok(())
}

/// A command that runs `program` inside network namespace `netns` (`ip netns exec`).
pub fn command(netns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", netns]).arg(program);
    command
}

/// Moves the calling thread (only it) into network namespace `netns`; threads and processes it
/// starts afterwards are in there too.
#[cfg(target_os = "linux")]
pub fn enter(netns: &str) -> io::Result<()> {
    let ns = std::fs::File::open(Path::new("/var/run/netns").join(netns))?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&ns),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )?;
    Ok(())
}

/// Test harnesses keep what they start in statics that are never dropped, and a test process
/// can die any way (panic, abort, a signal): a detached watcher removes the namespace, its
/// processes and its `/etc/netns` entry once process `pid` is gone, whatever way it went.
pub fn remove_netns_when_gone(netns: &str, pid: u32) {
    use std::os::unix::process::CommandExt;
    let script = r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done
ip netns pids "$2" 2>/dev/null | xargs -r kill -9 2>/dev/null
ip netns del "$2" 2>/dev/null
rm -rf "/etc/netns/$2""#;
    let spawned = Command::new("sh")
        .args(["-c", script, "vlmcs-audit-netns-reaper"])
        .arg(pid.to_string())
        .arg(netns)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    if let Err(e) = spawned {
        eprintln!("lab: cannot start the namespace watcher for {netns}: {e}");
    }
}

/// Test harnesses keep what they start in statics that are never dropped, so a namespace named
/// `<prefix>-<pid>` can outlive its run: remove those whose process is gone.
fn remove_stale_namespaces(netns: &str) {
    let Some((prefix, _)) = netns.rsplit_once('-') else {
        return;
    };
    let Ok(entries) = std::fs::read_dir("/var/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&name));
        }
    }
}

/// Binds a TCP listener inside network namespace `netns` (a socket keeps the namespace it was
/// made in, so it can then be served from anywhere). Uses a short-lived thread that enters
/// the namespace; the caller's threads never change namespace.
#[cfg(target_os = "linux")]
pub fn bind_in_netns(netns: &str, address: SocketAddr) -> io::Result<std::net::TcpListener> {
    std::thread::scope(|s| {
        s.spawn(|| {
            // Only this short-lived thread changes network namespace.
            enter(netns)?;
            std::net::TcpListener::bind(address)
        })
        .join()
        .map_err(|_| io::Error::other("namespace thread panicked"))?
    })
}
