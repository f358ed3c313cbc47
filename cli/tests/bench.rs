//! `musubi bench` runs end to end: a short pass of both chains (the Musubi
//! servers as processes, nginx as the baseline) with small payloads. This
//! checks that the benchmark works and measures what it says, not the
//! performance targets (those are the benchmark's own output, BENCHMARKS.md).

use std::path::PathBuf;
use std::process::Command;

fn require_peers() -> bool {
    std::env::var("MUSUBI_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

#[test]
fn bench_measures_both_chains_for_every_case() {
    let nginx = PathBuf::from("/usr/sbin/nginx");
    if !nginx.is_file() {
        assert!(!require_peers(), "nginx is missing (bench/install-nginx installs it)");
        println!("skipped: nginx is not installed (bench/install-nginx)");
        return;
    }
    let musubi = PathBuf::from(env!("CARGO_BIN_EXE_musubi"));
    let server = musubi.with_file_name("musubi-security-server");
    if !server.is_file() {
        assert!(!require_peers(), "{} is missing: build the workspace", server.display());
        println!("skipped: {} is not built (cargo build -p musubi-security-server)", server.display());
        return;
    }
    let dir = std::env::temp_dir().join(format!("musubi-bench-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (md, json) = (dir.join("report.md"), dir.join("report.json"));
    let out = Command::new(&musubi)
        .args(["bench", "--payloads", "1k,att:300k", "--concurrency", "1,4", "--duration", "1"])
        .arg("--dir")
        .arg(&dir)
        .arg("--output")
        .arg(&md)
        .arg("--json")
        .arg(&json)
        .env("RUST_LOG", "warn")
        .output()
        .expect("musubi bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "musubi bench failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));

    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let cases = value["report"]["cases"].as_array().unwrap();
    let shape: Vec<(u64, bool, u64)> = cases
        .iter()
        .map(|c| {
            (
                c["payload"]["bytes"].as_u64().unwrap(),
                c["payload"]["attachment"].as_bool().unwrap(),
                c["concurrency"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [(1024, false, 1), (1024, false, 4), (300 * 1024, true, 1), (300 * 1024, true, 4)],
        "every payload at every concurrency, in order"
    );
    for c in cases {
        for chain in ["musubi", "baseline"] {
            let m = &c[chain];
            let what = format!("{chain} {}", c["payload"]);
            assert!(m["ok"].as_u64().unwrap() > 0, "{what}: no exchange completed");
            assert_eq!(m["errors"].as_u64().unwrap(), 0, "{what}: {}", m["first_error"]);
            // The servers did work and their memory was read: CPU time and
            // peak memory are above zero for both servers of the chain.
            let cpu = m["cpu"]["secs"].as_u64().unwrap() * 1_000_000_000 + m["cpu"]["nanos"].as_u64().unwrap();
            assert!(cpu > 0, "{what}: no CPU time measured");
            for rss in m["peak_rss"].as_array().unwrap() {
                assert!(rss.as_u64().unwrap() > 1024 * 1024, "{what}: peak memory not measured: {rss}");
            }
            let p50 = m["p50"]["nanos"].as_u64().unwrap() + m["p50"]["secs"].as_u64().unwrap() * 1_000_000_000;
            let p99 = m["p99"]["nanos"].as_u64().unwrap() + m["p99"]["secs"].as_u64().unwrap() * 1_000_000_000;
            assert!(p50 > 0 && p99 >= p50, "{what}: latencies {p50} ns, {p99} ns");
        }
    }
    // Both servers became ready, and the readiness target is reported.
    for r in value["report"]["ready"].as_array().unwrap() {
        assert!(r["secs"].as_u64().unwrap() < 60, "ready: {r}");
    }
    let targets: Vec<&str> = value["targets"].as_array().unwrap().iter().map(|t| t["what"].as_str().unwrap()).collect();
    assert!(targets.iter().any(|t| t.contains("ready within 1 s")), "{targets:?}");
    assert!(targets.iter().any(|t| t.contains("≤ 64 MB")), "{targets:?}");

    // The Markdown report (what BENCHMARKS.md holds) has a row per chain per case and the ratios.
    let text = std::fs::read_to_string(&md).unwrap();
    assert_eq!(text.lines().filter(|l| l.contains("| Musubi |")).count(), 4, "{text}");
    assert_eq!(text.lines().filter(|l| l.contains("| nginx |")).count(), 4, "{text}");
    assert!(text.contains("Ratios Musubi / nginx") && text.contains("Targets:"), "{text}");
    assert!(text.contains("Command: `"), "{text}");
    // Every process the benchmark started is gone.
    let leftovers = Command::new("pgrep").arg("-f").arg(dir.to_str().unwrap()).output().unwrap();
    assert!(leftovers.stdout.is_empty(), "processes left running: {}", String::from_utf8_lossy(&leftovers.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}
