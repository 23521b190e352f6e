//! Starting a real PowerDNS Authoritative Server (`pdns_server` from Debian's `pdns-server`,
//! with `pdns-backend-sqlite3`) on a loopback port, zones in a SQLite database that accept
//! TSIG-signed updates: the third server implementation the cleanup is tested against. It
//! answers a key it cannot verify with a plain, unsigned REFUSED, unlike BIND and Knot.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::named::{Zone, die_with_parent, free_port, log_tail, wait_authoritative};

const SCHEMA: &str = "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql";

/// A running `pdns_server`; killed when dropped.
pub struct PowerDns {
    pub address: SocketAddr,
    pub dir: PathBuf,
    child: crate::named::Daemon,
}

fn run(dir: &Path, program: &str, args: &[&str], stdin_file: Option<&Path>) -> Result<(), String> {
    let mut command = Command::new(program);
    command.args(args).current_dir(dir);
    if let Some(file) = stdin_file {
        command.stdin(std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?);
    }
    let out = command.output().map_err(|e| {
        format!("running {program}: {e} (install `pdns-server pdns-backend-sqlite3 sqlite3`)")
    })?;
    if !out.status.success() {
        return Err(format!(
            "{program} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

impl PowerDns {
    /// Starts `pdns_server` on `ip` at a free port with `zones`, each updatable with the TSIG
    /// key `key_name` (HMAC-SHA256, base64 `secret`) from loopback.
    pub async fn start(
        dir: &Path,
        ip: IpAddr,
        zones: &[Zone],
        key_name: &str,
        secret: &str,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let db = dir.join("pdns.sqlite3");
        let _ = std::fs::remove_file(&db);
        run(
            dir,
            "sqlite3",
            &[db.to_str().unwrap_or_default()],
            Some(Path::new(SCHEMA)),
        )?;
        let port = free_port(ip)?;
        let address = SocketAddr::new(ip, port);
        let d = dir.display();
        // Empty setuid/setgid: run as whoever starts it (root in CI), no privilege drop.
        let conf = format!(
            "launch=gsqlite3\ngsqlite3-database={}\nlocal-address={ip}:{port}\nsocket-dir={d}\n\
             guardian=no\ndaemon=no\ndisable-syslog=yes\nloglevel=6\ndnsupdate=yes\n\
             allow-dnsupdate-from=127.0.0.0/8\nwebserver=no\napi=no\nsetuid=\nsetgid=\n",
            db.display()
        );
        std::fs::write(dir.join("pdns.conf"), conf).map_err(|e| e.to_string())?;
        let config_dir = format!("--config-dir={d}");
        run(
            dir,
            "pdnsutil",
            &[
                &config_dir,
                "import-tsig-key",
                key_name,
                "hmac-sha256",
                secret,
            ],
            None,
        )?;
        for zone in zones {
            let file = dir.join(format!("{}zone", zone.origin));
            std::fs::write(&file, &zone.text).map_err(|e| format!("writing zone: {e}"))?;
            let file = file.display().to_string();
            run(
                dir,
                "pdnsutil",
                &[&config_dir, "load-zone", &zone.origin, &file],
                None,
            )?;
            for (kind, value) in [
                ("TSIG-ALLOW-DNSUPDATE", key_name),
                ("ALLOW-DNSUPDATE-FROM", "127.0.0.0/8"),
            ] {
                run(
                    dir,
                    "pdnsutil",
                    &[&config_dir, "set-meta", &zone.origin, kind, value],
                    None,
                )?;
            }
        }
        let log = std::fs::File::create(dir.join("pdns.log")).map_err(|e| e.to_string())?;
        let mut command = Command::new("pdns_server");
        die_with_parent(&mut command);
        let child = command
            .arg(&config_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting pdns_server: {e} (install `pdns-server`)"))?;
        let mut pdns = PowerDns {
            address,
            dir: dir.to_path_buf(),
            child: crate::named::Daemon(child),
        };
        let origin = zones.first().map(|z| z.origin.as_str()).unwrap_or(".");
        let log = pdns.dir.join("pdns.log");
        wait_authoritative(
            &mut pdns.child.0,
            address,
            origin,
            &log,
            "pdns_server",
            None,
        )
        .await?;
        Ok(pdns)
    }

    pub fn log_tail(&self) -> String {
        log_tail(&self.dir.join("pdns.log"))
    }
}
