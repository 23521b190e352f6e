//! The demo: starts the loopback lab (two BIND servers, one of them stale, and a listener
//! behind every record) and runs `vlmcs-audit scan --config <lab>/audit.yaml` against it, with
//! any extra arguments passed through (e.g. `--format json`).
//!
//!     cargo build --bin vlmcs-audit && cargo run --example lab
//!     cargo run --example lab -- --format json
//!     cargo run --example lab -- --keep     # leave the lab running until Ctrl-C

use std::time::Duration;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let keep = args.iter().any(|a| a == "--keep");
    args.retain(|a| a != "--keep");

    let dir = match tempfile_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot create a directory for the lab: {e}");
            std::process::exit(3);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let lab = match runtime.block_on(vlmcs_lab::Lab::start(&dir)) {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("error: the lab did not start: {e}");
            std::process::exit(3);
        }
    };
    let config = lab.config_path.display().to_string();
    eprintln!(
        "lab: zone {} on {} (primary) and {} (stale copy); hosts on {}.{}.{}.0/24; config {config}",
        vlmcs_lab::LAB_ZONE,
        lab.primary.address,
        lab.stale_secondary.address,
        lab.net[0],
        lab.net[1],
        lab.net[2],
    );
    eprintln!("$ vlmcs-audit scan --config {config} {}", args.join(" "));
    // The real binary runs the scan while this runtime keeps the lab's listeners serving.
    let code = match std::process::Command::new(binary())
        .args(["scan", "--config", config.as_str()])
        .args(&args)
        .status()
    {
        Ok(status) => status.code().unwrap_or(3),
        Err(e) => {
            eprintln!(
                "error: cannot run {} ({e}); build it first: cargo build --bin vlmcs-audit",
                binary().display()
            );
            3
        }
    };
    if keep {
        eprintln!("lab running; press Ctrl-C to stop");
        runtime.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
    }
    drop(lab);
    runtime.shutdown_timeout(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&dir);
    std::process::exit(code);
}

/// `vlmcs-audit` from the same build: examples live in `target/<profile>/examples/`.
fn binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .and_then(|examples| examples.parent())
        .map(|profile| profile.join("vlmcs-audit"))
        .unwrap_or_else(|| "vlmcs-audit".into())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("vlmcs-lab-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
