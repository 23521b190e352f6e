//! Starting a real Knot DNS (`knotd` from Debian's `knot` package) on a loopback port, with
//! zones that accept TSIG-signed updates. The second server implementation the cleanup is
//! tested against.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::named::{Zone, die_with_parent, free_port, log_tail, wait_authoritative};

/// A running `knotd`; killed when dropped.
pub struct Knot {
    pub address: SocketAddr,
    pub dir: PathBuf,
    child: crate::named::Daemon,
}

/// A TSIG key for Knot's configuration: name, algorithm and base64 secret.
pub struct KnotKey<'a> {
    pub name: &'a str,
    pub algorithm: &'a str,
    pub secret: &'a str,
}

fn knotd_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into(), "/sbin".into()])
        .map(|d: PathBuf| d.join("knotd"))
        .find(|p| p.is_file())
}

impl Knot {
    /// Starts `knotd` on `ip` at a free port with `zones`, each updatable with `key`.
    pub async fn start(
        dir: &Path,
        ip: IpAddr,
        zones: &[Zone],
        key: &KnotKey<'_>,
    ) -> Result<Self, String> {
        let binary = knotd_binary().ok_or_else(|| {
            "`knotd` not found: install Knot DNS (`apt-get install knot knot-dnsutils`)".to_string()
        })?;
        // Knot fails every update with SERVFAIL when its database directory is missing.
        std::fs::create_dir_all(dir.join("db"))
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let port = free_port(ip)?;
        let address = SocketAddr::new(ip, port);
        let d = dir.display();
        let mut conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: {ip}@{port}\n\
             log:\n  - target: stderr\n    any: info\n\
             database:\n    storage: \"{d}/db\"\n\
             key:\n  - id: {name}\n    algorithm: {alg}\n    secret: {secret}\n\
             acl:\n  - id: update\n    key: {name}\n    action: update\n\
             template:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\n    journal-content: changes\n\
             zone:\n",
            name = key.name,
            alg = key.algorithm,
            secret = key.secret,
        );
        for zone in zones {
            let file = format!("{}zone", zone.origin);
            std::fs::write(dir.join(&file), &zone.text)
                .map_err(|e| format!("writing zone: {e}"))?;
            let _ = writeln!(
                conf,
                "  - domain: {}\n    file: \"{d}/{file}\"\n    acl: update",
                zone.origin
            );
        }
        std::fs::write(dir.join("knot.conf"), conf).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("knot.log")).map_err(|e| e.to_string())?;
        let mut command = Command::new(&binary);
        die_with_parent(&mut command);
        let child = command
            .arg("-c")
            .arg(dir.join("knot.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let mut knot = Knot {
            address,
            dir: dir.to_path_buf(),
            child: crate::named::Daemon(child),
        };
        knot.wait_ready(zones.first().map(|z| z.origin.as_str()).unwrap_or("."))
            .await?;
        Ok(knot)
    }

    async fn wait_ready(&mut self, origin: &str) -> Result<(), String> {
        let log = self.dir.join("knot.log");
        wait_authoritative(&mut self.child.0, self.address, origin, &log, "knotd", None).await
    }

    pub fn log_tail(&self) -> String {
        log_tail(&self.dir.join("knot.log"))
    }
}
