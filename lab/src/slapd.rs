//! An LDAP server that is not Active Directory: OpenLDAP's `slapd` (Debian's `slapd`) with no
//! database, serving only its rootDSE — enough for a client to ask "is this a DC?" and be told
//! no. Started inside a network namespace the caller made (root), on port 389 of `address`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::named::Daemon;

/// A running `slapd`; killed when dropped.
pub struct Slapd {
    pub address: IpAddr,
    _child: Daemon,
}

/// Where `slapd` is: PATH, then /usr/sbin (not on a non-root PATH).
fn slapd_binary() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("slapd"))
        .find(|p| p.is_file())
}

impl Slapd {
    /// Starts slapd in `netns` on `address`:389, its files under `dir`, and waits until it
    /// accepts connections.
    pub fn start_in_netns(dir: &Path, netns: &str, address: IpAddr) -> Result<Self, String> {
        let binary = slapd_binary().ok_or("slapd not found (install Debian's slapd)")?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let conf = dir.join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "pidfile {d}/slapd.pid\nargsfile {d}/slapd.args\n",
                d = dir.display()
            ),
        )
        .map_err(|e| format!("{}: {e}", conf.display()))?;
        let log = std::fs::File::create(dir.join("slapd.log")).map_err(|e| e.to_string())?;
        let child = crate::netns::command(netns, &binary)
            // In the foreground (a debug level keeps it there), logging nothing but errors.
            .args(["-d", "0", "-h", &format!("ldap://{address}:389/"), "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let mut daemon = Daemon(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let probe = crate::netns::bind_in_netns(netns, SocketAddr::new(address, 389));
            if probe.is_err_and(|e| e.kind() == std::io::ErrorKind::AddrInUse) {
                // The port is taken: slapd listens.
                return Ok(Self {
                    address,
                    _child: daemon,
                });
            }
            if let Ok(Some(status)) = daemon.0.try_wait() {
                let said = std::fs::read_to_string(dir.join("slapd.log")).unwrap_or_default();
                return Err(format!("slapd exited ({status}): {said}"));
            }
            if Instant::now() > deadline {
                daemon.kill();
                return Err("slapd did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
